"""Verdicts from a hypothesis's rules: the one function the coordinator calls.

`decide(hypothesis, evidence_of)` evaluates the `validated` and `invalidated` rules of a
HypothesisSpec against what the experiments produced (metric series, audit reports) and
returns a Verdict that carries the numbers it was made from. Rules are data; nothing
from a spec is ever evaluated as code.

Rehearsal runs (CPU rehearsals of the trainer) are never evidence: a rule over one is
undecided, so a plan made only of rehearsals ends `inconclusive`, by design. The one
exception is a hypothesis about the lab itself (`lab_rehearsal: true`, e.g. H90 "the
pipeline learns and decides"), whose rehearsal runs are exactly what it is about.

Horizon: a curve rule may say `no_improvement` only once the run cannot take off any
more — at its planned last step (`ExperimentEvidence.horizon`, see `planned_horizon`),
once it has finished (what it logged is then all there is), or from the step the
hypothesis' declared `verdict.futility_after` names. Early stop on a "no" therefore
follows only that declared rule.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..contracts import FINISHED, Evidence, ExperimentSpec, HypothesisSpec, StrictModel, Verdict
from .sequential import Decision, decide_comparison, decide_improvement


class ExperimentEvidence(StrictModel):
    """What one experiment has produced so far, as the rules see it."""

    id: str
    status: str
    rehearsal: bool = False
    series: dict[str, list[tuple[int, float]]] = {}
    report: dict[str, Any] | None = None
    groups: int | None = None  # independent prompt groups per step (batch x processes x accumulation / generations)
    horizon: int | None = None  # planned number of steps (`planned_horizon`); None: unknown
    reward_range: tuple[float, float] | None = None  # the environment's declared range: exact bounded methods


def planned_horizon(spec: ExperimentSpec) -> int | None:
    """The experiment's planned number of steps: `training.max_steps` (None when only epochs are set)."""
    return spec.training.max_steps


def _horizon(exp: ExperimentEvidence, *series: list[tuple[int, float]]) -> int | None:
    """The horizon a rule judges against: the plan's while running, the last step once finished."""
    last = max((s[-1][0] for s in series if s), default=None)
    if exp.status in FINISHED:
        return last if last is not None else exp.horizon
    if exp.horizon is None or last is None:
        return exp.horizon
    return max(exp.horizon, last)  # a run logging past its plan (0- vs 1-based steps) is not refused here


Lookup = Callable[[str, str | None], ExperimentEvidence]  # (experiment name, metric) -> evidence


def _not_ready(exp: ExperimentEvidence, rule: str, need_finished: bool) -> Evidence | None:
    """Why a rule cannot look at this experiment yet, or None when it can.

    Curves are judged while they grow (the sequential test stays valid under continuous
    monitoring) and after a crash (what was logged before it is still evidence); audit
    reports only exist once the audit succeeded.
    """
    if exp.rehearsal:
        return Evidence(rule=rule, holds=None, detail=f"{exp.id} is a rehearsal run: not evidence")
    if need_finished and exp.status != "succeeded":
        state = "cannot judge" if exp.status in ("failed", "cancelled", "stalled") else "waiting for it to finish"
        return Evidence(rule=rule, holds=None, detail=f"{exp.id} {exp.status}: {state}")
    if exp.status in ("pending", "queued"):
        return Evidence(rule=rule, holds=None, detail=f"waiting for {exp.id} to start ({exp.status})")
    return None


def _numbers(d: Decision) -> dict[str, Any]:
    return {"decision": d.decision, "decided_at_step": d.decided_at_step, "effect": d.effect,
            "interval": d.interval, "alpha": d.alpha, "steps": d.steps, "method": d.method,
            "min_effect": d.min_effect, "horizon": d.horizon, "last_step": d.last_step,
            "futility_after": d.futility_after, "label": d.describe()}


def _describe(d: Decision, metric: str) -> str:
    if d.effect is None:
        return f"{metric}: {d.steps} steps, not enough for the baseline yet"
    return (f"{metric} {d.describe()}: effect {d.effect:+.4g} (min {d.min_effect:.4g}), "
            f"{1 - d.alpha:.0%} confidence sequence [{d.interval[0]:+.4g}, {d.interval[1]:+.4g}]")


def _trend(rule_name: str, rule, exp: ExperimentEvidence, futility_after: int | None) -> Evidence:
    label = f"{rule_name}({rule.experiment}, {rule.metric})"
    waiting = _not_ready(exp, label, need_finished=False)
    if waiting:
        return waiting
    series = exp.series.get(rule.metric, [])
    d = decide_improvement(series, min_effect=rule.min_effect, group_size=exp.groups,
                           horizon=_horizon(exp, series), futility_after=futility_after,
                           reward_range=exp.reward_range)
    holds = None if d.decision == "inconclusive" else (d.decision == "improves") == (rule_name == "improves")
    return Evidence(rule=label, holds=holds, detail=f"{exp.id} {_describe(d, rule.metric)}", numbers=_numbers(d))


def _compare(rule, lookup: Lookup, futility_after: int | None) -> Evidence:
    label = f"compare({rule.treatment} {rule.direction} than {rule.control}, {rule.metric})"
    treat, ctrl = lookup(rule.treatment, rule.metric), lookup(rule.control, rule.metric)
    for exp in (treat, ctrl):
        waiting = _not_ready(exp, label, need_finished=False)
        if waiting:
            return waiting
    a, b = (treat, ctrl) if rule.direction == "better" else (ctrl, treat)
    groups = min(g for g in (treat.groups, ctrl.groups, 10**9) if g) if (treat.groups or ctrl.groups) else None
    sa, sb = a.series.get(rule.metric, []), b.series.get(rule.metric, [])
    horizons = [h for h in (_horizon(a, sa), _horizon(b, sb)) if h is not None]
    ranges = [r for r in (a.reward_range, b.reward_range) if r is not None]
    d = decide_comparison(sa, sb, min_effect=rule.min_effect, group_size=groups,
                          horizon=min(horizons) if len(horizons) == 2 else None, futility_after=futility_after,
                          reward_range=(min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None)
    holds = None if d.decision == "inconclusive" else d.decision == "improves"
    return Evidence(rule=label, holds=holds, detail=f"{a.id} vs {b.id}, {_describe(d, rule.metric)}",
                    numbers=_numbers(d))


def _audit(rule, lookup: Lookup) -> Evidence:
    label = f"audit({rule.experiment}: {rule.check} {'present' if rule.present else 'absent'})"
    exp = lookup(rule.experiment, None)
    waiting = _not_ready(exp, label, need_finished=True)
    if waiting:
        return waiting
    if not exp.report:
        return Evidence(rule=label, holds=None, detail=f"{exp.id} produced no audit report")
    findings = [f for f in exp.report.get("findings", []) if f.get("code") == rule.check and f.get("count", 1) > 0]
    found = bool(findings)
    count = sum(f.get("count", 1) for f in findings)
    unit = (findings[0].get("unit") if findings else None) or "times"  # rollouts | turns | tokens
    return Evidence(rule=label, holds=found == rule.present,
                    detail=f"{exp.id}: {rule.check} {f'found ({count} {unit})' if found else 'not found'}",
                    numbers={"count": count, "rollouts": exp.report.get("rollouts")})


def evaluate(rule, lookup: Lookup, futility_after: int | None = None) -> list[Evidence]:
    """Evidence for one rule; the first item is the rule's own result."""
    if rule.rule in ("all", "any"):
        parts = [evaluate(r, lookup, futility_after) for r in rule.rules]
        results = [p[0].holds for p in parts]
        if rule.rule == "all":
            holds = False if False in results else (True if all(r is True for r in results) else None)
        else:
            holds = True if True in results else (False if all(r is False for r in results) else None)
        head = Evidence(rule=rule.rule, holds=holds, detail=f"{rule.rule} of {len(parts)} rules")
        return [head, *[e for p in parts for e in p]]
    if rule.rule in ("improves", "no_improvement"):
        return [_trend(rule.rule, rule, lookup(rule.experiment, rule.metric), futility_after)]
    if rule.rule == "compare":
        return [_compare(rule, lookup, futility_after)]
    return [_audit(rule, lookup)]


def _rehearsals_count(lookup: Lookup) -> Lookup:
    """The lookup of a lab hypothesis: its rehearsal runs are judged like any run."""
    return lambda name, metric: lookup(name, metric).model_copy(update={"rehearsal": False})


def decide(hyp: HypothesisSpec, lookup: Lookup, statuses: dict[str, str]) -> Verdict:
    """The hypothesis's status now. `statuses`: experiment name -> status, for all of its experiments."""
    if hyp.lab_rehearsal:
        lookup = _rehearsals_count(lookup)
    validated = evaluate(hyp.verdict.validated, lookup, hyp.verdict.futility_after)
    invalidated = evaluate(hyp.verdict.invalidated, lookup, hyp.verdict.futility_after)
    v, i = validated[0].holds, invalidated[0].holds
    evidence = [*validated, *invalidated]
    finished = all(s in FINISHED for s in statuses.values())
    if v is True and i is not True:
        status, why = "validated", hyp.criteria.validated
    elif i is True and v is not True:
        status, why = "invalidated", hyp.criteria.invalidated
    elif v is True and i is True:
        status, why = "inconclusive", "both the validating and the invalidating rule hold"
    elif finished:
        undecided = [e.detail for e in evidence if e.holds is None and e.rule not in ("all", "any")]
        status = "inconclusive"
        why = "the experiments finished without deciding either rule" + (f": {undecided[0]}" if undecided else "")
    else:
        status, why = "testing", "waiting for evidence"
    sentence = f"{hyp.id} {status}: {why.strip()}"
    decided = status in ("validated", "invalidated", "inconclusive")
    return Verdict(hypothesis_id=hyp.id, status=status, sentence=sentence, evidence=evidence,
                   decided_at=time.time() if decided else None)
