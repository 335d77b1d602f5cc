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
// numbers as the spec or the metric has them: 1e-6 stays 1e-6, 0.2 stays 0.2 (never rounded to 0)
const num = (x) => (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6)) ? x.toExponential() : String(x);
// a computed figure (an effect, an interval end) at 4 significant digits, small ones in scientific notation
const sig = (x) => (typeof x !== "number") ? fmt(x) : num(Number(x.toPrecision(4)));
const fmt = (x) => (x === null || x === undefined) ? "—" : (typeof x === "number" ? num(x) : JSON.stringify(x));
const rehearsalBadge = (exp) => exp.rehearsal ? el("span", { class: "badge rehearsal", "data-rehearsal": "1",
  title: "CPU rehearsal: a few small steps on one process, not the planned run" }, "rehearsal") : "";

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
        el("li", {}, badge(e.status), " ", el("a", { href: "#/experiment/" + encodeURIComponent(e.id) }, e.id), ` (${e.kind}) `,
          rehearsalBadge(e)))));
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
const COLORS = ["#0b57d0", "#b3261e", "#146c2e"];
let toPlot = [];  // charts built but not drawn yet: plotly measures its container, so it draws once in the page
function chart(metric, series, marks) {
  const box = el("div", { class: "chart", role: "img", "aria-label": `${metric} by step`, "data-metric": metric,
    "data-points": String(series.length ? series[0].points.length : 0) });
  if (!series.some((s) => s.points.length)) { box.append(el("p", { class: "meta" }, "no data yet")); return box; }
  const traces = series.map((s, i) => {
    const pts = downsample(s.points);
    return { x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), name: s.name, type: "scatter",
             mode: pts.length > 1 ? "lines" : "markers", line: { color: COLORS[i % 3], width: 1.5 },
             hovertemplate: "step %{x}: %{y:.4~g}<extra>" + s.name + "</extra>" };
  });
  box.dataset.drawn = String(traces[0].x.length);
  // a decision is a dashed vertical line at its step, named in the legend like the curves
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const [lo, hi] = [Math.min(...ys), Math.max(...ys)];
  const seen = new Set();  // two rules deciding alike at one step draw one line
  for (const m of marks || []) {
    if (m.step === null || m.step === undefined || seen.has(m.step + m.label)) continue;
    seen.add(m.step + m.label);
    traces.push({ x: [m.step, m.step], y: [lo, hi], name: m.label, type: "scatter", mode: "lines", hoverinfo: "name",
                  line: { color: "#5c4400", dash: "dash", width: 1 } });
  }
  const axis = { exponentformat: "e", automargin: true, linecolor: "#8a939f", gridcolor: "#e6e8eb", zeroline: false,
                 tickfont: { size: 11, color: "#4a5360" } };
  const layout = { height: 280, margin: { l: 56, r: 16, t: 30, b: 44 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
                   font: { family: "system-ui, sans-serif", color: "#1b1f24" }, showlegend: true,
                   legend: { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom", font: { size: 11 } },
                   xaxis: { ...axis, title: { text: "step", font: { size: 12 } } },
                   yaxis: { ...axis, nticks: 8, title: { text: metric, font: { size: 12 } } } };
  toPlot.push(() => Plotly.newPlot(box, traces, layout, { displayModeBar: false, responsive: true }));
  return box;
}
function drawCharts() {
  const pending = toPlot; toPlot = [];
  for (const draw of pending) draw();
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
    .map((e) => ({ step: e.numbers.decided_at_step, label: `${decisionLabel(e.numbers)} · ${sig(e.numbers.effect)} [${(e.numbers.interval || []).map(sig).join(", ")}]` }));
  const diffPaths = new Set((exp.diff || []).map((d) => d.path));
  const flat = (obj, prefix = "") => Object.entries(obj || {}).flatMap(([k, v]) =>
    v && typeof v === "object" && !Array.isArray(v) && k !== "env_args" ? flat(v, prefix + k + ".") : [[prefix + k, v]]);
  // what ran: the config the trainer reported (rehearsal overrides applied), else the planned one
  const ran = exp.trainer_config || null, planned = Object.fromEntries(flat(exp.config));
  const overridden = Object.fromEntries(((ran && ran.overrides) || []).map((o) => [o.path, o.source]));
  const configRows = flat(ran ? ran.spec : exp.config).map(([k, v]) => el("tr", { class: diffPaths.has(k) ? "diff" : "", "data-field": k },
    el("td", {}, k), el("td", { class: "value" }, fmt(v)),
    el("td", {}, k in overridden ? `${overridden[k]}: planned ${fmt(planned[k])}` : ""),
    el("td", {}, diffPaths.has(k) ? "differs from " + exp.control_id : "")));
  const where = exp.rehearsal ? "CPU rehearsal (no GPU)" : `GPUs ${(exp.gpus || []).join(",") || "none"}`;
  const actions = el("div", {},
    el("button", { type: "button", id: "cancel", "aria-label": "cancel experiment " + eid,
      disabled: ["running", "queued", "pending"].includes(exp.status) ? null : "disabled",
      onclick: () => act(eid, "cancel") }, "Cancel"), " ",
    el("button", { type: "button", id: "retry", class: "secondary", "aria-label": "retry experiment " + eid,
      disabled: ["failed", "cancelled", "stalled"].includes(exp.status) ? null : "disabled",
      onclick: () => act(eid, "retry") }, "Retry"));
  const when = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "—";
  main.replaceChildren(
    el("h1", {}, eid, " ", badge(exp.status), " ", rehearsalBadge(exp)),
    el("p", { class: "meta" }, `${exp.kind} · ${where} · attempts ${exp.attempts} · container ${exp.container || "—"} · exit code ${fmt(exp.exit_code)}`,
      exp.reason ? ` · ${exp.reason}` : ""),
    el("p", { class: "meta" }, `created ${when(exp.created_at)} → queued ${when(exp.queued_at)} → started ${when(exp.started_at)} → finished ${when(exp.finished_at)}`),
    actions,
    el("h2", {}, "Curves"),
    decisions.length ? el("ul", { class: "decisions", "aria-label": "decisions" },
      decisions.map((e) => el("li", { "data-decision": e.numbers.decision }, `${e.rule}: ${decisionLabel(e.numbers)}`))) : "",
    el("section", { class: "charts", id: "charts" }, chartFigures(eid, metrics, exp.control_id, control, marks)),
    el("h2", {}, ran ? "Config as run" : "Resolved config (planned)"),
    el("table", { "aria-label": "resolved config" }, el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "value"),
      el("th", {}, "override"), el("th", {}, "vs control"))), el("tbody", {}, configRows)),
    el("h2", {}, "Log"),
    el("pre", { class: "log", tabindex: "0", "aria-label": "log tail" }, exp.log_tail || "(empty)"));
  drawCharts();
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
  if (box) { box.replaceChildren(...chartFigures(chartState.eid, metrics, chartState.controlId, control, chartState.marks)); drawCharts(); }
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
// Every token of the example sequence shows its role (colour), whether it carries loss
// (solid underline) and whether the trainer's attention saw it (faded and struck: hidden;
// dotted outline: not observed). The legend is drawn with the same classes as the tokens.
const LOSS = { true: ["loss", "carries loss (underlined)"], false: ["no-loss", "no loss (not underlined)"] };
const ATTN = { true: ["attended", "attended (solid)"], false: ["hidden", "hidden from attention (faded, struck through)"],
               null: ["unobserved", "attention not observed (dotted box)"] };
function tokenClasses(t) {
  const attn = ATTN[t.attended === undefined ? null : t.attended];
  return [`tok role-${t.role} ${LOSS[!!t.trained][0]} ${attn[0]}`, `${t.role} · ${LOSS[!!t.trained][1]} · ${attn[1]}`];
}
function tokenView(tokens) {
  const roles = [...new Set(tokens.map((t) => t.role))];
  const states = new Set(tokens.map((t) => tokenClasses(t)[0].split(" ").slice(2)).flat());
  const sample = (cls, label) => el("span", { class: "legend-item" }, el("span", { class: "tok sample " + cls }, "tok"), " " + label);
  const legend = el("div", { class: "legend meta", "aria-label": "token legend" },
    roles.map((r) => sample("role-" + r, r)),
    [...Object.values(LOSS), ...Object.values(ATTN)].filter(([cls]) => states.has(cls)).map(([cls, label]) => sample(cls, label)));
  return el("div", {}, el("h3", {}, "Example training sequence"), legend,
    el("p", { class: "tokens", "aria-label": "example rollout tokens" }, tokens.map((t) => {
      const [cls, title] = tokenClasses(t);
      return el("span", { class: cls, title }, t.text);
    })));
}
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
    const tokens = (r.example_rollout && r.example_rollout.tokens) || [];
    return el("section", { class: "card", "aria-label": "report " + e.id },
      el("h2", {}, e.id, " ", r.rehearsal ? el("span", { class: "badge rehearsal" }, "rehearsal") : ""),
      el("div", {}, Object.entries(tb).map(([k, v]) => el("div", {}, el("span", { style: "display:inline-block;width:6rem" }, k),
        el("span", { class: "bar", style: `width:${Math.round(200 * v / top)}px`, role: "img", "aria-label": `${k}: ${v} tokens` }), ` ${v}`))),
      el("ul", { class: "findings" }, (r.findings || []).map((f) => el("li", { "data-finding": f.code }, el("strong", {}, f.code),
        ` (${f.severity}, ${f.count}${f.unit ? " " + f.unit : ""}): ${f.message}`,
        f.meaning ? el("p", { class: "meaning" }, el("strong", {}, "What this means for training: "), f.meaning) : "",
        f.example ? el("pre", {}, typeof f.example === "string" ? f.example : JSON.stringify(f.example, null, 1)) : ""))),
      tokens.length ? tokenView(tokens) : "");
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
  toPlot = [];
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
