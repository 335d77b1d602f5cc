"""Verdicts from a hypothesis's rules: the one function the coordinator calls.

`decide(hypothesis, evidence_of)` evaluates the `validated` and `invalidated` rules of a
HypothesisSpec against what the experiments produced (metric series, audit reports) and
returns a Verdict that carries the numbers it was made from. Rules are data; nothing
from a spec is ever evaluated as code.

Rehearsal runs (CPU rehearsals of the trainer) are never evidence: a rule over one is
undecided, so a plan made only of rehearsals ends `inconclusive`, by design.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..contracts import FINISHED, Evidence, HypothesisSpec, StrictModel, Verdict
from .sequential import Decision, decide_comparison, decide_improvement


class ExperimentEvidence(StrictModel):
    """What one experiment has produced so far, as the rules see it."""

    id: str
    status: str
    rehearsal: bool = False
    series: dict[str, list[tuple[int, float]]] = {}
    report: dict[str, Any] | None = None
    groups: int | None = None  # independent prompt groups per step (batch x processes x accumulation / generations)


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
            "interval": d.interval, "alpha": d.alpha, "steps": d.steps, "method": d.method}


def _describe(d: Decision, metric: str) -> str:
    if d.effect is None:
        return f"{metric}: {d.steps} steps, not enough for the baseline yet"
    at = f" at step {d.decided_at_step}" if d.decided_at_step is not None else f" after {d.steps} steps"
    return (f"{metric} {d.decision}{at}: effect {d.effect:+.4f}, "
            f"{1 - d.alpha:.0%} confidence sequence [{d.interval[0]:+.4f}, {d.interval[1]:+.4f}]")


def _trend(rule_name: str, rule, exp: ExperimentEvidence) -> Evidence:
    label = f"{rule_name}({rule.experiment}, {rule.metric})"
    waiting = _not_ready(exp, label, need_finished=False)
    if waiting:
        return waiting
    d = decide_improvement(exp.series.get(rule.metric, []), min_effect=rule.min_effect, group_size=exp.groups)
    holds = None if d.decision == "inconclusive" else (d.decision == "improves") == (rule_name == "improves")
    return Evidence(rule=label, holds=holds, detail=f"{exp.id} {_describe(d, rule.metric)}", numbers=_numbers(d))


def _compare(rule, lookup: Lookup) -> Evidence:
    label = f"compare({rule.treatment} {rule.direction} than {rule.control}, {rule.metric})"
    treat, ctrl = lookup(rule.treatment, rule.metric), lookup(rule.control, rule.metric)
    for exp in (treat, ctrl):
        waiting = _not_ready(exp, label, need_finished=False)
        if waiting:
            return waiting
    a, b = (treat, ctrl) if rule.direction == "better" else (ctrl, treat)
    groups = min(g for g in (treat.groups, ctrl.groups, 10**9) if g) if (treat.groups or ctrl.groups) else None
    d = decide_comparison(a.series.get(rule.metric, []), b.series.get(rule.metric, []),
                          min_effect=rule.min_effect, group_size=groups)
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
    return Evidence(rule=label, holds=found == rule.present,
                    detail=f"{exp.id}: {rule.check} {'found ' + str(count) + ' time(s)' if found else 'not found'}",
                    numbers={"count": count, "rollouts": exp.report.get("rollouts")})


def evaluate(rule, lookup: Lookup) -> list[Evidence]:
    """Evidence for one rule; the first item is the rule's own result."""
    if rule.rule in ("all", "any"):
        parts = [evaluate(r, lookup) for r in rule.rules]
        results = [p[0].holds for p in parts]
        if rule.rule == "all":
            holds = False if False in results else (True if all(r is True for r in results) else None)
        else:
            holds = True if True in results else (False if all(r is False for r in results) else None)
        head = Evidence(rule=rule.rule, holds=holds, detail=f"{rule.rule} of {len(parts)} rules")
        return [head, *[e for p in parts for e in p]]
    if rule.rule in ("improves", "no_improvement"):
        return [_trend(rule.rule, rule, lookup(rule.experiment, rule.metric))]
    if rule.rule == "compare":
        return [_compare(rule, lookup)]
    return [_audit(rule, lookup)]


def decide(hyp: HypothesisSpec, lookup: Lookup, statuses: dict[str, str]) -> Verdict:
    """The hypothesis's status now. `statuses`: experiment name -> status, for all of its experiments."""
    validated = evaluate(hyp.verdict.validated, lookup)
    invalidated = evaluate(hyp.verdict.invalidated, lookup)
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
