"""`hypolab demo` / `make demo`: the embedded default, end to end on CPU, in a few minutes.

It starts a coordinator on 127.0.0.1 (SQLite, local runner) in its own process, submits
H07 (which brings H06 first), and follows the board: the training experiments run as
CPU rehearsals of the real legacy trainer (tiny Qwen2, scripted policy, one step each,
labelled rehearsal and never counted as evidence), the audits run for real. It ends
with the board, the audit findings, and the H07 method-2 page the coordinator serves.
It exits 1, naming them, when any experiment failed, stalled or was still unfinished
when following stopped (`--timeout-s`).

`--dir` may be relative (the default is `outputs/demo`): it is resolved against the
directory the command was typed in, before the coordinator and its workloads see it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from .coordinator.client import follow_run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Statuses of a submitted experiment that did not succeed (pending: never submitted).
NOT_SUCCEEDED = ("failed", "stalled", "cancelled", "queued", "running")


def unfinished(experiments: list[dict]) -> list[str]:
    """'<id> <status>' for each submitted experiment that did not succeed."""
    return [f"{e['id']} {e['status']}" for e in experiments if e["status"] in NOT_SUCCEEDED]


INTROS = {
    "H07": "demo: H06 then H07 — trainings are CPU rehearsals (tiny model, scripted policy), audits are real",
    "H90": "demo: H90, the learning rehearsal — SmolLM2-135M trained on CPU, real weight sync, live verdict "
           "(about 15 minutes on 2 cores)",
}


def run_demo(directory: Path, timeout_s: float = 1800, port: int | None = None, hypothesis: str = "H07") -> int:
    console = Console()
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    url, token = f"http://127.0.0.1:{port}", secrets.token_hex(16)
    env = {**os.environ, "HYPOLAB_REHEARSAL_MAX_STEPS": os.environ.get("HYPOLAB_REHEARSAL_MAX_STEPS", "1"),
           "HYPOLAB_TOKEN": token}
    log = open(directory / "coordinator.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypolab", "coordinator", "--port", str(port), "--db", str(directory / "lab.sqlite"),
         "--data-dir", str(directory), "--runner", "local"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            console.print(f"[red]demo: the coordinator did not start; see {directory / 'coordinator.log'}[/]")
            return 1
        console.print(f"demo: coordinator at {url} (SQLite {directory / 'lab.sqlite'}); dashboard at {url}/")
        console.print(INTROS.get(hypothesis, f"demo: {hypothesis} (and what it comes after) as CPU rehearsals"))
        code = follow_run(url, token, [hypothesis], timeout_s=timeout_s)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            exps = client.get("/api/experiments").json()
            for e in exps:
                report = client.get(f"/api/experiments/{e['id']}").json().get("report")
                if not report:
                    continue
                found = ", ".join(f["code"] for f in report.get("findings", [])) or "no findings"
                console.print(f"[bold]{e['id']}[/] ({report['env']}, {report['stack']} stack): {found}", highlight=False)
                for f in report.get("findings", []):
                    if f["code"] == "CONTEXT_HIDDEN_FROM_ATTENTION":
                        console.print(f"  {f['message']}", highlight=False)
            page = client.get(f"/api/hypotheses/{hypothesis}/audit.html")
            if page.status_code == 200 and any(e.get("kind") == "audit" for e in exps):
                name = f"{hypothesis.lower()}-audit.html"
                (directory / name).write_text(page.text)
                console.print(f"report: {directory / name} (served at {url}/api/hypotheses/{hypothesis}/audit.html)")
            verdict = (client.get(f"/api/hypotheses/{hypothesis}").json().get("verdict") or {})
            for ev in verdict.get("evidence", []):
                if ev.get("holds") is True and ev.get("numbers", {}).get("decision"):
                    console.print(f"decided by: {ev['detail']}", highlight=False)  # the decision step, its interval
            bad = unfinished(exps)
            for e in exps:  # workloads outlive their coordinator: stop what is still going
                if e["status"] in ("queued", "running"):
                    client.post(f"/api/experiments/{e['id']}/cancel")
        if bad:
            console.print(f"[red]demo: did not succeed: {'; '.join(bad)} (logs: {directory / 'outputs'}/<id>/)[/]",
                          highlight=False)
            return 1
        console.print(f"the curves stay on the dashboard: hypolab coordinator --db {directory / 'lab.sqlite'} "
                      f"--data-dir {directory}", highlight=False)
        return code
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
