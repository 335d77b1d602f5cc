"""A horizon, and no premature "no": late learners are never called no_improvement before it."""

import numpy as np
import pytest

from hypolab.contracts import ExperimentSpec, HypothesisSpec
from hypolab.verdicts.rules import ExperimentEvidence, decide, planned_horizon
from hypolab.verdicts.sequential import SequentialImprovement, decide_improvement


def late_learner(seed: int, onset: int | None = 160, n: int = 300, scale: float = 6.0, offset: float = -4.0):
    """Flat for `onset` steps (long enough for any old 100-step "no"), then a take-off."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    p = 0.15 + (0.0 if onset is None else 0.3 / (1 + np.exp(-(t - onset - 15) / 5)))
    x = rng.binomial(8, np.clip(p + rng.normal(0, 0.02, n), 0, 1), size=(12, n)).mean(axis=0) / 8
    return [(i + 1, scale * v + offset) for i, v in enumerate(x)]


@pytest.mark.parametrize("seed", range(5))
def test_a_late_learner_is_never_called_no_improvement_inside_its_horizon(seed):
    series = late_learner(seed)
    test = SequentialImprovement(horizon=300)
    decisions = [test.update(step, value) for step, value in series]
    assert all(d.decision != "no_improvement" for d in decisions)
    assert decisions[-1].decision == "improves" and decisions[-1].decided_at_step > 160


def test_no_improvement_only_at_the_horizon_or_from_the_declared_futility_step():
    flat = [(step, value) for step, value in late_learner(1, onset=None)]
    running = decide_improvement(flat[:250], min_effect=0.3, horizon=300)
    assert running.decision == "inconclusive" and running.describe() == "no improvement yet — step 250 of 300"
    assert decide_improvement(flat, min_effect=0.3).decision == "inconclusive"  # no horizon: never "no"
    at_end = decide_improvement(flat, min_effect=0.3, horizon=300)
    assert at_end.decision == "no_improvement" and at_end.decided_at_step == 300
    assert at_end.describe() == "no improvement at step 300 of 300"
    futile = decide_improvement(flat, min_effect=0.3, horizon=300, futility_after=150)
    assert futile.decision == "no_improvement" and 150 <= futile.decided_at_step < 300
    assert futile.describe().endswith("of 300, futility after 150")


def test_a_horizon_shorter_than_the_steps_seen_is_refused():
    with pytest.raises(ValueError, match="horizon 100 is shorter than the steps seen"):
        decide_improvement(late_learner(0)[:150], horizon=100)


H = """
id: H08
title: gsm8k with a late take-off
priority: 0
order: 8
criteria: {validated: it learns, invalidated: it does not}
experiments: [{id: run, spec: gsm8k}]
verdict:
  validated: {rule: improves, experiment: run}
  invalidated: {rule: no_improvement, experiment: run, min_effect: 0.3}
"""


def hypothesis(futility_after=None):
    import yaml

    data = yaml.safe_load(H)
    if futility_after:
        data["verdict"]["futility_after"] = futility_after
    return HypothesisSpec.model_validate(data)


def verdict(hyp, series, status, horizon=300):
    lookup = lambda name, metric: ExperimentEvidence(id=name, status=status, series={metric: series},  # noqa: E731
                                                      horizon=horizon)
    return decide(hyp, lookup, {"run": status})


def test_rules_wait_for_the_horizon_unless_the_hypothesis_declares_futility():
    flat = late_learner(3, onset=None)
    assert verdict(hypothesis(), flat[:200], "running").status == "testing"  # could still take off
    assert verdict(hypothesis(), flat[:200], "running", horizon=None).status == "testing"
    assert verdict(hypothesis(), flat[:200], "succeeded").status == "invalidated"  # finished: all there is
    v = verdict(hypothesis(futility_after=150), flat[:200], "running")
    assert v.status == "invalidated"
    numbers = v.evidence[1].numbers
    assert numbers["horizon"] == 300 and numbers["futility_after"] == 150 and 150 <= numbers["decided_at_step"] <= 200
    late = late_learner(3)
    assert verdict(hypothesis(), late[:200], "running").status == "validated"  # took off at 160: improves
    assert verdict(hypothesis(futility_after=250), late, "running").status == "validated"
    waiting = verdict(hypothesis(), flat[:80], "running").evidence
    assert waiting[0].numbers["label"] == "no improvement yet — step 80 of 300"


def test_planned_horizon_is_the_specs_max_steps():
    spec = ExperimentSpec(name="x", env="gsm8k", model="m", training={"max_steps": 200})
    assert planned_horizon(spec) == 200
    epochs = ExperimentSpec(name="x", env="gsm8k", model="m", training={"max_steps": None, "num_epochs": 1})
    assert planned_horizon(epochs) is None
