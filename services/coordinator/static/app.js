// hypolab dashboard: the board, experiment pages with live curves, audit reports.
// Plain JavaScript served by the coordinator itself: no build step, no network beyond it.
"use strict";

const main = document.getElementById("main");
const live = document.getElementById("live");
const tokenInput = document.getElementById("token");
const CURVES = ["reward", "reward_std", "kl", "grad_norm"];
let view = { name: null, id: null };
let cache = { metrics: {}, lastStep: {} };

tokenInput.value = localStorage.getItem("hypolab-token") || "";
document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("hypolab-token", tokenInput.value.trim());
  live.textContent = "token saved";
});

function headers() {
  const t = localStorage.getItem("hypolab-token");
  return t ? { Authorization: "Bearer " + t } : {};
}
async function api(path, options = {}) {
  const resp = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const text = await resp.text();
  let body = text;
  try { body = JSON.parse(text); } catch (_) { /* logs are text */ }
  if (!resp.ok) throw new Error((body && body.detail) || resp.status);
  return body;
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}
const badge = (status) => el("span", { class: "badge s-" + status, "data-status": status }, status);
// a curve decision with its horizon: "improves at step 45 of 200", "no improvement yet — step 80 of 200"
const decisionLabel = (n) => n.label || (n.decision + (n.decided_at_step != null ? ` at step ${n.decided_at_step}` : "")
  + (n.horizon != null ? ` of ${n.horizon}` : ""));
const fmt = (x) => (x === null || x === undefined) ? "—" : (typeof x === "number" ? +x.toFixed(4) : JSON.stringify(x));

// ---------------------------------------------------------------- board
async function renderBoard() {
  const [hyps, exps] = await Promise.all([api("/api/hypotheses"), api("/api/experiments")]);
  const byHyp = {};
  for (const e of exps) (byHyp[e.hypothesis_id] ||= []).push(e);
  const cards = hyps.map((h) => {
    const verdict = h.verdict || {};
    const evidence = (verdict.evidence || []).filter((e) => e.holds !== null).slice(0, 4)
      .map((e) => el("li", {}, `${e.rule}: ${e.detail}`));
    return el("article", { class: "card", "data-hypothesis": h.id, "aria-labelledby": "h-" + h.id },
      el("h2", { id: "h-" + h.id }, `${h.id} · ${h.title}`),
      el("div", { class: "meta" }, `priority ${h.priority} · order ${h.order} · after: ${h.after.join(", ") || "—"}`,
        h.queued && h.status === "untested" ? " · queued" : ""),
      el("p", {}, badge(h.status), " ", verdict.sentence || ""),
      evidence.length ? el("ul", { class: "evidence", "aria-label": "evidence" }, evidence) : "",
      verdict.queued_next && verdict.queued_next.length ? el("div", { class: "meta" }, "queued next: " + verdict.queued_next.join(", ")) : "",
      el("ul", { class: "exps", "aria-label": "experiments" }, (byHyp[h.id] || []).map((e) =>
        el("li", {}, badge(e.status), " ", el("a", { href: "#/experiment/" + encodeURIComponent(e.id) }, e.id), ` (${e.kind})`))));
  });
  main.replaceChildren(el("h1", {}, "Hypotheses"), el("section", { class: "board", "aria-label": "hypothesis board" }, cards));
}

// ---------------------------------------------------------------- charts
function downsample(points, max = 1200) {
  if (points.length <= max) return points;
  const size = Math.ceil(points.length / (max / 2)), out = [];
  for (let i = 0; i < points.length; i += size) {
    const bucket = points.slice(i, i + size);
    let lo = bucket[0], hi = bucket[0];
    for (const p of bucket) { if (p[1] < lo[1]) lo = p; if (p[1] > hi[1]) hi = p; }
    out.push(...(lo[0] <= hi[0] ? [lo, hi] : [hi, lo]));
  }
  return out;
}
function chart(metric, series, marks) {
  const W = 460, H = 200, P = 48, NS = "http://www.w3.org/2000/svg";
  const all = series.flatMap((s) => s.points);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${metric} by step`);
  svg.dataset.metric = metric;
  svg.dataset.points = String(series.length ? series[0].points.length : 0);
  const add = (name, attrs, text) => {
    const n = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n); return n;
  };
  if (!all.length) { add("text", { x: P, y: H / 2 }, "no data yet"); return svg; }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => P + (x - x0) / (x1 - x0) * (W - 2 * P), Y = (y) => H - P + (P - H) * ((y - y0) / (y1 - y0)) + 0;
  add("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#8a939f" });
  add("line", { x1: P, y1: P / 2, x2: P, y2: H - P, stroke: "#8a939f" });
  add("text", { x: P, y: H - P + 14 }, x0); add("text", { x: W - P - 20, y: H - P + 14 }, x1);
  add("text", { x: 2, y: H - P }, fmt(y0)); add("text", { x: 2, y: P / 2 + 8 }, fmt(y1));
  const colors = ["#0b57d0", "#b3261e", "#146c2e"];
  series.forEach((s, i) => {
    const pts = downsample(s.points).map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    add("polyline", { points: pts, fill: "none", stroke: colors[i % 3], "stroke-width": 1.5, "data-series": s.name });
    add("text", { x: W - P - 120, y: 12 + 12 * i, fill: colors[i % 3] }, s.name);
  });
  for (const m of marks || []) {
    if (m.step === null || m.step === undefined) continue;
    add("line", { x1: X(m.step), x2: X(m.step), y1: P / 2, y2: H - P, stroke: "#5c4400", "stroke-dasharray": "4 3", "data-mark": "decision" });
    add("text", { x: Math.min(X(m.step) + 3, W - 150), y: P / 2 + 10 }, m.label);
  }
  return svg;
}

// ---------------------------------------------------------------- experiment page
async function loadMetrics(eid) {
  const since = cache.lastStep[eid] ?? -1;
  const rows = await api(`/api/experiments/${encodeURIComponent(eid)}/metrics?since=${since}`);
  const store = (cache.metrics[eid] ||= {});
  for (const r of rows) {
    (store[r.name] ||= new Map()).set(r.step, r.value);
    cache.lastStep[eid] = Math.max(cache.lastStep[eid] ?? -1, r.step);
  }
  return store;
}
const points = (store, name) => store && store[name] ? [...store[name].entries()].sort((a, b) => a[0] - b[0]) : [];

async function renderExperiment(eid) {
  const exp = await api(`/api/experiments/${encodeURIComponent(eid)}`);
  const hyp = await api(`/api/hypotheses/${encodeURIComponent(exp.hypothesis_id)}`);
  const metrics = await loadMetrics(eid);
  const control = exp.control_id ? await loadMetrics(exp.control_id).catch(() => null) : null;
  const verdict = hyp.verdict || hyp.current_evidence || {};
  // this experiment's curve decisions, decided or not, each with its horizon ("no improvement yet — step 80 of 200")
  const decisions = (verdict.evidence || []).filter((e) => e.numbers && e.numbers.decision
      && e.detail && e.detail.includes(eid.split(".")[1]));
  const marks = decisions.filter((e) => e.numbers.decided_at_step !== null && e.numbers.decided_at_step !== undefined)
    .map((e) => ({ step: e.numbers.decided_at_step, label: `${decisionLabel(e.numbers)} · ${fmt(e.numbers.effect)} [${(e.numbers.interval || []).map(fmt).join(", ")}]` }));
  const diffPaths = new Set((exp.diff || []).map((d) => d.path));
  const flat = (obj, prefix = "") => Object.entries(obj || {}).flatMap(([k, v]) =>
    v && typeof v === "object" && !Array.isArray(v) && k !== "env_args" ? flat(v, prefix + k + ".") : [[prefix + k, v]]);
  const configRows = flat(exp.config).map(([k, v]) => el("tr", { class: diffPaths.has(k) ? "diff" : "" },
    el("td", {}, k), el("td", {}, fmt(v)), el("td", {}, diffPaths.has(k) ? "differs from " + exp.control_id : "")));
  const actions = el("div", {},
    el("button", { type: "button", id: "cancel", "aria-label": "cancel experiment " + eid,
      disabled: ["running", "queued", "pending"].includes(exp.status) ? null : "disabled",
      onclick: () => act(eid, "cancel") }, "Cancel"), " ",
    el("button", { type: "button", id: "retry", class: "secondary", "aria-label": "retry experiment " + eid,
      disabled: ["failed", "cancelled", "stalled"].includes(exp.status) ? null : "disabled",
      onclick: () => act(eid, "retry") }, "Retry"));
  const when = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "—";
  main.replaceChildren(
    el("h1", {}, eid, " ", badge(exp.status)),
    el("p", { class: "meta" }, `${exp.kind} · attempts ${exp.attempts} · GPUs ${(exp.gpus || []).join(",") || "none"} · container ${exp.container || "—"} · exit code ${fmt(exp.exit_code)}`,
      exp.reason ? ` · ${exp.reason}` : ""),
    el("p", { class: "meta" }, `created ${when(exp.created_at)} → queued ${when(exp.queued_at)} → started ${when(exp.started_at)} → finished ${when(exp.finished_at)}`),
    actions,
    el("h2", {}, "Curves"),
    decisions.length ? el("ul", { class: "decisions", "aria-label": "decisions" },
      decisions.map((e) => el("li", { "data-decision": e.numbers.decision }, `${e.rule}: ${decisionLabel(e.numbers)}`))) : "",
    el("section", { class: "charts", id: "charts" }, chartFigures(eid, metrics, exp.control_id, control, marks)),
    el("h2", {}, "Resolved config"),
    el("table", { "aria-label": "resolved config" }, el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "value"), el("th", {}, "vs control"))), el("tbody", {}, configRows)),
    el("h2", {}, "Log"),
    el("pre", { class: "log", tabindex: "0", "aria-label": "log tail" }, exp.log_tail || "(empty)"));
  chartState = { eid, controlId: exp.control_id, marks };
}

function chartFigures(eid, metrics, controlId, control, marks) {
  return CURVES.map((m) => el("figure", {}, el("figcaption", {}, m),
    chart(m, [{ name: eid, points: points(metrics, m) },
              ...(control && m === "reward" ? [{ name: controlId, points: points(control, m) }] : [])],
          m === "reward" ? marks : [])));
}
let chartState = null;  // what the open experiment page drew its curves from

async function updateCharts() {
  // new metrics only redraw the curves: the rest of the page (focus, scroll) stays put
  if (!chartState) return;
  const metrics = await loadMetrics(chartState.eid);
  const control = chartState.controlId ? await loadMetrics(chartState.controlId).catch(() => null) : null;
  const box = document.getElementById("charts");
  if (box) box.replaceChildren(...chartFigures(chartState.eid, metrics, chartState.controlId, control, chartState.marks));
  const exp = await api(`/api/experiments/${encodeURIComponent(chartState.eid)}`);
  const log = document.querySelector("pre.log");
  if (log) log.textContent = exp.log_tail || "(empty)";  // the log tail follows the run too
}

async function act(eid, what) {
  try {
    await api(`/api/experiments/${encodeURIComponent(eid)}/${what}`, { method: "POST" });
    live.textContent = `${what}: ${eid}`;
  } catch (err) {
    live.textContent = `${what} failed: ${err.message}`;
  }
  render();
}

// ---------------------------------------------------------------- audits
async function renderAudits() {
  const exps = (await api("/api/experiments")).filter((e) => e.kind === "audit");
  const rows = exps.map((e) => {
    const r = e.report || {}, tb = r.tokens_by_role || {}, tr = r.trained_tokens_by_role || {};
    return el("tr", {}, el("td", {}, el("a", { href: "#/experiment/" + encodeURIComponent(e.id) }, e.id)),
      el("td", {}, r.env || e.config.env), el("td", {}, fmt(r.rollouts)),
      el("td", {}, fmt((r.turns || {}).mean)), el("td", {}, fmt((r.tool_calls || {}).mean)),
      el("td", {}, Object.entries(tb).map(([k, v]) => `${k} ${v}` + (tr[k] !== undefined ? ` (${tr[k]} trained)` : "")).join(" · ")),
      el("td", {}, fmt((r.context_length || {}).p95)), el("td", {}, fmt(r.truncated_share)),
      el("td", {}, (r.findings || []).map((f) => f.code).join(", ") || (e.report ? "none" : "no report")));
  });
  const reports = exps.filter((e) => e.report).map((e) => {
    const r = e.report, tb = r.tokens_by_role || {};
    const top = Math.max(1, ...Object.values(tb));
    const example = r.example_rollout && r.example_rollout.tokens ? el("p", { class: "tokens", "aria-label": "example rollout tokens" },
      r.example_rollout.tokens.map((t) => el("span", { class: `tok role-${t.role}${t.trained ? " trained" : ""}${t.attended === false ? " hidden" : ""}`,
        title: `${t.role}${t.trained ? ", trained" : ""}${t.attended === false ? ", hidden from attention" : ""}` }, t.text))) : "";
    return el("section", { class: "card", "aria-label": "report " + e.id },
      el("h2", {}, e.id),
      el("div", {}, Object.entries(tb).map(([k, v]) => el("div", {}, el("span", { style: "display:inline-block;width:6rem" }, k),
        el("span", { class: "bar", style: `width:${Math.round(200 * v / top)}px`, role: "img", "aria-label": `${k}: ${v} tokens` }), ` ${v}`))),
      el("ul", {}, (r.findings || []).map((f) => el("li", {}, el("strong", {}, f.code), ` (${f.severity}, ${f.count}${f.unit ? " " + f.unit : ""}): ${f.message}`,
        f.example ? el("pre", {}, typeof f.example === "string" ? f.example : JSON.stringify(f.example, null, 1)) : ""))),
      example ? el("div", { class: "legend meta" }, el("span", {}, "underlined: trained"), el("span", {}, "dashed: hidden from attention")) : "",
      example);
  });
  main.replaceChildren(el("h1", {}, "Audits"),
    el("table", { "aria-label": "method 2 comparison" },
      el("thead", {}, el("tr", {}, ["experiment", "env", "rollouts", "turns", "tool calls", "tokens by role", "context p95", "truncated", "findings"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : [el("tr", {}, el("td", { colspan: 9 }, "no audits yet"))])),
    ...reports);
}

// ---------------------------------------------------------------- routing and live updates
async function render() {
  const hash = location.hash || "#/";
  chartState = null;
  const m = hash.match(/^#\/experiment\/(.+)$/);
  view = m ? { name: "experiment", id: decodeURIComponent(m[1]) } : hash.startsWith("#/audits") ? { name: "audits" } : { name: "board" };
  try {
    if (view.name === "experiment") await renderExperiment(view.id);
    else if (view.name === "audits") await renderAudits();
    else await renderBoard();
  } catch (err) {
    main.replaceChildren(el("p", { role: "alert" }, "could not load: " + err.message));
  }
}
let pending = null, pendingCharts = null;
function scheduleRender() { if (!pending) pending = setTimeout(() => { pending = null; render(); }, 250); }
function scheduleCharts() { if (!pendingCharts) pendingCharts = setTimeout(() => { pendingCharts = null; updateCharts(); }, 250); }
window.addEventListener("hashchange", render);
const events = new EventSource("/api/events");
events.onopen = () => { live.textContent = "live"; };
events.onerror = () => { live.textContent = "reconnecting…"; };
for (const type of ["hypothesis", "experiment", "metrics", "report", "run", "vllm"]) {
  events.addEventListener(type, (e) => {
    const data = JSON.parse(e.data);
    if (type === "metrics") {
      if (view.name === "experiment" && chartState && (data.id === chartState.eid || data.id === chartState.controlId)) scheduleCharts();
      return;
    }
    scheduleRender();
  });
}
render();
