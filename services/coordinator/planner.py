"""Turn hypotheses into planned experiments: full configs, diffs to controls, refusals.

A hypothesis experiment is a spec file plus an optional `vary`. Its *declared* fields are
the ones its `vary` changes, plus — when its control runs the very file this spec file
derives from — the ones the spec file's own `vary` changes. With a `control`, the planner resolves both configs and marks the
experiment uncontrolled if they differ in any field that is not declared: the
coordinator refuses to queue it, and `hypolab plan` shows why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..contracts import ExperimentSpec, FieldDiff, HypothesisSpec, StrictModel
from ..specs import EXPERIMENTS_DIR, SpecError, diff_configs, flatten, load_experiment, merge


class PlannedExperiment(StrictModel):
    """One experiment as the coordinator will run it."""

    id: str  # "H07.math-python"
    hypothesis_id: str
    name: str
    kind: Literal["train", "audit"]
    spec: ExperimentSpec
    control_id: str | None = None
    declared: list[str] = []
    diff: list[FieldDiff] = []
    undeclared: list[str] = []  # differing fields nobody declared: the run is refused
    purpose: str = ""
    early_stop: bool = True
    retries: int = 0
    stall_timeout_s: float = 1800

    @property
    def groups(self) -> int:
        """Independent prompt groups per optimizer step: the unit the verdict's noise model counts."""
        t = self.spec.training
        return max(1, t.batch_size * t.num_processes * t.gradient_accumulation_steps // t.num_generations)

    @property
    def controlled(self) -> bool:
        return not self.undeclared


def _declared(vary: dict) -> set[str]:
    return set(flatten(vary)) if vary else set()


def _is_declared(path: str, declared: set[str]) -> bool:
    return any(path == d or path.startswith(d + ".") for d in declared)


def resolve_experiment(
    hyp: HypothesisSpec, ref_id: str, experiments_dir: Path = EXPERIMENTS_DIR, control_spec: str | None = None
) -> tuple[ExperimentSpec, set[str]]:
    """The full config of one hypothesis experiment, and the fields it declares varied.

    The spec file's own `vary` counts as declared only against the file it derives from
    (`control_spec` is the spec file of the control experiment).
    """
    ref = next(e for e in hyp.experiments if e.id == ref_id)
    base = load_experiment(experiments_dir / f"{ref.spec}.yaml")
    data = merge(ExperimentSpec, base.spec.model_dump(mode="json"), ref.vary)
    data["name"] = f"{hyp.id}-{ref.id}"
    if ref.kind is not None:
        data["kind"] = ref.kind
    try:
        spec = ExperimentSpec.model_validate(data)
    except Exception as exc:  # a vary that produces an invalid config
        raise SpecError(f"hypothesis {hyp.id}", f"experiments.{ref.id}.vary", str(exc).splitlines()[-1]) from None
    inherited = _declared(base.vary) if control_spec is not None and control_spec == base.control else set()
    return spec, _declared(ref.vary) | inherited


def plan_hypothesis(
    hyp: HypothesisSpec, hypotheses: dict[str, HypothesisSpec], experiments_dir: Path = EXPERIMENTS_DIR
) -> list[PlannedExperiment]:
    """Every experiment of `hyp`, resolved and checked against its control."""
    planned = []
    for ref in hyp.experiments:
        owner, _, cid = (ref.control or "").rpartition(".")
        owner_hyp = hypotheses[owner] if owner else hyp
        control_ref = next((e for e in owner_hyp.experiments if e.id == cid), None)
        spec, declared = resolve_experiment(hyp, ref.id, experiments_dir,
                                            control_spec=control_ref.spec if control_ref else None)
        exp = PlannedExperiment(
            id=f"{hyp.id}.{ref.id}", hypothesis_id=hyp.id, name=ref.id, kind=spec.kind, spec=spec,
            declared=sorted(declared), purpose=ref.purpose, early_stop=ref.early_stop, retries=ref.retries,
            stall_timeout_s=ref.stall_timeout_s,
        )
        if control_ref is not None:
            control_spec, _ = resolve_experiment(owner_hyp, cid, experiments_dir)
            exp.control_id = f"{owner_hyp.id}.{cid}"
            exp.diff = diff_configs(control_spec, spec)
            exp.undeclared = [d.path for d in exp.diff if not _is_declared(d.path, declared)]
        planned.append(exp)
    return planned


def run_order(requested: list[str], hypotheses: dict[str, HypothesisSpec]) -> list[str]:
    """The requested hypotheses and everything they come `after`, in priority/order."""
    unknown = [h for h in requested if h not in hypotheses]
    if unknown:
        raise KeyError(f"unknown hypothesis {unknown[0]!r}; known: {', '.join(hypotheses)}")
    wanted: set[str] = set()
    stack = list(requested)
    while stack:
        hid = stack.pop()
        if hid not in wanted:
            wanted.add(hid)
            stack.extend(hypotheses[hid].after)
    return [hid for hid in hypotheses if hid in wanted]  # `hypotheses` is already sorted
