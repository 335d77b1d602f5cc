"""The sequential verdict engine: validity under continuous monitoring, power, bookkeeping."""

import math
import random

from hypolab.verdicts.sequential import (ConfidenceSequence, NormalMixtureCS, SequentialImprovement,
                                       clean_series, decide_comparison, decide_improvement)


def step_reward(rng, p, prompts=12, gens=8):
    """A GRPO step's mean reward: prompts of varying difficulty, 0/1 rewards per generation."""
    total = 0.0
    for _ in range(prompts):
        pi = rng.betavariate(max(1e-3, 4 * p), max(1e-3, 4 * (1 - p)))
        total += sum(rng.random() < pi for _ in range(gens)) / gens
    return total / prompts


def learning(rng, p0, gain, onset, n=200):
    return [(i, step_reward(rng, p0 + gain / (1 + math.exp(-(i - onset) / 8)))) for i in range(n)]


def test_flat_curves_false_positive_rate_under_monitoring():
    rng = random.Random(7)
    calls = 0
    for _ in range(150):
        p = rng.uniform(0.05, 0.6)
        test = SequentialImprovement(group_size=12)
        for i in range(200):  # checked after every single step
            if test.update(i, step_reward(rng, p)).decision == "improves":
                calls += 1
                break
    assert calls / 150 <= 0.05


def test_clear_learning_is_called_early_with_its_evidence():
    rng = random.Random(3)
    results = [decide_improvement(learning(rng, rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.4), rng.uniform(10, 50)),
                                  group_size=12) for _ in range(30)]
    assert sum(r.decision == "improves" for r in results) >= 29
    steps = sorted(r.decided_at_step for r in results if r.decided_at_step is not None)
    assert steps[len(steps) // 2] <= 80  # median within 40% of a 200-step horizon
    first = results[0]
    assert first.interval[0] > 0 and first.effect >= 0.05 and first.alpha == 0.05 and "Waudby-Smith et al. 2024" in first.method


def test_exact_confidence_sequences_cover_the_mean_at_every_step():
    rng = random.Random(11)
    misses_eb = misses_nm = 0
    for _ in range(100):
        mu = rng.uniform(0.1, 0.9)
        eb, nm = ConfidenceSequence(0.05), NormalMixtureCS(0.05, sigma2=0.25 / 8)
        missed_eb = missed_nm = False
        for _ in range(300):
            x = sum(rng.random() < mu for _ in range(8)) / 8
            eb.update(x)
            nm.update(x)
            lo, hi = eb.bounds()
            missed_eb |= not lo <= mu <= hi
            lo, hi = nm.bounds()
            missed_nm |= not lo <= mu <= hi
        misses_eb += missed_eb
        misses_nm += missed_nm
    assert misses_eb <= 5 and misses_nm <= 5


def test_series_bookkeeping_out_of_order_repeats_and_nan():
    series, skipped = clean_series([(3, 0.3), (1, 0.1), (3, 0.35), (2, float("nan")), (0, 0.0)])
    assert series == [(0, 0.0), (1, 0.1), (3, 0.35)] and skipped == 1
    d = decide_improvement([(i, 0.5) for i in range(5)] + [(2, float("inf"))])
    assert d.decision == "inconclusive" and d.nan_skipped == 1 and d.steps == 5


def test_comparison():
    rng = random.Random(5)
    control = [(i, step_reward(rng, 0.2)) for i in range(150)]
    better = learning(rng, 0.2, 0.3, 20, n=150)
    same = [(i, step_reward(rng, 0.2)) for i in range(150)]
    assert decide_comparison(better, control, group_size=12).decision == "improves"
    assert decide_comparison(same, control, group_size=12).decision != "improves"
    assert decide_comparison(control, better, group_size=12).decision != "improves"
