"""The CLI's side of the HTTP API: `hypolab run` (submit + follow) and `hypolab status`."""

from __future__ import annotations

import json
import time
import uuid

import httpx
from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..contracts import DECIDED

STATUS_STYLE = {
    "untested": "dim", "testing": "yellow", "validated": "green", "invalidated": "red", "inconclusive": "magenta",
    "pending": "dim", "queued": "cyan", "running": "yellow", "succeeded": "green", "failed": "red",
    "cancelled": "magenta", "stalled": "red",
}


def _styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def short_id(experiment_id: str, hypothesis_id: str) -> str:
    """`H07.math-python` under H07 shows as `math-python`: the row already names H07."""
    return experiment_id.removeprefix(f"{hypothesis_id}.")


#: the board's columns but the title: (name, width); the title gets what is left.
BOARD_COLUMNS = (("hyp.", 4), ("status", 12), ("experiment", 22), ("exp. status", 11), ("step", 5))


class Board:
    """The board: one line per experiment, titles cut to the terminal's width, verdicts below."""

    def __init__(self, hypotheses: list[dict], experiments: list[dict], last_steps: dict[str, int] | None = None):
        self.hypotheses, self.experiments, self.last_steps = hypotheses, experiments, last_steps or {}

    def table(self, title_width: int) -> Table:
        table = Table(title="hypolab board", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        for name, w in (BOARD_COLUMNS[0], ("title", title_width), *BOARD_COLUMNS[1:]):
            table.add_column(name, max_width=w, overflow="ellipsis", no_wrap=True,
                             justify="right" if name == "step" else "left")
        by_hyp: dict[str, list[dict]] = {}
        for e in self.experiments:
            by_hyp.setdefault(e["hypothesis_id"], []).append(e)
        for h in self.hypotheses:
            status = "queued" if h.get("queued") and h["status"] == "untested" else h["status"]
            for i, e in enumerate(by_hyp.get(h["id"], []) or [None]):
                table.add_row(
                    h["id"] if i == 0 else "", h["title"] if i == 0 else "", _styled(status) if i == 0 else "",
                    short_id(e["id"], h["id"]) + ("*" if e.get("rehearsal") else "") if e else "—",
                    _styled(e["status"]) if e else "",
                    str(self.last_steps.get(e["id"], "")) if e else "",
                )
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        title_width = 48
        natural = Measurement.get(console, options.update_width(1000), self.table(title_width)).maximum
        excess = natural - options.max_width
        yield self.table(max(8, title_width - max(0, excess)))
        if any(e.get("rehearsal") for e in self.experiments):
            yield Text("* a CPU rehearsal: a few small steps on one process, not the planned run")
        for h in self.hypotheses:
            sentence = (h.get("verdict") or {}).get("sentence")
            if sentence:  # the verdicts' sentences start with their hypothesis' id
                yield Text(sentence) if sentence.startswith(h["id"]) else Text.assemble((h["id"], "bold"), ": ", sentence)


def short_id(experiment_id: str, hypothesis_id: str) -> str:
    """`H07.math-python` under H07 shows as `math-python`: the row already names H07."""
    return experiment_id.removeprefix(f"{hypothesis_id}.")


def board_table(hypotheses: list[dict], experiments: list[dict], last_steps: dict[str, int] | None = None) -> Board:
    """The board as a rich renderable (a table, then the verdicts), readable at 80 columns."""
    return Board(hypotheses, experiments, last_steps)


def print_board(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            hyps = client.get("/api/hypotheses").raise_for_status().json()
            exps = client.get("/api/experiments").raise_for_status().json()
    except httpx.HTTPError as exc:
        Console(stderr=True).print(f"[red]status: coordinator at {url}: {exc}[/]")
        return 1
    Console().print(board_table(hyps, exps))
    try:
        health = httpx.get(f"{url}/api/health", timeout=5).json()
        queue, vllm = health.get("queue", {}), health.get("vllm", {})
        Console().print(f"queue: {'running' if queue.get('ok', True) else '[red]paused[/] — ' + queue.get('detail', '')}"
                        f" · vLLM: {vllm.get('detail', '?')}", highlight=False)
        if health.get("cluster"):
            Console().print(f"cluster: {health['cluster']['detail']}", highlight=False)
    except httpx.HTTPError:
        pass
    return 0


def follow_run(url: str, token: str, hypotheses: list[str], follow: bool = True, timeout_s: float = 0) -> int:
    """POST /api/runs, then redraw the board on every event until the run's hypotheses are decided."""
    console = Console()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        resp, code = _post(console, "run", client, url, "/api/runs",
                           {"hypotheses": hypotheses, "request_key": uuid.uuid4().hex})
        if resp is None:
            return code
        receipt = resp.json()
        console.print(f"run {receipt['run_id']}: {', '.join(receipt['hypotheses'])}")
        if not follow:
            return 0
        watched = set(receipt["hypotheses"])
        deadline = time.monotonic() + timeout_s if timeout_s else None
        last_steps: dict[str, int] = {}
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                hyps = client.get("/api/hypotheses").json()
                exps = client.get("/api/experiments").json()
                for e in exps:
                    if e["status"] == "running":
                        m = client.get(f"/api/experiments/{e['id']}/metrics",
                                       params={"since": last_steps.get(e["id"], -1), "name": "reward"}).json()
                        if m:
                            last_steps[e["id"]] = m[-1]["step"]
                for h in hyps:  # follow what the verdicts queue next
                    if h["id"] in watched and h["status"] in DECIDED:
                        watched |= set((h.get("verdict") or {}).get("queued_next", []))
                live.update(board_table(hyps, exps, last_steps))
                state = {h["id"]: h["status"] for h in hyps}
                busy = any(e["status"] in ("queued", "running") for e in exps)
                if all(state.get(h) in DECIDED for h in watched) and not busy:
                    break
                if deadline and time.monotonic() > deadline:
                    console.print("[yellow]stopped following (timeout); the run goes on[/]")
                    return 0
                _wait_for_event(client, timeout=2.0)
    if not console.is_terminal:  # Live leaves its last frame without a line end there
        console.line()
    return report_failures(console, exps, watched)  # the board's last frame ends with the verdicts


def _post(console: Console, command: str, client: httpx.Client, url: str, path: str,
          body: dict | None) -> tuple[httpx.Response | None, int]:
    """The response, or (None, exit code) after one line: 1 unreachable, 2 refused."""
    try:
        resp = client.post(path, json=body)
    except httpx.HTTPError as exc:
        console.print(f"[red]{command}: coordinator at {url} unreachable: {exc}[/]", soft_wrap=True)
        return None, 1
    if resp.status_code != 200:
        console.print(f"[red]{command}: {resp.status_code}: {resp.json().get('detail')}[/]", highlight=False,
                      soft_wrap=True)
        return None, 2
    return resp, 0


def cancel_experiment(url: str, token: str, experiment_id: str) -> int:
    """POST /api/experiments/<id>/cancel: one line saying what it is now."""
    console = Console()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        resp, code = _post(console, "cancel", client, url, f"/api/experiments/{experiment_id}/cancel", None)
    if resp is None:
        return code
    exp = resp.json()
    console.print(f"{exp['id']}: {_styled(exp['status'])}" + (f" ({exp['reason']})" if exp.get("reason") else ""),
                  highlight=False, soft_wrap=True)
    return 0


def report_failures(console: Console, exps: list[dict], hypotheses: set[str]) -> int:
    """One line per experiment of these hypotheses that failed or stalled, with its reason
    (the board has no room for it); 1 when there is any."""
    bad = [e for e in exps if e["hypothesis_id"] in hypotheses and e["status"] in ("failed", "stalled")]
    for e in bad:
        console.print(f"[red]{e['id']} {e['status']}[/]: {e.get('reason') or 'no reason recorded'}", highlight=False,
                      soft_wrap=True)
    return 1 if bad else 0


def _wait_for_event(client: httpx.Client, timeout: float) -> None:
    """Block until the next server-sent event (or `timeout`), so redraws follow changes."""
    try:
        with client.stream("GET", "/api/events", timeout=httpx.Timeout(timeout + 1, read=timeout)) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    json.loads(line[5:])
                    return
    except (httpx.HTTPError, json.JSONDecodeError):
        return
