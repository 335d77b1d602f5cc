"""Reaping: record how finished workloads ended, collect metric lines from their logs, retry.

A workload's exit code decides succeeded or failed (a training stopped early by its
verdict succeeds whatever its code); an audit's report is read from its output folder;
`HYPOLAB_METRIC {json}` lines in any log are the fallback path for metrics.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from pydantic import ValidationError

from ...contracts import ExperimentStatus, MetricEvent
from ..store import ExperimentRow
from .workspace import EARLY_STOP, Workspace, tail

METRIC_LINE = "HYPOLAB_METRIC "


class Reaper:
    def __init__(self, ws: Workspace, on_training_failed: Callable[[], None]):
        self.ws = ws
        self.on_training_failed = on_training_failed  # vLLM's weight-sync communicator initialises once

    def reap(self) -> None:
        for exp in self.ws.store.experiments(status=ExperimentStatus.running):
            self.read_metric_lines(exp.id)
            code = self.ws.runner.poll(exp.handle) if exp.handle else -1
            if code is None:
                continue
            self.read_metric_lines(exp.id)
            self._record_end(exp, code)

    def _record_end(self, exp: ExperimentRow, code: int) -> None:
        fields: dict[str, Any] = {"exit_code": code, "finished_at": time.time(),
                                  "log_tail": tail(self.ws.log_path(exp.id))}
        if code == 0 or exp.reason.startswith(EARLY_STOP):
            fields["status"] = ExperimentStatus.succeeded
            if exp.kind == "audit":
                fields["report"] = self._read_report(exp.id)
            self.ws.store.update_experiment(exp.id, **fields)
            return
        fields["status"] = ExperimentStatus.failed
        fields["reason"] = (self.ws.runner.end_reason(exp.handle or "") or
                            (f"exit code {code}" if code >= 0 else "ended without an exit code (killed hard)"))
        if exp.kind == "train":
            self.on_training_failed()
        with self.ws.store.transaction():
            self.ws.store.update_experiment(exp.id, **fields)
            self.maybe_retry(exp.id, fields["reason"])

    def maybe_retry(self, eid: str, why: str) -> None:
        """The experiment's retry policy: requeue it while attempts remain."""
        planned, row = self.ws.planned(eid), self.ws.store.experiment(eid)
        if planned is None or row is None or row.attempts > planned.retries:
            return
        self.ws.store.update_experiment(eid, status=ExperimentStatus.queued, handle=None, queued_at=time.time(),
                                        reason=f"retry {row.attempts}/{planned.retries} after: {why}")

    def _read_report(self, eid: str) -> dict[str, Any] | None:
        path = self.ws.output_dir(eid) / "audit.json"
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def read_metric_lines(self, eid: str) -> None:
        """Fallback path: `HYPOLAB_METRIC {json MetricEvent}` lines in the workload's log."""
        path = self.ws.log_path(eid)
        if not path.exists():
            return
        offset = self.ws.log_offsets.get(eid, 0)
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
        complete = chunk.rfind(b"\n") + 1
        self.ws.log_offsets[eid] = offset + complete
        events = []
        for raw in chunk[:complete].decode("utf-8", "replace").splitlines():
            idx = raw.find(METRIC_LINE)
            if idx < 0:
                continue
            try:
                event = MetricEvent.model_validate_json(raw[idx + len(METRIC_LINE):])
            except ValidationError:
                continue
            if event.experiment_id == eid:
                events.append(event)
        if events:
            self.ws.store.add_metrics(eid, [(e.step, e.time, e.metrics) for e in events],
                                      rehearsal=any(e.rehearsal for e in events))
