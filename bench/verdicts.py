"""Benchmark the sequential verdict engine on labelled, realistic GRPO reward curves.

    python bench/verdicts.py [--seed 0] [--scale 1.0]

Each curve is simulated the way a GRPO step's mean reward arises: per step, `prompts`
prompt groups of varying difficulty (Beta around the policy's current success rate),
each with `generations` 0/1 rewards; the policy's success rate follows the curve's shape
plus a small mean-reverting jitter (steps are autocorrelated, as real curves are).

Labels: clearly learning (logistic, linear and saturating shapes, onsets up to step 80),
flat, slow drift below the minimum effect, and improve-then-collapse. The engine runs
on every curve step by step (as the coordinator does after every metric batch), next to
two baselines on the same curves:

  fixed-20   "mean of the last 20 steps beats the mean of the first 20 by min_effect",
             looked at once, at the 200-step horizon;
  peek-20    the same rule re-checked after every step (what watching W&B amounts to).

It prints accuracy by label, the false-positive `improves` rate on flat curves, and the
median decision step as a ratio of the horizon, with the targets from the issue.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypolab.verdicts.sequential import SequentialImprovement  # noqa: E402

HORIZON = 200
MIN_EFFECT = 0.05


def shape(kind: str, rng: np.random.Generator):
    """A success-rate curve p(t) and its label."""
    p0 = rng.uniform(0.05, 0.45)
    if kind == "flat":
        return (lambda t: p0), "flat"
    if kind == "drift":
        total = rng.uniform(-0.03, 0.03)
        return (lambda t: p0 + total * t / HORIZON), "drift"
    if kind == "collapse":
        gain, peak, end = rng.uniform(0.2, 0.35), rng.uniform(30, 70), rng.uniform(100, 150)
        return (lambda t: p0 + gain * (min(1, t / peak) if t < peak else max(0.0, 1 - (t - peak) / (end - peak)))), "collapse"
    gain, onset = rng.uniform(0.1, 0.4), rng.uniform(0, 80)
    form = rng.choice(["logistic", "linear", "saturating"])
    if form == "logistic":
        width = rng.uniform(3, 15)
        f = lambda t: p0 + gain / (1 + math.exp(-(t - onset - 3 * width) / width))  # noqa: E731
    elif form == "linear":
        length = rng.uniform(30, 100)
        f = lambda t: p0 + gain * min(1.0, max(0.0, (t - onset) / length))  # noqa: E731
    else:
        tau = rng.uniform(10, 40)
        f = lambda t: p0 + gain * (1 - math.exp(-max(0.0, t - onset) / tau))  # noqa: E731
    # "clearly learning": a gain of at least 0.2, 90% of it reached by step 150 of 200
    clear = gain >= 0.2 and f(150) - p0 >= 0.9 * gain
    return f, ("learning" if clear else "subtle")


def simulate(p_of_t, prompts: int, generations: int, rng: np.random.Generator) -> np.ndarray:
    """Step mean rewards: prompts with Beta-distributed difficulty, 0/1 rewards, AR(1) jitter."""
    jitter, out = 0.0, np.empty(HORIZON)
    for t in range(HORIZON):
        jitter = 0.8 * jitter + rng.normal(0, 0.01)
        p = float(np.clip(p_of_t(t) + jitter, 0.01, 0.99))
        difficulty = rng.beta(4 * p, 4 * (1 - p), size=prompts)
        out[t] = rng.binomial(generations, difficulty).mean() / generations
    return out


def run_engine(values: np.ndarray, groups: int, variance: str) -> tuple[str, int | None]:
    test = SequentialImprovement(min_effect=MIN_EFFECT, group_size=groups, variance=variance)
    for step, value in enumerate(values):
        decision = test.update(step, float(value))
        if decision.decision != "inconclusive":
            return decision.decision, step + 1
    return "inconclusive", None


def fixed_20(values: np.ndarray) -> tuple[str, int]:
    gain = values[-20:].mean() - values[:20].mean()
    return ("improves" if gain >= MIN_EFFECT else "no_improvement"), HORIZON


def peek_20(values: np.ndarray) -> tuple[str, int | None]:
    first = values[:20].mean()
    for t in range(40, HORIZON + 1):
        if values[t - 20:t].mean() - first >= MIN_EFFECT:
            return "improves", t
    return "no_improvement", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of curves")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    kinds = {"learning": 300, "flat": 300, "drift": 100, "collapse": 100}
    counts = {"learning": 0, "subtle": 0, "flat": 0, "drift": 0, "collapse": 0}
    curves = []
    for kind, n in kinds.items():
        for _ in range(int(n * args.scale)):
            p_of_t, label = shape(kind, rng)
            counts[label] += 1
            prompts, generations = int(rng.choice([4, 12, 32])), int(rng.choice([4, 8, 16]))
            curves.append((label, prompts, simulate(p_of_t, prompts, generations, rng)))

    methods = {
        "engine (empirical, default)": lambda v, g: run_engine(v, g, "empirical"),
        "engine (hoeffding, exact)": lambda v, g: run_engine(v, g, "hoeffding"),
        "fixed-20 at horizon": lambda v, g: fixed_20(v),
        "peek-20 every step": lambda v, g: peek_20(v),
    }
    print(f"{len(curves)} curves x {HORIZON} steps, min_effect {MIN_EFFECT}, alpha 0.05, seed {args.seed}")
    print("labels: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"{'method':30s} {'learning->improves':>18s} {'subtle->impr':>13s} {'flat FP improves':>17s} "
          f"{'flat->no_impr':>14s} {'drift FP':>9s} {'collapse->impr':>15s} {'median step/H (learning)':>25s} "
          f"{'median step/H (all)':>20s} {'us/step':>8s}")
    summary = {}
    for name, method in methods.items():
        results: dict[str, list[tuple[str, int | None]]] = {k: [] for k in counts}
        start = time.perf_counter()
        for label, prompts, values in curves:
            results[label].append(method(values, prompts))
        per_step_us = (time.perf_counter() - start) / (len(curves) * HORIZON) * 1e6

        def share(label: str, decision: str) -> float:
            return sum(d == decision for d, _ in results[label]) / len(results[label])

        def median_ratio(labels) -> float:
            steps = [(s if s is not None else HORIZON) for lab in labels for _, s in results[lab]]
            return statistics.median(steps) / HORIZON

        row = {
            "power": share("learning", "improves"), "subtle": share("subtle", "improves"),
            "fp": share("flat", "improves"),
            "no": share("flat", "no_improvement"), "drift_fp": share("drift", "improves"),
            "collapse": share("collapse", "improves"), "median_learning": median_ratio(["learning"]),
            "median_all": median_ratio(list(counts)),
        }
        summary[name] = row
        print(f"{name:30s} {row['power']:18.1%} {row['subtle']:13.1%} {row['fp']:17.1%} {row['no']:14.1%} {row['drift_fp']:9.1%} "
              f"{row['collapse']:15.1%} {row['median_learning']:25.2f} {row['median_all']:20.2f} {per_step_us:8.1f}")

    engine = summary["engine (empirical, default)"]
    print("\ntargets (engine, default):")
    print(f"  false-positive improves on flat curves <= 5%: {engine['fp']:.1%} "
          f"({'met' if engine['fp'] <= 0.05 else 'NOT met'}; peek-20 baseline: {summary['peek-20 every step']['fp']:.1%})")
    print(f"  clearly learning curves called improves >= 95%: {engine['power']:.1%} "
          f"({'met' if engine['power'] >= 0.95 else 'NOT met'})")
    print(f"  median decision <= 40% of the horizon (learning curves): {engine['median_learning']:.0%} "
          f"({'met' if engine['median_learning'] <= 0.40 else 'NOT met'}); over all curves, undecided counted "
          f"as the horizon: {engine['median_all']:.0%}")


if __name__ == "__main__":
    main()
