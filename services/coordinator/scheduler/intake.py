"""The lab's request side: what the HTTP routes ask of it (submit, cancel, retry, ingest, attach).

Each method checks the request against the current state, refuses with a `LabError`
(the HTTP status and a one-line reason) or changes the state in one transaction.
Stopping a cancelled workload happens after the lab's lock is released.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import BaseModel

from ...contracts import DECIDED, FINISHED, RETRYABLE, ExperimentStatus, HypothesisStatus, MetricEvent
from ..planner import run_order
from ..runners import training_gpus
from ..store import ExperimentRow
from .workspace import LabError, Workspace, tail


class RunReceipt(BaseModel):
    """What `POST /api/runs` answers: the run, the hypotheses it queued, whether it is new."""

    run_id: int
    hypotheses: list[str]
    created: bool


class Intake:
    def __init__(self, ws: Workspace, lock: threading.RLock):
        self.ws, self.lock = ws, lock

    def experiment_or_404(self, eid: str) -> ExperimentRow:
        exp = self.ws.store.experiment(eid)
        if exp is None:
            raise LabError(404, f"unknown experiment {eid!r}")
        return exp

    def submit(self, requested: list[str], request_key: str | None) -> RunReceipt:
        """Queue hypotheses (and what they come after). Idempotent per request key."""
        store = self.ws.store
        with self.lock:
            if request_key:
                existing = store.find_run(request_key)
                if existing:
                    return RunReceipt(run_id=existing.id, hypotheses=existing.hypotheses, created=False)
            try:
                order = run_order(requested, self.ws.hypotheses)
            except KeyError as exc:
                raise LabError(404, f"{exc.args[0]} (hypothesis files are read when the coordinator "
                                    "starts: restart it after adding one)") from None
            refused = [p for hid in order for p in self.ws.plans[hid] if not p.controlled]
            if refused:
                p = refused[0]
                raise LabError(422, f"refused: {p.id} differs from its control {p.control_id} in undeclared "
                                    f"field(s) {', '.join(p.undeclared)}; declare them in `vary`")
            self._refuse_infeasible(order)
            with store.transaction():
                run_id = store.add_run(request_key, order)
                for hid in order:
                    if store.hypothesis(hid).status == HypothesisStatus.untested:
                        store.set_hypothesis(hid, HypothesisStatus.untested, queued=True)
            return RunReceipt(run_id=run_id, hypotheses=order, created=True)

    def _refuse_infeasible(self, order: list[str]) -> None:
        """A training no node of the runner could ever hold is refused now, not left waiting unseen."""
        for p in (p for hid in order for p in self.ws.plans[hid] if p.kind == "train"):
            try:
                why = self.ws.runner.infeasible(training_gpus(p.spec.model_dump(mode="json")))
            except RuntimeError as exc:  # the cluster does not answer
                raise LabError(503, str(exc)) from None
            if why:
                raise LabError(422, f"refused: {p.id} {why}")

    def cancel(self, eid: str) -> ExperimentRow:
        """Mark it cancelled now; its workload is stopped (SIGTERM, then kill) outside the lock."""
        with self.lock:
            exp = self.experiment_or_404(eid)
            if exp.status in FINISHED:
                raise LabError(409, f"{eid} is already {exp.status}")
            self.ws.store.update_experiment(eid, status=ExperimentStatus.cancelled, reason="cancelled by request",
                                            finished_at=time.time())
        if exp.status == ExperimentStatus.running and exp.handle:
            self.ws.runner.stop(exp.handle, grace_s=30)
        self.ws.store.update_experiment(eid, log_tail=tail(self.ws.log_path(eid)))
        return self.experiment_or_404(eid)

    def retry(self, eid: str) -> ExperimentRow:
        store = self.ws.store
        with self.lock:
            exp = self.experiment_or_404(eid)
            if exp.status not in RETRYABLE:
                raise LabError(409, f"{eid} is {exp.status}; only failed, cancelled or stalled experiments retry")
            with store.transaction():
                store.update_experiment(eid, status=ExperimentStatus.queued,
                                        reason=f"retry (attempt {exp.attempts + 1})", exit_code=None, handle=None,
                                        queued_at=time.time(), finished_at=None)
                if store.hypothesis(exp.hypothesis_id).status in DECIDED:  # new evidence reopens the question
                    store.set_hypothesis(exp.hypothesis_id, HypothesisStatus.testing)
            return self.experiment_or_404(eid)

    def ingest(self, eid: str, events: list[MetricEvent]) -> int:
        """Store metric events for a running experiment; returns the values stored.

        The hot path: no lock, one short transaction; the next tick judges them.
        """
        exp = self.ws.store.experiment_state(eid)
        if exp is None:
            raise LabError(404, f"unknown experiment {eid!r}")
        wrong = [e.experiment_id for e in events if e.experiment_id != eid]
        if wrong:
            raise LabError(422, f"event for {wrong[0]!r} posted to {eid!r}: experiment_id must match the path")
        if exp.status != ExperimentStatus.running:
            raise LabError(409, f"{eid} is {exp.status}: metrics are accepted only while it runs")
        if not events:
            return 0
        return self.ws.store.add_metrics(eid, [(e.step, e.time, e.metrics) for e in events],
                                         rehearsal=any(e.rehearsal for e in events))

    def attach(self, eid: str, column: str, value: dict[str, Any]) -> None:
        """The trainer's resolved config (`trainer_config`) or an audit report (`report`)."""
        self.experiment_or_404(eid)
        with self.ws.store.transaction():
            self.ws.store.update_experiment(eid, **{column: value})
            self.ws.store.emit(column, {"id": eid})
