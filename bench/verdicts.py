"""Benchmark the sequential verdict engine on labelled synthetic GRPO curves and on real runs.

    python bench/verdicts.py [--seed 0] [--scale 1.0]

Synthetic curves are simulated the way a GRPO step's mean reward arises: per step,
`prompts` prompt groups of varying difficulty (Beta around the policy's current success
rate), each with `generations` rollouts; the success rate follows the curve's shape plus
a small mean-reverting jitter (steps are autocorrelated, as real curves are). Families:

  unit        one 0/1 reward in [0, 1], horizon 200: clearly learning (logistic, linear,
              saturating, onsets up to step 80), subtle, flat, slow drift, improve-then-collapse;
  scaled      the same shapes as a·reward + b (a log-uniform in [1, 8], b in [-7, 3]);
  components  a weighted sum of 2-4 reward functions (0/1 answers and formats, a -1
              penalty, a continuous count in [-0.5, 0.5]) of which one may learn, then a·r + b;
  late        take-offs at steps 90-180 of a 300-step horizon, scaled and offset.

The engine runs with its defaults (no min effect, no range: what a user with an unknown
reward scale gets) on every curve step by step, as the coordinator does, with the
curve's horizon; next to two naive rules with the same default threshold (half the
first 20 steps' standard deviation):

  fixed-20   "mean of the last 20 steps beats the mean of the first 20", once, at the horizon;
  peek-20    the same rule re-checked after every step (what watching W&B amounts to).

Then every real run in ../shared/realdata/curves/ (labels.json), with its own length as
horizon. The last lines carry the targets of the real-runs section.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypolab.verdicts.sequential import RELATIVE_EFFECT, SequentialImprovement  # noqa: E402
from hypolab.verdicts.series import read_series  # noqa: E402

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "curves"


def shape(kind: str, rng: np.random.Generator, horizon: int, late: bool = False):
    """A success-rate curve p(t) and its label."""
    p0 = rng.uniform(0.05, 0.45)
    if kind == "flat":
        return (lambda t: p0), "flat"
    if kind == "drift":
        total = rng.uniform(-0.03, 0.03)
        return (lambda t: p0 + total * t / horizon), "drift"
    if kind == "collapse":
        gain, peak, end = rng.uniform(0.2, 0.35), rng.uniform(30, 70), rng.uniform(100, 150)
        return (lambda t: p0 + gain * (min(1, t / peak) if t < peak else max(0.0, 1 - (t - peak) / (end - peak)))), "collapse"
    gain, onset = rng.uniform(0.1, 0.4), rng.uniform(90, 180) if late else rng.uniform(0, 80)
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
    # "clearly learning": a gain of at least 0.2, 90% of it reached by 75% of the horizon
    clear = gain >= 0.2 and f(0.75 * horizon) - p0 >= 0.9 * gain
    return f, ("late" if late and clear else "learning" if clear else "subtle")


def simulate(components, prompts: int, generations: int, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """Step mean total rewards: per component (weight, p(t), kind), prompts with Beta difficulty, AR(1) jitter."""
    out = np.zeros(horizon)
    for weight, p_of_t, kind in components:
        jitter = 0.0
        for t in range(horizon):
            jitter = 0.8 * jitter + rng.normal(0, 0.01)
            p = float(np.clip(p_of_t(t) + jitter, 0.01, 0.99))
            difficulty = rng.beta(4 * p, 4 * (1 - p), size=prompts)
            if kind == "count":  # a continuous score in [-0.5, 0.5] (xmlcount-like)
                value = (rng.beta(8 * difficulty + 0.1, 8 * (1 - difficulty) + 0.1) - 0.5).mean()
            else:
                value = rng.binomial(generations, difficulty).mean() / generations
            out[t] += weight * value
    return out


def make_curves(rng: np.random.Generator, scale: float) -> list[tuple[str, str, int, np.ndarray]]:
    """(family, label, horizon, values) for every synthetic curve."""
    curves = []

    def add(family, n, kinds, late=False, components=False, affine=False, horizon=200):
        for _ in range(int(n * scale)):
            kind = rng.choice(kinds)
            p_of_t, label = shape(kind, rng, horizon, late)
            parts = [(1.0, p_of_t, "binary")]
            if components:  # the learning (or flat) one first, weighted most; the others flat
                weights = rng.choice([0.5, 1.0, 2.0], size=int(rng.integers(1, 4)))
                parts = [(3.0, p_of_t, "binary")]
                for w in weights:
                    q = rng.uniform(0.1, 0.9)
                    kind_c = rng.choice(["binary", "penalty", "count"])
                    parts.append((-w if kind_c == "penalty" else w, (lambda t, q=q: q), "count" if kind_c == "count" else "binary"))
            prompts, generations = int(rng.choice([4, 12, 32])), int(rng.choice([4, 8, 16]))
            values = simulate(parts, prompts, generations, horizon, rng)
            if affine:
                values = math.exp(rng.uniform(0, math.log(8))) * values + rng.uniform(-7, 3)
            curves.append((family, label, horizon, values))

    add("unit", 300, ["learning"])
    add("unit", 300, ["flat"])
    add("unit", 100, ["drift"])
    add("unit", 100, ["collapse"])
    add("scaled", 100, ["learning"], affine=True)
    add("scaled", 150, ["flat", "drift"], affine=True)
    add("components", 100, ["learning"], components=True, affine=True)
    add("components", 150, ["flat"], components=True, affine=True)
    add("late", 100, ["learning"], late=True, affine=True, horizon=300)
    return curves


def run_engine(values, horizon: int) -> tuple[str, int | None]:
    test = SequentialImprovement(horizon=horizon)
    for step, value in enumerate(values, start=1):
        decision = test.update(step, float(value))
        if decision.decision != "inconclusive":
            return decision.decision, step
    return "inconclusive", None


def _threshold(values) -> float:
    return RELATIVE_EFFECT * float(np.std(values[:20], ddof=1))


def fixed_20(values, horizon: int) -> tuple[str, int | None]:
    if len(values) < 40:
        return "inconclusive", None
    gain = np.mean(values[-20:]) - np.mean(values[:20])
    return ("improves" if gain >= _threshold(values) else "no_improvement"), len(values)


def peek_20(values, horizon: int) -> tuple[str, int | None]:
    if len(values) < 40:
        return "inconclusive", None
    first, me = np.mean(values[:20]), _threshold(values)
    for t in range(40, len(values) + 1):
        if np.mean(values[t - 20:t]) - first >= me:
            return "improves", t
    return "no_improvement", len(values)


def _median(results) -> float:
    """Median decision step / horizon, undecided counted as the horizon."""
    return statistics.median(r for _, r in results) if results else 1.0


METHODS = {"engine (default)": run_engine, "fixed-20 at horizon": fixed_20, "peek-20 every step": peek_20}


def synthetic(curves) -> dict[str, dict[str, float]]:
    labels = sorted({lab for _, lab, _, _ in curves})
    print(f"{len(curves)} synthetic curves; labels: " + ", ".join(
        f"{lab} {sum(c[1] == lab for c in curves)}" for lab in labels))
    print(f"{'method':22s} {'learning->impr':>14s} {'late->impr':>10s} {'late->no':>8s} {'subtle->impr':>12s} "
          f"{'flat FP impr':>12s} {'flat->no':>8s} {'drift FP':>8s} {'collapse->impr':>14s} "
          f"{'median step/H':>13s} {'late':>5s} {'us/step':>8s}")
    summary = {}
    for name, method in METHODS.items():
        results: dict[str, list] = {lab: [] for lab in labels}
        start = time.perf_counter()
        for _, label, horizon, values in curves:
            decision, step = method(values, horizon)
            results[label].append((decision, (step or horizon) / horizon))
        per_step_us = (time.perf_counter() - start) / sum(len(c[3]) for c in curves) * 1e6

        def share(label: str, decision: str) -> float:
            return sum(d == decision for d, _ in results[label]) / max(1, len(results[label]))

        learners = results["learning"] + results["late"]
        row = {"power": sum(d == "improves" for d, _ in learners) / len(learners),
               "late": share("late", "improves"), "late_no": share("late", "no_improvement"),
               "subtle": share("subtle", "improves"), "fp": share("flat", "improves"),
               "no": share("flat", "no_improvement"), "drift": share("drift", "improves"),
               "collapse": share("collapse", "improves"),
               "median": _median(results["learning"]), "late_median": _median(results["late"])}
        summary[name] = row
        print(f"{name:22s} {row['power']:14.1%} {row['late']:10.1%} {row['late_no']:8.1%} {row['subtle']:12.1%} "
              f"{row['fp']:12.1%} {row['no']:8.1%} {row['drift']:8.1%} {row['collapse']:14.1%} "
              f"{row['median']:13.2f} {row['late_median']:5.2f} {per_step_us:8.1f}")
    return summary


def real_runs() -> dict[str, dict[str, int]] | None:
    labels_file = REALDATA / "labels.json"
    if not labels_file.exists():
        print(f"real runs: {REALDATA} not found, section skipped")
        return None
    runs = []
    for entry in json.loads(labels_file.read_text()):
        series = read_series(REALDATA / Path(entry["file"]).name, "reward")
        runs.append((entry["label"], Path(entry["file"]).stem, np.array([v for _, v in series.points])))
    print(f"\nreal runs ({len(runs)}: " + ", ".join(
        f"{lab} {sum(r[0] == lab for r in runs)}" for lab in ("learned", "did_not_learn", "too_short"))
        + "), horizon = each run's length")
    print(f"{'run':46s} {'label':14s} " + " ".join(f"{m:>22s}" for m in METHODS))
    counts = {m: {"learned": 0, "learned_impr": 0, "learned_no": 0, "not": 0, "not_impr": 0} for m in METHODS}
    for label, name, values in runs:
        cells = []
        for m, method in METHODS.items():
            decision, step = method(values, len(values))
            cells.append(f"{decision}@{step}" if step else decision)
            c = counts[m]
            if label == "learned":
                c["learned"] += 1
                c["learned_impr"] += decision == "improves"
                c["learned_no"] += decision == "no_improvement"
            elif label == "did_not_learn":
                c["not"] += 1
                c["not_impr"] += decision == "improves"
        print(f"{name[:46]:46s} {label:14s} " + " ".join(f"{cell:>22s}" for cell in cells))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of synthetic curves")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    summary = synthetic(make_curves(rng, args.scale))
    counts = real_runs()

    engine = summary["engine (default)"]
    print("\ntargets, synthetic (engine, defaults; alpha 0.05; seed %d):" % args.seed)
    print(f"  flat curves called improves (continuous monitoring) <= 5%: {engine['fp']:.1%} "
          f"({'met' if engine['fp'] <= 0.05 else 'NOT met'}; peek-20: {summary['peek-20 every step']['fp']:.1%})")
    print(f"  learning curves called improves >= 95%: {engine['power']:.1%} "
          f"({'met' if engine['power'] >= 0.95 else 'NOT met'}); late learners called no_improvement: "
          f"{engine['late_no']:.1%}")
    print(f"  median decision <= 40% of the horizon (learning curves, onsets <= 40%): {engine['median']:.0%} "
          f"({'met' if engine['median'] <= 0.40 else 'NOT met'}); late take-offs: {engine['late_median']:.0%}")
    if counts is None:
        return
    print("real runs (learned called improves | learned called no_improvement | not-learned called improves):")
    for m, c in counts.items():
        print(f"  {m:22s} {c['learned_impr']}/{c['learned']} | {c['learned_no']}/{c['learned']} | "
              f"{c['not_impr']}/{c['not']}")
    c = counts["engine (default)"]
    met = (c["learned_no"] == 0 and c["not_impr"] <= 1 and c["learned_impr"] >= 0.8 * c["learned"])
    print(f"  targets (0 learned no_improvement, <= 1 not-learned improves, >= 80% learned improves): "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
