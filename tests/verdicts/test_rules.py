"""Verdict rules over metric series and audit reports, with the evidence they record."""

import random

from hypolab.verdicts.rules import ExperimentEvidence, decide
from hypolab.specs import load_hypotheses


def curve(start, end, n=150, noise=0.03, seed=0):
    rng = random.Random(seed)
    return [(i, start + (end - start) * min(1.0, i / 40) + rng.uniform(-noise, noise)) for i in range(n)]


def lookup_from(table):
    def lookup(name, metric):
        exp = table[name]
        return ExperimentEvidence(id=name, status=exp.get("status", "succeeded"), rehearsal=exp.get("rehearsal", False),
                                  series={metric: exp.get("series", [])} if metric else {}, report=exp.get("report"),
                                  groups=12)
    return lookup


def test_h07_verdicts():
    h07 = load_hypotheses()["H07"]
    statuses = {e.id: "succeeded" for e in h07.experiments}
    flat = lookup_from({"math-python": {"series": curve(0.1, 0.1)}})
    v = decide(h07, flat, statuses)
    assert v.status == "validated" and v.sentence.startswith("H07 validated: math-python also fails to learn")
    numbers = v.evidence[0].numbers
    assert v.evidence[0].holds is True and numbers["decision"] == "no_improvement"
    assert numbers["interval"][1] < 0.05 and 99 <= numbers["decided_at_step"] < 150  # 100 steps at least

    learns = lookup_from({"math-python": {"series": curve(0.2, 0.7)}})
    v = decide(h07, learns, statuses)
    assert v.status == "invalidated"
    assert next(e for e in v.evidence if e.rule.startswith("improves")).numbers["interval"][0] > 0

    # while it runs, the sequential test may already decide (valid under monitoring)
    running = lookup_from({"math-python": {"status": "running", "series": curve(0.2, 0.7)[:45]}})
    assert decide(h07, running, {**statuses, "math-python": "running"}).status == "invalidated"
    too_early = lookup_from({"math-python": {"status": "running", "series": curve(0.2, 0.7)[:15]}})
    assert decide(h07, too_early, {**statuses, "math-python": "running"}).status == "testing"

    rehearsal = lookup_from({"math-python": {"rehearsal": True, "series": curve(0.2, 0.7)}})
    v = decide(h07, rehearsal, statuses)
    assert v.status == "inconclusive" and "rehearsal run: not evidence" in v.sentence

    crashed_early = lookup_from({"math-python": {"status": "failed", "series": curve(0.2, 0.7)[:10]}})
    assert decide(h07, crashed_early, {**statuses, "math-python": "failed"}).status == "inconclusive"


def test_all_and_audit_rules():
    h02 = load_hypotheses()["H02"]
    statuses = {e.id: "succeeded" for e in h02.experiments}
    defect = {"findings": [{"code": "CONTEXT_HIDDEN_FROM_ATTENTION", "count": 3}], "rollouts": 8}
    table = {"audit-legacy": {"report": defect}, "math-python-legacy": {"series": curve(0.1, 0.1, seed=1)},
             "math-python-current": {"series": curve(0.1, 0.6, seed=2)}}
    v = decide(h02, lookup_from(table), statuses)
    assert v.status == "validated"
    audit = next(e for e in v.evidence if e.rule.startswith("audit(audit-legacy: CONTEXT"))
    assert audit.holds is True and audit.numbers == {"count": 3, "rollouts": 8}

    clean = {**table, "audit-legacy": {"report": {"findings": [], "rollouts": 8}}}
    assert decide(h02, lookup_from(clean), statuses).status == "invalidated"

    no_gain = {**table, "math-python-current": {"series": curve(0.1, 0.1, seed=5)}}
    v = decide(h02, lookup_from(no_gain), statuses)  # defect present but the fix does not help
    assert v.status == "inconclusive"

    audit_running = {**table}
    v = decide(h02, lookup_from(audit_running), {**statuses, "audit-legacy": "running"})
    assert v.status == "validated"  # the lookup says succeeded; statuses only gate "finished"


def test_a_lab_hypothesis_is_decided_by_its_rehearsals_and_only_it():
    """H90 (the pipeline learns and decides) counts its rehearsal runs; H07 never does."""
    hyps = load_hypotheses()
    h90, h07 = hyps["H90"], hyps["H07"]
    assert h90.lab_rehearsal and not h07.lab_rehearsal
    name = h90.experiments[0].id
    learns = lookup_from({name: {"rehearsal": True, "status": "running", "series": curve(0.2, 0.7, n=60)}})
    v = decide(h90, learns, {name: "running"})
    assert v.status == "validated", v.sentence
    assert v.evidence[0].numbers["decision"] == "improves"
    same_runs_for_h07 = lookup_from({"math-python": {"rehearsal": True, "series": curve(0.2, 0.7)}})
    assert decide(h07, same_runs_for_h07, {e.id: "succeeded" for e in h07.experiments}).status == "inconclusive"
