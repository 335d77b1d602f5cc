"""Stall watch: a training silent for longer than its stall timeout is stopped and retried.

NCCL weight syncs hang quietly: no exit, no error, just no more metrics. The workload is
stopped in a thread of its own (SIGTERM, then kill after 10 s) so the lab never waits
on it, and vLLM is restarted before the next training (its weight-sync group is broken too).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ...contracts import ExperimentStatus
from .workspace import EARLY_STOP, Workspace, tail


class StallWatch:
    def __init__(self, ws: Workspace, retry: Callable[[str, str], None], on_stall: Callable[[], None]):
        self.ws, self.retry, self.on_stall = ws, retry, on_stall

    def check(self) -> None:
        now = time.time()
        for exp in self.ws.store.experiments(status=ExperimentStatus.running):
            planned = self.ws.planned(exp.id)
            if exp.kind != "train" or planned is None or exp.reason.startswith(EARLY_STOP):
                continue
            last = max(filter(None, (exp.last_metric_at, exp.started_at)), default=now)
            if now - last <= planned.stall_timeout_s:
                continue
            why = f"no metrics for {now - last:.0f}s (stall timeout {planned.stall_timeout_s:.0f}s)"
            with self.ws.store.transaction():
                self.ws.store.update_experiment(exp.id, status=ExperimentStatus.stalled, reason=why, finished_at=now,
                                                log_tail=tail(self.ws.log_path(exp.id)))
                self.retry(exp.id, why)
            if exp.handle:
                threading.Thread(target=self.ws.runner.stop, args=(exp.handle, 10.0), daemon=True).start()
            self.on_stall()
