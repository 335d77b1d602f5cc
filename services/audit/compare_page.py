"""Presenting audit reports: the H07 method-2 table (rich) and one self-contained HTML page.

Pure presentation over AuditReport dicts, so the coordinator can serve the page without
the audit's heavy dependencies (transformers, verifiers).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ..contracts import AuditReport, Finding
from .sequences import ROLES


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * float(x):.0f}%"


def compare_table(reports: list[AuditReport]) -> Table:
    """H07 method 2: the environments side by side, one column each."""
    table = Table(title="Conversation structure and training sequences (H07 method 2)")
    table.add_column("")
    for r in reports:
        table.add_column(f"{r.env} ({r.stack})")
    d = [r.model_dump() for r in reports]

    def row(label: str, f: Any) -> None:
        table.add_row(label, *[str(f(x)) for x in d])

    row("rollouts", lambda x: x["rollouts"])
    row("turns min/mean/max", lambda x: "/".join(str(x.get("turns", {}).get(k, "")) for k in ("min", "mean", "max")))
    row("tool calls min/mean/max", lambda x: "/".join(str(x.get("tool_calls", {}).get(k, "")) for k in ("min", "mean", "max")))
    for role in ROLES:
        row(f"tokens: {role}", lambda x, role=role: x["tokens_by_role"].get(role, 0))
    for role in ("assistant", "tool"):
        row(f"trained share: {role}", lambda x, role=role: _pct(x.get("trained_share_by_role", {}).get(role)))
    row("context p50/p95/max", lambda x: "/".join(str(x.get("context_length", {}).get(k, "")) for k in ("p50", "p95", "max")))
    row("truncated", lambda x: _pct(x.get("truncated_share")))
    row("zero-variance groups", lambda x: _pct((x.get("groups") or {}).get("zero_variance_share")))
    row("attended: prompt (user)", lambda x: _pct(((x.get("attention") or {}).get("visible_share") or {}).get("user")))
    row("attended: tool", lambda x: _pct(((x.get("attention") or {}).get("visible_share") or {}).get("tool")))
    row("findings", lambda x: ", ".join(f["code"] for f in x["findings"]) or "none")
    return table


def counted(f: Finding) -> str:
    """'error, 12 turns': the severity and the count in its unit, as every view prints them."""
    return f"{f.severity}, {f.count}" + (f" {f.unit}" if f.unit else "")


def attention_line(report: AuditReport) -> str:
    """Where the report's attention facts come from (or that there are none)."""
    replay = report.replay
    if replay is not None and not replay.observed:
        return f"attention: not observed ({replay.note})"
    if replay is not None:
        return (f"attention: observed by replaying {replay.rollouts} rollouts (lines "
                f"{', '.join(map(str, replay.lines))}; {replay.sequences} sequences) through {replay.trainer}: "
                f"{replay.seconds:.1f} s on {replay.cpus} CPU cores")
    if report.attention is not None:
        return f"attention: observed in {report.attention.sequences} sequences the trainer fed its model"
    return "attention: not observed (no trainer masks for this source)"


def print_report(report: AuditReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(compare_table([report]))
    if report.groups is not None and report.groups.note:
        console.print(f"groups: {report.groups.count}, by {report.groups.by}: {report.groups.note}", highlight=False)
    console.print(attention_line(report), highlight=False)
    for f in report.findings:
        console.print(f"[bold]{f.code}[/bold] ({counted(f)}): {f.message}", highlight=False)


#: Each token's loss and attention state as a class, with the legend's words (the
#: dashboard's token view, services/coordinator/static/app.js, uses the same classes).
LOSS_STATES = {True: ("loss", "carries loss (underlined)"), False: ("no-loss", "no loss (not underlined)")}
ATTENTION_STATES = {True: ("attended", "attended (solid)"),
                    False: ("hidden", "hidden from attention (faded, struck through)"),
                    None: ("unobserved", "attention not observed (dotted box)")}
TOKEN_CSS = (".tok{border-radius:2px;padding:0 1px}.role-system{background:#e6e8eb}.role-user{background:#dbeafe}"
             ".role-assistant{background:#d8f3dc}.role-tool{background:#fde2e1}.sample{background:#eef0f3}"
             ".tok.loss{text-decoration:underline 2px #0f4d23;text-underline-offset:3px}"
             ".tok.hidden{opacity:.55;text-decoration-line:line-through;outline:1px dashed #8a1c14}"
             ".tok.loss.hidden{text-decoration-line:underline line-through}.tok.unobserved{outline:1px dotted #4a5360}"
             ".legend span.item{margin-right:1rem;white-space:nowrap}")


def token_classes(tok: dict[str, Any]) -> tuple[str, str]:
    """('tok role-user no-loss hidden', 'user · no loss · hidden from attention'): class and title."""
    loss, attention = LOSS_STATES[bool(tok["trained"])], ATTENTION_STATES[tok.get("attended")]
    return (f"tok role-{tok['role']} {loss[0]} {attention[0]}",
            f"{tok['role']} · {loss[1].split(' (')[0]} · {attention[1].split(' (')[0]}")


def token_view(tokens: list[dict[str, Any]]) -> str:
    """The example sequence, every token marked, under a legend drawn with the same classes."""
    from html import escape

    states = {c for tok in tokens for c in token_classes(tok)[0].split()[2:]}
    roles = list(dict.fromkeys(tok["role"] for tok in tokens))
    sample = "<span class='item'><span class='tok {cls}'>tok</span> {label}</span>"
    legend = [sample.format(cls=f"role-{r}", label=escape(r)) for r in roles]
    legend += [sample.format(cls=f"sample {cls}", label=label)
               for cls, label in [*LOSS_STATES.values(), *ATTENTION_STATES.values()] if cls in states]
    spans = []
    for tok in tokens:
        cls, title = token_classes(tok)
        spans.append(f"<span class='{cls}' title='{escape(title)}'>{escape(tok['text'])}</span>")
    return (f"<h3>Example training sequence</h3><p class='legend'>{' '.join(legend)}</p>"
            f"<p class='t tokens'>{''.join(spans)}</p>")


def html_page(reports: list[AuditReport]) -> str:
    """One self-contained HTML page: the comparison table and each report's findings."""
    from html import escape

    import io

    console = Console(record=True, width=160, file=io.StringIO())  # recorded for the page, not printed
    console.print(compare_table(reports))
    table_html = console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><title>hypolab audit</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
             "td,th{padding:.2rem .5rem;border-bottom:1px solid #ddd;text-align:left}"
             ".t{font-family:monospace;white-space:pre-wrap}" + TOKEN_CSS + "</style></head><body>",
             "<h1>hypolab audit</h1>", table_html]
    for r in reports:
        parts.append(f"<h2>{escape(r.env)} on the {escape(r.stack)} stack"
                     f"{' (rehearsal: scripted policy)' if r.rehearsal else ''}</h2><p>{escape(attention_line(r))}</p>"
                     "<table><tr><th>code</th><th>severity</th><th>count</th><th>message</th></tr>")
        for f in r.findings:
            parts.append(f"<tr><td>{escape(f.code)}</td><td>{f.severity}</td><td>{f.count} {escape(f.unit or '')}</td><td>{escape(f.message)}"
                         + (f"<p class='meaning'><strong>What this means for training:</strong> {escape(f.meaning)}</p>"
                            if f.meaning else "") + "</td></tr>")
        parts.append("</table>")
        diff = r.model_dump().get("template_diff")
        if diff:
            parts.append(f"<p>Training sequence vs chat template: first difference at token {diff['first_position']} "
                         f"({diff['rollouts_differing']} rollouts differ).</p><p>training: <code>{escape(repr(diff['training']))}</code><br>"
                         f"template: <code>{escape(repr(diff['template']))}</code></p>")
            changes = diff.get("changes") or []
            if changes:
                parts.append("<table><tr><th>change</th><th>at (training / template)</th><th>training has</th><th>template has</th></tr>")
                for c in changes:
                    parts.append(f"<tr><td>{c['op']}</td><td>{c['training_position']} / {c['template_position']}</td>"
                                 f"<td><code>{escape(repr(c['training']))}</code></td><td><code>{escape(repr(c['template']))}</code></td></tr>")
                parts.append("</table>")
        example = (r.model_dump().get("example_rollout") or {}).get("tokens") or []
        if example:
            parts.append(token_view(example))
    parts.append("</body></html>")
    return "".join(parts)
