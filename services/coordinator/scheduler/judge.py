"""Judging: the verdict of every hypothesis under test, from its experiments' evidence.

`evidence()` is what the verdict rules see of one experiment (status, metric series,
report, noise unit); extend it there when the rules need more of the plan. A decided
hypothesis stores its verdict, queues its `next` ids and stops its trainings early.
"""

from __future__ import annotations

import threading

from ...contracts import ExperimentStatus, HypothesisStatus, Verdict
from ...verdicts.rules import ExperimentEvidence, decide, planned_horizon
from .workspace import EARLY_STOP, Workspace


class Judge:
    def __init__(self, ws: Workspace):
        self.ws = ws

    def evidence(self, eid: str, metric: str | None) -> ExperimentEvidence:
        row = self.ws.store.experiment(eid)
        if row is None:
            return ExperimentEvidence(id=eid, status=ExperimentStatus.pending.value)
        series = {metric: self.ws.store.series(eid, metric)} if metric else {}
        planned = self.ws.planned(eid)
        return ExperimentEvidence(id=eid, status=row.status.value, rehearsal=bool(row.rehearsal), series=series,
                                  report=row.report, groups=planned.groups if planned else None,
                                  horizon=planned_horizon(planned.spec) if planned else None)

    def verdict_of(self, hid: str) -> Verdict:
        lookup = lambda name, metric: self.evidence(f"{hid}.{name}", metric)  # noqa: E731
        statuses = {}
        for p in self.ws.plans[hid]:
            row = self.ws.store.experiment(p.id)
            statuses[p.name] = (row.status if row else ExperimentStatus.pending).value
        return decide(self.ws.hypotheses[hid], lookup, statuses)

    def judge(self) -> None:
        store = self.ws.store
        for hid, row in store.hypotheses().items():
            if row.status != HypothesisStatus.testing or hid not in self.ws.hypotheses:
                continue
            verdict = self.verdict_of(hid)
            if verdict.status == HypothesisStatus.testing:
                continue
            nxt = self.ws.hypotheses[hid].next
            queued = {HypothesisStatus.validated: nxt.validated,
                      HypothesisStatus.invalidated: nxt.invalidated}.get(verdict.status, [])
            verdict.queued_next = list(queued)
            with store.transaction():
                store.set_hypothesis(hid, verdict.status, verdict=verdict.model_dump(mode="json"))
                for target in queued:
                    if store.hypothesis(target).status == HypothesisStatus.untested:
                        store.set_hypothesis(target, HypothesisStatus.untested, queued=True)
            self.stop_early(hid, verdict)

    def stop_early(self, hid: str, verdict: Verdict) -> None:
        """The question is answered: stop this hypothesis's trainings that allow it, gracefully."""
        steps = [e.numbers["decided_at_step"] for e in verdict.evidence
                 if e.numbers.get("decided_at_step") is not None]
        note = f"{EARLY_STOP}: {hid} {verdict.status.value}" + (f" at step {max(steps)}" if steps else "")
        for p in self.ws.plans[hid]:
            row = self.ws.store.experiment(p.id)
            if p.kind != "train" or not p.early_stop or row is None or row.status != ExperimentStatus.running \
                    or not row.handle:
                continue
            self.ws.store.update_experiment(p.id, reason=note)
            # SIGTERM first (the trainer saves a checkpoint when it can), then the reaper records the exit
            threading.Thread(target=self.ws.runner.stop, args=(row.handle, 120.0), daemon=True).start()
