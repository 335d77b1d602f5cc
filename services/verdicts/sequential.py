"""Anytime-valid verdicts on reward curves: does a curve improve, and does a treatment beat its control?

The question H06 answered by eye ("clear reward improvement within 20–50 steps") is
answered here from the metric stream, after every step if need be, without the false
positives that repeated peeking at a fixed-horizon test produces.

Method
------
Confidence *sequences* — intervals that hold at every step simultaneously, so a decision
may be read after any step — built three ways, chosen by `variance=`:

- `"empirical"` (default): the normal-mixture boundary with the running variance plugged
  in, i.e. an *asymptotic confidence sequence* (Waudby-Smith, Arbour, Sinha, Kennedy &
  Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences",
  Ann. Statist. 2024). It adapts to the real noise of a reward curve, which is what makes
  `no_improvement` reachable within a few hundred steps; its guarantee is asymptotic.
- `"hoeffding"` with `group_size`: exact. A step's reward is a mean over `group_size`
  independent prompt groups, each in [0, 1], so it is sub-Gaussian with variance proxy
  1/(4·group_size) (Hoeffding) and Robbins' normal mixture (Howard, Ramdas, McAuliffe &
  Sekhon, Ann. Statist. 2021) bounds it at all times. Valid, but wider.
- `"hoeffding"` without a group size: exact, predictable plug-in empirical-Bernstein
  (PrPl-EB; Waudby-Smith & Ramdas, JRSS-B 2024) on values in [0, 1]; widest.

The bench (`bench/verdicts.py`) measures the false-positive rate of the default under
continuous monitoring on realistic flat curves; the unit tests check coverage of the
exact ones.

`improves` compares a *baseline* (the first `baseline_steps` steps, frozen) with the
later steps. Learning curves bend and start late, so the later steps are covered by
*segments* that start every `segment_steps` steps, each with its own confidence
sequence. Every interval is two-sided, but each claim uses one side of each. A false
`improves` needs the baseline's upper bound to fail (two-sided level α, so α/2 for that
side) or some segment's lower bound to fail (segment j two-sided at α·6/(π²j²), so the
lower sides sum to α/2); by a union bound P(ever claiming a false `improves`) ≤ α under
continuous monitoring. The same holds for `no_improvement` with the other sides.

- `improves` at step t: some segment's lower bound exceeds the baseline's upper bound,
  and the estimated gain is at least `min_effect` (practically relevant, not only > 0);
- `no_improvement` at t: the gain over all post-baseline steps is confidently below
  `min_effect` (upper bound < min_effect), after at least `min_steps_for_no` steps
  (default 100: GRPO curves often plateau before they take off, and a "no" is final),
  and the latest segment is not rising (its estimate < min_effect / 2);
- otherwise `inconclusive`. The first decision is final (`decided_at_step`).

Autocorrelation: under a flat curve the step rewards are independent draws around a
fixed mean, which is what the guarantee needs; under learning the drift is the signal.
A policy that random-walks without improving is the hard case; requiring the estimate
to reach `min_effect` keeps small drifts from being called improvements.

`compare` applies the same machinery to the per-step differences treatment − control
(rescaled from [−1, 1] to [0, 1]), with segments and no baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal

from pydantic import BaseModel

METHODS = {
    "empirical": "asymptotic confidence sequences (normal mixture, plug-in variance; Waudby-Smith et al. 2024)",
    "hoeffding": "sub-Gaussian normal-mixture confidence sequences (Robbins 1970; Howard et al. 2021), exact",
    "bernstein": "PrPl-EB empirical-Bernstein confidence sequences (Waudby-Smith & Ramdas 2024), exact",
}
DESIGN = "baseline vs restarting segments, union-bound alpha split, valid under continuous monitoring"
METHOD = f"{METHODS['empirical']}; {DESIGN}"

DecisionName = Literal["improves", "no_improvement", "inconclusive"]


class Decision(BaseModel):
    decision: DecisionName
    decided_at_step: int | None
    effect: float | None
    interval: tuple[float, float] | None
    alpha: float
    method: str = METHOD
    steps: int = 0
    nan_skipped: int = 0
    clipped: int = 0


@dataclass
class ConfidenceSequence:
    """PrPl-EB for values in [0, 1]; `update` is O(1), bounds hold at every step at level alpha."""

    alpha: float
    prior_var: float = 0.25
    prior_mean: float = 0.5
    cap: float = 0.5
    t: int = 0
    sum_x: float = 0.0
    sum_sq: float = 0.0
    sum_lam: float = 0.0
    sum_lam_x: float = 0.0
    sum_penalty: float = 0.0
    mean_prev: float = field(init=False)
    var_prev: float = field(init=False)

    def __post_init__(self) -> None:
        self.mean_prev, self.var_prev = self.prior_mean, self.prior_var
        self.log_term = math.log(2 / self.alpha)

    def update(self, x: float) -> None:
        self.t += 1
        t = self.t
        lam = min(math.sqrt(2 * self.log_term / (self.var_prev * t * math.log(1 + t))), self.cap)
        v = 4 * (x - self.mean_prev) ** 2
        self.sum_penalty += v * (-math.log(1 - lam) - lam) / 4
        self.sum_lam += lam
        self.sum_lam_x += lam * x
        self.sum_x += x
        mean_t = (self.prior_mean + self.sum_x) / (t + 1)
        self.sum_sq += (x - mean_t) ** 2
        self.mean_prev = mean_t
        self.var_prev = (self.prior_var + self.sum_sq) / (t + 1)

    @property
    def center(self) -> float:
        return self.sum_lam_x / self.sum_lam if self.sum_lam else self.prior_mean

    def bounds(self) -> tuple[float, float]:
        if not self.sum_lam:
            return 0.0, 1.0
        width = (self.log_term + self.sum_penalty) / self.sum_lam
        return max(0.0, self.center - width), min(1.0, self.center + width)


@dataclass
class NormalMixtureCS:
    """Sub-Gaussian normal-mixture confidence sequence (Robbins 1970; Howard et al., Ann. Statist. 2021).

    For steps whose value is the mean of `groups` independent [0, 1] draws (one per prompt
    group), X_t − E[X_t | past] is sub-Gaussian with variance proxy σ² = 1/(4·groups)
    (Hoeffding), and with V_t = σ²t the two-sided bound
        |Σ (X_i − μ_i)| ≤ sqrt(2 (V_t + ρ) · log( sqrt((V_t + ρ)/ρ) / (α/2) ))
    holds for all t at once with probability ≥ 1 − α. ρ tunes where it is tightest.
    """

    alpha: float
    sigma2: float
    tight_at: int = 20
    t: int = 0
    total: float = 0.0
    prior_mean: float = 0.5
    lo: float = 0.0
    hi: float = 1.0
    empirical: bool = False  # plug in the running variance: an asymptotic CS (see module doc)
    total_sq: float = 0.0

    def update(self, x: float) -> None:
        self.t += 1
        self.total += x
        self.total_sq += x * x

    def variance(self) -> float:
        if not self.empirical or self.t < 3:
            return self.sigma2
        var = max(0.0, (self.total_sq - self.total ** 2 / self.t) / (self.t - 1))
        return max(var, self.sigma2 / 100)

    @property
    def center(self) -> float:
        return self.total / self.t if self.t else self.prior_mean

    def bounds(self) -> tuple[float, float]:
        if not self.t:
            return self.lo, self.hi
        sigma2 = self.variance()
        rho = sigma2 * self.tight_at
        v = sigma2 * self.t + rho
        radius = math.sqrt(2 * v * math.log(math.sqrt(v / rho) / (self.alpha / 2))) / self.t
        return max(self.lo, self.center - radius), min(self.hi, self.center + radius)


def _segment_alpha(alpha_half: float, j: int) -> float:
    return alpha_half * 6 / (math.pi ** 2 * j ** 2)


class SequentialImprovement:
    """Feed one step at a time (`update`); read the decision whenever you like."""

    def __init__(self, min_effect: float = 0.05, alpha: float = 0.05, bounds: tuple[float, float] = (0.0, 1.0),
                 group_size: int | None = None, baseline_steps: int = 20, segment_steps: int = 15,
                 min_steps_for_no: int = 100, variance: str = "empirical"):
        if variance not in ("empirical", "hoeffding"):
            raise ValueError("variance is 'empirical' (asymptotic CS) or 'hoeffding' (exact, conservative)")
        self.variance = variance
        self.lo, self.hi = bounds
        self.scale = self.hi - self.lo
        self.min_effect = min_effect / self.scale  # in [0, 1] units
        self.alpha = alpha
        self.groups = group_size
        self.baseline_steps, self.segment_steps, self.min_steps_for_no = baseline_steps, segment_steps, min_steps_for_no
        self.baseline = self._cs(alpha, 0.5)
        self.baseline_frozen: tuple[float, float] | None = None
        self.segments: list[ConfidenceSequence] = []
        self.n = 0
        self.clipped = 0
        self.result: Decision | None = None

    def _cs(self, alpha: float, prior_mean: float):
        """Normal mixture when the independent groups per step are known, else empirical Bernstein."""
        if self.variance == "empirical":
            proxy = 0.25 / self.groups if self.groups else 0.25
            return NormalMixtureCS(alpha, sigma2=proxy, tight_at=self.segment_steps, prior_mean=prior_mean,
                                   empirical=True)
        if self.groups:
            return NormalMixtureCS(alpha, sigma2=0.25 / self.groups, tight_at=self.segment_steps, prior_mean=prior_mean)
        return ConfidenceSequence(alpha, prior_mean=prior_mean)

    def _baseline_interval(self) -> tuple[float, float]:
        """The baseline is read once, at a fixed step: a fixed-time interval is valid (and
        narrower than the time-uniform one). Hoeffding for sub-Gaussian step means, else
        the empirical-Bernstein sequence's bounds."""
        if self.variance == "empirical":
            sigma2 = self.baseline.variance()
        elif self.groups:
            sigma2 = 0.25 / self.groups
        else:
            return self.baseline.bounds()
        radius = math.sqrt(2 * sigma2 * math.log(2 / self.alpha) / self.n)
        c = self.baseline.center
        return max(0.0, c - radius), min(1.0, c + radius)

    def _to_unit(self, value: float) -> float:
        x = (value - self.lo) / self.scale
        if x < 0 or x > 1:
            self.clipped += 1
            x = min(1.0, max(0.0, x))
        return x

    def update(self, step: int, value: float) -> Decision:
        if self.result is not None:
            return self.result
        x = self._to_unit(value)
        self.n += 1
        if self.n <= self.baseline_steps:
            self.baseline.update(x)
            if self.n == self.baseline_steps:
                self.baseline_frozen = self._baseline_interval()
            return self.current(step)
        post = self.n - self.baseline_steps  # 1-based index after the baseline
        if (post - 1) % self.segment_steps == 0:
            j = len(self.segments) + 1
            self.segments.append(self._cs(_segment_alpha(self.alpha, j), self.baseline.center))
        for seg in self.segments:
            seg.update(x)
        decision = self.current(step)
        if decision.decision != "inconclusive":
            self.result = decision
        return decision

    def _effect(self, seg: ConfidenceSequence) -> tuple[float, tuple[float, float]]:
        b_lo, b_hi = self.baseline_frozen
        s_lo, s_hi = seg.bounds()
        return (seg.center - self.baseline.center) * self.scale, ((s_lo - b_hi) * self.scale, (s_hi - b_lo) * self.scale)

    @property
    def method(self) -> str:
        kind = "empirical" if self.variance == "empirical" else "hoeffding" if self.groups else "bernstein"
        return f"{METHODS[kind]}; {DESIGN}"

    def current(self, step: int | None = None) -> Decision:
        if self.result is not None:
            return self.result
        base = dict(alpha=self.alpha, steps=self.n, clipped=self.clipped, method=self.method)
        if self.baseline_frozen is None or not self.segments:
            return Decision(decision="inconclusive", decided_at_step=None, effect=None, interval=None, **base)
        for seg in self.segments:
            if seg.t >= 2:
                effect, (lo, hi) = self._effect(seg)
                if lo > 0 and effect >= self.min_effect * self.scale:
                    return Decision(decision="improves", decided_at_step=step, effect=effect, interval=(lo, hi), **base)
        effect, (lo, hi) = self._effect(self.segments[0])
        latest_effect, _ = self._effect(self.segments[-1])
        if (self.n >= self.min_steps_for_no and hi < self.min_effect * self.scale
                and latest_effect < self.min_effect * self.scale / 2):
            return Decision(decision="no_improvement", decided_at_step=step, effect=effect, interval=(lo, hi), **base)
        return Decision(decision="inconclusive", decided_at_step=None, effect=effect, interval=(lo, hi), **base)


class SequentialComparison:
    """Treatment vs control, step-aligned differences; `improves` means the treatment beats the control."""

    def __init__(self, min_effect: float = 0.05, alpha: float = 0.05, bounds: tuple[float, float] = (0.0, 1.0),
                 group_size: int | None = None, segment_steps: int = 20, min_steps_for_no: int = 100,
                 variance: str = "empirical"):
        self.variance = variance
        self.scale = bounds[1] - bounds[0]
        self.bounds = bounds
        self.min_effect, self.alpha = min_effect, alpha
        self.groups = group_size
        self.segment_steps, self.min_steps_for_no = segment_steps, min_steps_for_no
        self.segments: list[ConfidenceSequence] = []
        self.n = 0
        self.clipped = 0
        self.result: Decision | None = None

    def update(self, step: int, treatment: float, control: float) -> Decision:
        if self.result is not None:
            return self.result
        lo, hi = self.bounds
        t = min(1.0, max(0.0, (treatment - lo) / self.scale))
        c = min(1.0, max(0.0, (control - lo) / self.scale))
        d = (t - c + 1) / 2
        self.n += 1
        if (self.n - 1) % self.segment_steps == 0:
            j = len(self.segments) + 1
            a = _segment_alpha(self.alpha, j)
            # d = (t − c + 1)/2 in [0, 1]; a difference of two means of g groups: σ² = 2/(4g), /4 after rescaling
            proxy = 0.125 / self.groups if self.groups else 0.25
            if self.variance == "empirical":
                self.segments.append(NormalMixtureCS(a, sigma2=proxy, tight_at=self.segment_steps, empirical=True))
            elif self.groups:
                self.segments.append(NormalMixtureCS(a, sigma2=proxy, tight_at=self.segment_steps))
            else:
                self.segments.append(ConfidenceSequence(a))
        for seg in self.segments:
            seg.update(d)
        decision = self.current(step)
        if decision.decision != "inconclusive":
            self.result = decision
        return decision

    def _effect(self, seg: ConfidenceSequence) -> tuple[float, tuple[float, float]]:
        s_lo, s_hi = seg.bounds()
        to_gain = lambda u: (2 * u - 1) * self.scale  # noqa: E731
        return to_gain(seg.center), (to_gain(s_lo), to_gain(s_hi))

    def current(self, step: int | None = None) -> Decision:
        if self.result is not None:
            return self.result
        kind = "empirical" if self.variance == "empirical" else "hoeffding" if self.groups else "bernstein"
        base = dict(alpha=self.alpha, steps=self.n, clipped=self.clipped,
                    method=f"{METHODS[kind]}; " + DESIGN.replace("baseline vs restarting segments",
                                                                  "paired step differences, restarting segments"))
        if not self.segments:
            return Decision(decision="inconclusive", decided_at_step=None, effect=None, interval=None, **base)
        for seg in self.segments:
            if seg.t >= 2:
                effect, (lo, hi) = self._effect(seg)
                if lo > 0 and effect >= self.min_effect:
                    return Decision(decision="improves", decided_at_step=step, effect=effect, interval=(lo, hi), **base)
        effect, (lo, hi) = self._effect(self.segments[0])
        latest, _ = self._effect(self.segments[-1])
        if self.n >= self.min_steps_for_no and hi < self.min_effect and latest < self.min_effect / 2:
            return Decision(decision="no_improvement", decided_at_step=step, effect=effect, interval=(lo, hi), **base)
        return Decision(decision="inconclusive", decided_at_step=None, effect=effect, interval=(lo, hi), **base)


def clean_series(points: Iterable[tuple[int, float]]) -> tuple[list[tuple[int, float]], int]:
    """Order by step, last value wins for repeated steps, NaN/inf skipped (and counted)."""
    latest: dict[int, float] = {}
    skipped = 0
    for step, value in points:
        if value is None or not math.isfinite(value):
            skipped += 1
            continue
        latest[int(step)] = float(value)
    return sorted(latest.items()), skipped


def decide_improvement(points: Iterable[tuple[int, float]], min_effect: float = 0.05, alpha: float = 0.05,
                       **kwargs) -> Decision:
    """Run the sequential test over a whole series, step by step; the first decision stands."""
    series, skipped = clean_series(points)
    test = SequentialImprovement(min_effect=min_effect, alpha=alpha, **kwargs)
    decision = test.current()
    for step, value in series:
        decision = test.update(step, value)
        if decision.decision != "inconclusive":
            break
    return decision.model_copy(update={"nan_skipped": skipped, "steps": len(series)})


def decide_comparison(treatment: Iterable[tuple[int, float]], control: Iterable[tuple[int, float]],
                      min_effect: float = 0.05, alpha: float = 0.05, **kwargs) -> Decision:
    """Does the treatment's curve beat the control's (steps both have, in order)?"""
    t_series, t_skipped = clean_series(treatment)
    c_series, c_skipped = clean_series(control)
    control_at = dict(c_series)
    test = SequentialComparison(min_effect=min_effect, alpha=alpha, **kwargs)
    decision = test.current()
    paired = 0
    for step, value in t_series:
        if step in control_at:
            paired += 1
            decision = test.update(step, value, control_at[step])
            if decision.decision != "inconclusive":
                break
    return decision.model_copy(update={"nan_skipped": t_skipped + c_skipped, "steps": paired})


def read_metric_series(path, metric: str) -> tuple[list[tuple[int, float]], list[str]]:
    """(step, value) pairs of one metric from a MetricEvents JSONL file, and the problems seen.

    A malformed line is reported with its number and skipped; NaN values are kept here
    (JSON `NaN`) so that `clean_series` can count them; the last value of a step wins.
    """
    import json
    from pathlib import Path

    points: list[tuple[int, float]] = []
    problems: list[str] = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            value = event["metrics"].get(metric)
            if value is None:
                continue
            points.append((int(event["step"]), float(value)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"{path}:{lineno}: skipped ({type(exc).__name__}: {exc})")
    return points, problems
