"""Decisions are scale-free: a·reward + b gives the same decision at the same step, for every kind."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hypolab.verdicts.sequential import SequentialComparison, decide_comparison, decide_improvement

AFFINE = dict(a=st.floats(1e-3, 1e3), b=st.floats(-1e3, 1e3), seed=st.integers(0, 2**32 - 1))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def trend(kind: str, rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """A noisy step-mean curve in reward units: rising, flat, or too short to tell."""
    t = np.arange(n)
    noise = rng.normal(0, 0.05, size=n)
    if kind == "improves":
        return 0.2 + 0.4 / (1 + np.exp(-(t - rng.uniform(20, 60)) / 5)) + noise
    if kind == "inconclusive":
        return (0.3 + noise)[:30]
    return 0.3 + noise


def points(values):
    return list(enumerate(values.tolist(), start=1))


def same(d1, d2, a):
    assert (d1.decision, d1.decided_at_step) == (d2.decision, d2.decided_at_step)
    if d1.effect is not None:
        assert d2.effect == pytest.approx(a * d1.effect, rel=1e-6, abs=1e-9 * a)
        assert d2.min_effect == pytest.approx(a * d1.min_effect, rel=1e-6, abs=1e-12)


@SETTINGS
@given(kind=st.sampled_from(["improves", "no_improvement", "inconclusive"]), explicit=st.booleans(), **AFFINE)
def test_improvement_is_scale_free(kind, explicit, a, b, seed):
    x = trend(kind, np.random.default_rng(seed))
    # a "no" needs a horizon, and an explicit minimum effect a flat curve can be shown to stay under
    min_effect = 0.1 if explicit or kind == "no_improvement" else None
    horizon = len(x) if kind != "inconclusive" else None
    base = decide_improvement(points(x), min_effect=min_effect, horizon=horizon)
    assume(base.decision == kind)  # the designed curve shows the kind (it nearly always does)
    moved = decide_improvement(points(a * x + b), min_effect=None if min_effect is None else a * min_effect,
                               horizon=horizon)
    same(base, moved, a)


@SETTINGS
@given(method=st.sampled_from(["hoeffding", "bernstein"]), **AFFINE)
def test_exact_bounded_methods_are_scale_free_with_the_range(method, a, b, seed):
    x = trend("improves", np.random.default_rng(seed))
    base = decide_improvement(points(x), reward_range=(-0.5, 1.5), group_size=12, variance=method, horizon=200)
    moved = decide_improvement(points(a * x + b), reward_range=(a * -0.5 + b, a * 1.5 + b), group_size=12,
                               variance=method, horizon=200)
    assert base.warnings == [] and (method == "bernstein" or base.decision == "improves")
    same(base, moved, a)


@SETTINGS
@given(kind=st.sampled_from(["improves", "no_improvement", "inconclusive"]), **AFFINE)
def test_comparison_is_scale_free(kind, a, b, seed):
    rng = np.random.default_rng(seed)
    control = trend("no_improvement", rng)
    treatment = trend("improves" if kind == "improves" else "no_improvement", rng)
    if kind == "inconclusive":
        treatment, control = treatment[:25], control[:25]
    min_effect = 0.1 if kind == "no_improvement" else None
    horizon = len(control) if kind == "no_improvement" else None
    base = decide_comparison(points(treatment), points(control), min_effect=min_effect, horizon=horizon)
    assume(base.decision == kind)
    moved = decide_comparison(points(a * treatment + b), points(a * control + b), horizon=horizon,
                              min_effect=None if min_effect is None else a * min_effect)
    same(base, moved, a)


def test_values_far_outside_zero_one_are_not_clipped():
    """A GSM8K-like total reward from -7 to +8: judged on its own scale, never cut to [0, 1]."""
    rng = np.random.default_rng(4)
    x = trend("improves", rng)
    total = 15 * x - 7
    assert total.min() < -3 and total.max() > 1.5
    d = decide_improvement(points(total), horizon=200)
    assert d.decision == "improves" and d.interval[0] > 0 and d.effect >= d.min_effect > 0.1


def test_a_declared_range_the_data_leave_is_widened_with_a_warning():
    x = trend("improves", np.random.default_rng(2))
    d = decide_improvement(points(x), reward_range=(0.0, 0.5), group_size=12, horizon=200)
    assert d.reward_range[0] <= x.min() and d.reward_range[1] == pytest.approx(x.max())
    assert d.warnings and "range widened" in d.warnings[0] and "outside the reward range [0, 0.5]" in d.warnings[0]
    with pytest.raises(ValueError, match="outside reward_range"):
        SequentialComparison(reward_range=(0.0, 1.0)).update(1, 1.5, 0.5)


@pytest.mark.parametrize("variance", ["exact", "gaussian", ""])
def test_unknown_variance_is_refused(variance):
    with pytest.raises(ValueError, match="variance="):
        decide_improvement([(1, 0.1)], variance=variance)
    with pytest.raises(ValueError, match="variance="):
        SequentialComparison(variance=variance)


def test_exact_methods_need_a_range():
    with pytest.raises(ValueError, match="needs reward_range"):
        SequentialComparison(variance="hoeffding", group_size=8)
