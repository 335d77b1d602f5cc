"""Metrics from the trainer to the coordinator: batched, retried, buffered, never blocking.

`MetricReporter.report(step, metrics)` normalises the trainer's metric names (docs/architecture.md, Metrics),
appends the event to `metrics.jsonl` next to the outputs at once, and queues it for a
background thread that POSTs batches to the coordinator with exponential backoff.
While the coordinator is away, unsent events wait in `metrics.pending.jsonl` and are
flushed when it answers again (also by the next run of the same experiment). Training
never waits for the coordinator and never fails because of it; a 409 (the experiment
is no longer running there) stops sending but not writing.

The log-line fallback: every event that could not be delivered (coordinator unreachable
or failing, or still unsent when the run ends) is also printed once to stdout as
`HYPOLAB_METRIC {json MetricEvent}`. The workload's stdout is its log, which the
coordinator reads: a coordinator that was down while the trainer ran (and ended) finds
every step there when it comes back. Stored twice is harmless: a (step, name) is stored
once, the last value kept.

`ReporterCallback` hooks the reporter into a transformers Trainer on the main process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ..contracts import MetricEvent

log = logging.getLogger("hypolab.trainer.reporter")

#: the prefix of a metric log line (the coordinator reads these from workload logs)
METRIC_LINE = "HYPOLAB_METRIC "

#: the trainers' names (legacy GRPOTrainer, current RLTrainer, transformers) -> hypolab's (docs/architecture.md)
RENAMES: dict[str, str] = {
    "train/reward": "reward",
    "reward/std": "reward_std",
    "completions/mean_length": "completion_length",
    "tokens/completion": "completion_length",
    "train_loss": "loss",
}
NAME_OK = re.compile(r"^[A-Za-z0-9_.:/-]{1,200}$")


def normalise(metrics: dict[str, Any]) -> dict[str, float]:
    """Finite numbers under hypolab's metric names; `train/` prefixes and odd names removed."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        value = float(value)
        if not math.isfinite(value) or abs(value) > 1e15:
            continue
        name = RENAMES.get(name, name)
        if name.startswith("train/"):
            name = name[len("train/"):]
        if name.startswith("reward/") and name != "reward/std":  # current stack: reward/<func>
            name = "rewards/" + name[len("reward/"):]
        name = RENAMES.get(name, name)
        if NAME_OK.match(name):
            out[name] = value
    return out


class MetricReporter:
    """Sends MetricEvents for one experiment; safe to call from the training loop."""

    def __init__(self, experiment_id: str, output_dir: Path, coordinator: str | None = None,
                 token: str | None = None, rehearsal: bool = False, batch_size: int = 50,
                 max_backoff_s: float = 30.0, timeout_s: float = 5.0) -> None:
        self.experiment_id = experiment_id
        self.rehearsal = rehearsal
        self.url = coordinator.rstrip("/") if coordinator else None
        self.token = token
        self.batch_size = batch_size
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        output_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = output_dir / "metrics.jsonl"
        self.pending = output_dir / "metrics.pending.jsonl"
        self.sent = 0
        self.refused = False  # the coordinator said 409: the experiment is not running there
        self._queue: queue.Queue[MetricEvent | None] = queue.Queue()
        self._lock = threading.Lock()
        self._printed: set[tuple[int, float]] = set()  # events already written as log lines
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=timeout_s) if self.url else None
        if self.url:
            self._thread = threading.Thread(target=self._run, name="metric-reporter", daemon=True)
            self._thread.start()

    # -- the training loop's side --------------------------------------------------------

    def report(self, step: int, metrics: dict[str, Any]) -> MetricEvent | None:
        values = normalise(metrics)
        if not values:
            return None
        event = MetricEvent(experiment_id=self.experiment_id, step=max(0, int(step)), time=time.time(),
                            metrics=values, rehearsal=self.rehearsal)
        line = event.model_dump_json() + "\n"
        with self._lock:
            with open(self.jsonl, "a", encoding="utf-8") as handle:
                handle.write(line)
        if self.url and not self.refused:
            self._queue.put(event)
        return event

    def post_json(self, path: str, body: dict[str, Any]) -> bool:
        """One best-effort POST (the resolved config, an audit report); False if it did not land."""
        if not self._client or not self.url:
            return False
        try:
            r = self._client.post(f"{self.url}{path}", json=body, headers=self._headers())
            return r.status_code < 300
        except httpx.HTTPError as exc:
            log.warning("coordinator unreachable for %s: %s", path, exc)
            return False

    def close(self, timeout_s: float = 15.0) -> None:
        """Flush what can be sent within `timeout_s`; the rest stays in metrics.pending.jsonl."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():  # still backing off: keep what is queued on disk
            self._spill(self._drain()[0])
        if self._client:
            self._client.close()
        self._thread = None

    # -- the background sender -----------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _drain(self) -> tuple[list[MetricEvent], bool]:
        """What is queued now, and whether close() asked to stop (its None sentinel)."""
        events, closing = [], False
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return events, closing
            if item is None:
                closing = True
            else:
                events.append(item)

    def _spill(self, events: list[MetricEvent]) -> None:
        """Keep undelivered events on disk for a later POST, and print them as log lines now."""
        if not events:
            return
        with self._lock:
            with open(self.pending, "a", encoding="utf-8") as handle:
                handle.writelines(e.model_dump_json() + "\n" for e in events)
            self._print_lines(events)

    def _print_lines(self, events: list[MetricEvent]) -> None:
        """The fallback: `HYPOLAB_METRIC {json}` on stdout (the workload's log), once per event."""
        fresh = [e for e in events if (e.step, e.time) not in self._printed]
        if fresh:
            sys.stdout.write("".join(METRIC_LINE + e.model_dump_json() + "\n" for e in fresh))
            sys.stdout.flush()
            self._printed.update((e.step, e.time) for e in fresh)

    def _load_pending(self) -> list[MetricEvent]:
        with self._lock:
            if not self.pending.exists():
                return []
            lines = self.pending.read_text(encoding="utf-8").splitlines()
            self.pending.unlink()
        events = []
        for line in lines:
            try:
                events.append(MetricEvent.model_validate_json(line))
            except ValueError:
                continue
        return events

    def _send(self, events: list[MetricEvent]) -> bool:
        """True when the batch is done with (stored, or refused for good)."""
        assert self._client is not None
        body = [e.model_dump(mode="json") for e in events]
        try:
            r = self._client.post(f"{self.url}/api/experiments/{self.experiment_id}/metrics",
                                  json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            log.debug("coordinator unreachable: %s", exc)
            return False
        if r.status_code < 300:
            self.sent += len(events)
            return True
        if r.status_code in (401, 403, 404, 409, 413, 422):
            if r.status_code == 409:
                self.refused = True
            log.warning("coordinator refused %d metric events (%s): %s", len(events), r.status_code, r.text[:200])
            return True
        return False  # 5xx: retry later

    def _run(self) -> None:
        backlog: list[MetricEvent] = self._load_pending()
        backoff = 0.5
        closing = False
        while True:
            try:
                item = self._queue.get(timeout=1.0 if backlog else None)
                if item is None:
                    closing = True
                else:
                    backlog.append(item)
                more, stop = self._drain()
                backlog.extend(more)
                closing = closing or stop
            except queue.Empty:
                pass
            while backlog and not self.refused:
                batch = backlog[: self.batch_size]
                if self._send(batch):
                    del backlog[: len(batch)]
                    backoff = 0.5
                    continue
                self._spill(backlog)  # on disk while we wait, so a crash loses nothing
                backlog = []
                if closing:
                    return
                time.sleep(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
                backlog = self._load_pending()
            if self.refused:
                backlog = []
            if closing:
                return


def reporter_from_env(experiment_id: str, output_dir: Path, coordinator: str | None,
                      rehearsal: bool) -> MetricReporter:
    """A reporter configured by the flags and the coordinator's env (HYPOLAB_COORDINATOR, the token)."""
    url = coordinator or os.environ.get("HYPOLAB_COORDINATOR")
    return MetricReporter(experiment_id, output_dir, url, job_token(), rehearsal)


def job_token() -> str | None:
    """The API token a workload was given: HYPOLAB_TOKEN, or HYPOLAB_TOKEN_FILE (a cluster
    job: the token stays out of the env its cluster shows)."""
    token = os.environ.get("HYPOLAB_TOKEN")
    if not token and os.environ.get("HYPOLAB_TOKEN_FILE"):
        try:
            token = Path(os.environ["HYPOLAB_TOKEN_FILE"]).read_text().strip()
        except OSError as exc:  # its events still reach the log as metric lines
            log.warning("HYPOLAB_TOKEN_FILE unreadable (%s): metrics go to the log only", exc)
    return token or None


def make_callback(reporter: MetricReporter) -> Any:
    """A transformers TrainerCallback that reports each log from the main process only."""
    from transformers import TrainerCallback

    class ReporterCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if state.is_world_process_zero and logs:
                reporter.report(state.global_step, logs)

    return ReporterCallback()

