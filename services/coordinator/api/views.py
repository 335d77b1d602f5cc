"""Plain functions the routes return: the lab's state as the API's response models."""

from __future__ import annotations

from ...contracts import FINISHED, ExperimentStatus, HypothesisStatus, Verdict
from ..scheduler import Lab, LabError, tail
from ..store import ExperimentFields, ExperimentRow, HypothesisRow, Store
from .models import ExperimentView, HypothesisDetail, HypothesisSummary, PendingExperiment


def _verdict(row: HypothesisRow) -> Verdict | None:
    return Verdict.model_validate(row.verdict) if row.verdict else None


def experiment_view(lab: Lab, row: ExperimentRow, live_tail: bool = False) -> ExperimentView:
    """The stored experiment without its runner handle; the log tail is read live until it ends."""
    planned = lab.planned(row.id)
    fields = {name: getattr(row, name) for name in ExperimentFields.model_fields}
    if live_tail or row.status not in FINISHED:
        fields["log_tail"] = tail(lab.log_path(row.id))
    return ExperimentView(**fields, purpose=planned.purpose if planned else "")


def experiment(lab: Lab, eid: str) -> ExperimentView:
    row = lab.store.experiment(eid)
    if row is None:
        raise LabError(404, f"unknown experiment {eid!r}")
    return experiment_view(lab, row, live_tail=True)


def hypothesis_summaries(lab: Lab) -> list[HypothesisSummary]:
    """Every hypothesis in test order, with its status and verdict."""
    rows = lab.store.hypotheses()
    return [HypothesisSummary(id=hid, title=h.title, priority=h.priority, order=h.order, after=h.after, next=h.next,
                              status=rows[hid].status, queued=rows[hid].queued, verdict=_verdict(rows[hid]))
            for hid, h in lab.hypotheses.items()]


def hypothesis_detail(lab: Lab, hid: str) -> HypothesisDetail:
    """Status, verdict with its evidence, the spec and its experiments (planned ones too)."""
    if hid not in lab.hypotheses:
        raise LabError(404, f"unknown hypothesis {hid!r}; known: {', '.join(lab.hypotheses)}")
    row = lab.store.hypothesis(hid)
    experiments: list[ExperimentView | PendingExperiment] = []
    for p in lab.plans[hid]:
        stored = lab.store.experiment(p.id)
        experiments.append(experiment_view(lab, stored) if stored else PendingExperiment(
            id=p.id, kind=p.kind, config=p.spec.model_dump(mode="json"), control_id=p.control_id, diff=p.diff,
            undeclared=p.undeclared, purpose=p.purpose))
    current = lab.verdict_of(hid) if row.status == HypothesisStatus.testing else None
    return HypothesisDetail(id=hid, status=row.status, queued=row.queued, verdict=_verdict(row),
                            current_evidence=current, spec=lab.hypotheses[hid], experiments=experiments)


def prometheus_text(store: Store) -> str:
    """Prometheus text format: experiments and hypotheses by status, stored metric values."""
    counts = store.counts()
    lines = ["# HELP hypolab_experiments Experiments by status.", "# TYPE hypolab_experiments gauge"]
    for status in ExperimentStatus:
        lines.append(f'hypolab_experiments{{status="{status}"}} {counts["experiments"].get(status, 0)}')
    lines += ["# HELP hypolab_hypotheses Hypotheses by status.", "# TYPE hypolab_hypotheses gauge"]
    for status in HypothesisStatus:
        lines.append(f'hypolab_hypotheses{{status="{status}"}} {counts["hypotheses"].get(status, 0)}')
    lines += ["# HELP hypolab_metric_values Metric values stored.", "# TYPE hypolab_metric_values gauge",
              f"hypolab_metric_values {counts['metric_values']}"]
    return "\n".join(lines) + "\n"
