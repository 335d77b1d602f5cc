"""Anytime-valid verdicts on reward curves: does a curve improve, and does a treatment beat its control?

The question H06 answered by eye ("clear reward improvement within 20–50 steps") is
answered here from the metric stream, after every step if need be, without the false
positives that repeated peeking at a fixed-horizon test produces.

No hidden bounds, scale-free
----------------------------
Real GRPO runs log a *total* reward: a weighted sum of reward functions, often negative,
often far above 1. Nothing here assumes a range: no value is ever clipped, and every
decision is *equivariant* — for any a > 0 and b, the curve a·reward + b gets the same
decision at the same step when `min_effect` is given in the matching units (a·min_effect;
a property test holds this for every decision kind). Every statistic is a mean, a
standard deviation or a bound built from them, and nothing compares them to a constant
in reward units.

The default minimum effect is *half the baseline's step-to-step standard deviation*
(`RELATIVE_EFFECT`, a standardized "medium" effect of 0.5): the one scale that is known
from the curve itself at the moment the first decision may be taken, that needs no
declared range, and that transforms with the rewards (a·sd). An explicit `min_effect`
is read in the metric's own units. With a declared `reward_range` (the environment's
range, e.g. from its rubric's weights), the default is `RANGE_EFFECT` (5%) of that
range — what 0.05 meant for rewards in [0, 1] — and the *exact* bounded methods apply.

Method
------
Confidence *sequences* — intervals that hold at every step simultaneously, so a decision
may be read after any step — built three ways, chosen by `variance=`:

- `"empirical"` (default without a range): the normal-mixture boundary with the running
  variance plugged in, i.e. an *asymptotic confidence sequence* (Waudby-Smith, Arbour,
  Sinha, Kennedy & Ramdas, "Time-uniform central limit theory and asymptotic confidence
  sequences", Ann. Statist. 2024). It adapts to the real noise of a reward curve; its
  guarantee is asymptotic. A segment's plug-in variance is floored at a quarter of the
  baseline's (scale-free), so a few equal values early in a segment cannot fake certainty.
- `"hoeffding"` (needs `reward_range` and `group_size`): exact. A step's reward is a mean
  over `group_size` independent prompt groups, each within the range, so it is
  sub-Gaussian with variance proxy 1/(4·group_size) in range units (Hoeffding), and
  Robbins' normal mixture (Howard, Ramdas, McAuliffe & Sekhon, Ann. Statist. 2021)
  bounds it at all times. Valid, but wider.
- `"bernstein"` (needs `reward_range`; what "hoeffding" falls back to without a group
  size): exact, predictable plug-in empirical-Bernstein (PrPl-EB; Waudby-Smith & Ramdas,
  JRSS-B 2024) on values mapped into [0, 1] by the range; widest.

With a range, a value outside it is never clipped: `decide_*` widen the range to the data
and say so in `Decision.warnings`; the step-by-step classes refuse the value.

`improves` compares a *baseline* (the first `baseline_steps` steps, frozen) with the
later steps. Learning curves bend and start late, so the later steps are covered by
*segments* that start every `segment_steps` steps, each with its own confidence
sequence. Every interval is two-sided, but each claim uses one side of each. A false
`improves` needs the baseline's upper bound to fail (α/2: the baseline is read once, at
a fixed step, so a fixed-time interval — Student t with the plug-in variance, or
Hoeffding when exact — is valid there) or some segment's lower bound to fail (segment j
two-sided at α·6/(π²j²), so the lower sides sum to α/2); by a union bound P(ever claiming
a false `improves`) ≤ α under continuous monitoring. The same holds for `no_improvement`
with the other sides.

`compare` feeds the per-step differences treatment − control into the *same* core
(`_SegmentedTest`): segments from the first paired step, and a reference of exactly 0
instead of a baseline interval. Its default minimum effect is half the control's step
sd over the first `baseline_steps` paired steps.

Horizon and futility
--------------------
- `improves` at step t: some segment's lower bound exceeds the reference's upper bound,
  and the estimated gain is at least `min_effect` (practically relevant, not only > 0);
- `no_improvement`: the gain over all post-baseline steps is confidently below
  `min_effect` (upper bound < min_effect) and the latest segment is not rising (its
  estimate < min_effect / 2) — but only once the run *cannot take off any more*: at its
  `horizon` (the planned number of steps; the step number or the count of steps seen
  reaches it), or from the step a hypothesis' declared `futility_after` names. GRPO
  curves often plateau for a hundred steps and more before they take off, so without a
  declared futility rule a "no" before the horizon would be a guess, and with early stop
  it would kill late learners. Without a horizon, `no_improvement` is never decided;
- otherwise `inconclusive` ("no improvement yet — step 80 of 200"). The first decision is
  final (`decided_at_step`).

Autocorrelation: under a flat curve the step rewards are independent draws around a
fixed mean, which is what the guarantee needs; under learning the drift is the signal.
A policy that random-walks without improving is the hard case; requiring the estimate
to reach `min_effect` keeps small drifts from being called improvements.
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
VARIANCES = tuple(METHODS)
DESIGN = "baseline vs restarting segments, union-bound alpha split, valid under continuous monitoring"
PAIRED = "paired step differences, restarting segments, union-bound alpha split, valid under continuous monitoring"
METHOD = f"{METHODS['empirical']}; {DESIGN}"
RELATIVE_EFFECT = 0.5  # default min effect, in baseline step standard deviations
RANGE_EFFECT = 0.05  # default min effect with a declared reward range, as a share of it
MIN_SEGMENT = 5  # steps a segment needs before its plug-in interval counts

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
    min_effect: float | None = None  # in the metric's units, as used (None: not known yet)
    horizon: int | None = None
    last_step: int | None = None
    futility_after: int | None = None
    reward_range: tuple[float, float] | None = None
    warnings: list[str] = []

    def describe(self) -> str:
        """`improves at step 45 of 200`, `no improvement yet — step 80 of 200`, ..."""
        of = f" of {self.horizon}" if self.horizon is not None else ""
        if self.decision == "improves":
            return f"improves at step {self.decided_at_step}{of}"
        if self.decision == "no_improvement":
            why = (f", futility after {self.futility_after}"
                   if self.futility_after is not None and (self.horizon is None
                                                           or self.decided_at_step < self.horizon) else "")
            return f"no improvement at step {self.decided_at_step}{of}{why}"
        at = self.last_step if self.last_step is not None else self.steps
        return f"no improvement yet — step {at}{of}" if self.horizon is not None else \
            f"no improvement yet — step {at} (no horizon: a \"no\" needs one)"


def _t_quantile(p: float, df: int) -> float:
    """Student t quantile (Cornish–Fisher expansion around the normal one; ample for df >= 5)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(p)
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


@dataclass
class Welford:
    """Running mean and variance, numerically stable under any offset."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    @property
    def var(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0


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
        """The data lie in [0, 1] (the range was checked), so the mean's bounds may be cut there."""
        if not self.sum_lam:
            return 0.0, 1.0
        width = (self.log_term + self.sum_penalty) / self.sum_lam
        return max(0.0, self.center - width), min(1.0, self.center + width)


@dataclass
class NormalMixtureCS:
    """Normal-mixture confidence sequence (Robbins 1970; Howard et al., Ann. Statist. 2021).

    With a known variance proxy σ² (sub-Gaussian steps, e.g. 1/(4·groups) for means of
    `groups` values in [0, 1]) and V_t = σ²t, the two-sided bound
        |Σ (X_i − μ_i)| ≤ sqrt(2 (V_t + ρ) · log( sqrt((V_t + ρ)/ρ) / (α/2) ))
    holds for all t at once with probability ≥ 1 − α; ρ = σ²·tight_at tunes where it is
    tightest. `empirical=True` plugs in the running variance (at least `floor`): an
    asymptotic CS, scale-free, unbounded (see the module doc).
    """

    alpha: float
    sigma2: float = 0.0
    tight_at: int = 20
    empirical: bool = False
    floor: float = 0.0
    lo: float = 0.0
    hi: float = 1.0
    stats: Welford = field(default_factory=Welford)

    def __post_init__(self) -> None:
        if self.empirical:
            self.lo, self.hi = -math.inf, math.inf

    @property
    def t(self) -> int:
        return self.stats.n

    def update(self, x: float) -> None:
        self.stats.add(x)

    def variance(self) -> float:
        return max(self.stats.var, self.floor) if self.empirical else self.sigma2

    @property
    def center(self) -> float:
        return self.stats.mean

    def bounds(self) -> tuple[float, float]:
        if not self.t or (self.empirical and self.t < 3):
            return self.lo, self.hi
        sigma2 = self.variance()
        if sigma2 <= 0:
            return max(self.lo, self.center), min(self.hi, self.center)
        rho = sigma2 * self.tight_at
        v = sigma2 * self.t + rho
        radius = math.sqrt(2 * v * math.log(math.sqrt(v / rho) / (self.alpha / 2))) / self.t
        return max(self.lo, self.center - radius), min(self.hi, self.center + radius)


def _segment_alpha(alpha: float, j: int) -> float:
    return alpha * 6 / (math.pi ** 2 * j ** 2)


def _resolve_variance(variance: str | None, reward_range, group_size) -> str:
    if variance is None:
        variance = "empirical" if reward_range is None else "hoeffding"
    if variance not in VARIANCES:
        raise ValueError(f"variance={variance!r}: expected one of {', '.join(VARIANCES)}")
    if variance != "empirical" and reward_range is None:
        raise ValueError(f"variance={variance!r} is an exact bounded method: it needs reward_range=(lo, hi)")
    if variance == "hoeffding" and not group_size:
        variance = "bernstein"
    return variance


class _SegmentedTest:
    """The core both tests share: restarting segments of a stream, a reference, one decision rule.

    Values enter in *unit space*: the metric's own units for the empirical method, the
    declared range mapped to [0, 1] for the exact ones; `self.k` turns unit differences
    back into metric units. Subclasses set the reference (`self.ref`: center, lower and
    upper bound) and the default minimum effect, then call `_feed`.
    """

    paired = False

    def __init__(self, min_effect: float | None, alpha: float, reward_range: tuple[float, float] | None,
                 group_size: int | None, segment_steps: int, variance: str | None, horizon: int | None,
                 futility_after: int | None, baseline_steps: int):
        self.kind = _resolve_variance(variance, reward_range, group_size)
        if reward_range is not None and not reward_range[1] > reward_range[0]:
            raise ValueError(f"reward_range {reward_range}: expected LO < HI")
        if min_effect is not None and min_effect < 0:
            raise ValueError(f"min_effect {min_effect}: expected >= 0 (in the metric's units)")
        self.range = reward_range
        self.scale = reward_range[1] - reward_range[0] if reward_range else 1.0
        self.alpha, self.groups = alpha, group_size
        self.min_effect = min_effect
        if min_effect is None and reward_range is not None:
            self.min_effect = RANGE_EFFECT * self.scale
        self.segment_steps, self.baseline_steps = segment_steps, baseline_steps
        self.horizon, self.futility_after = horizon, futility_after
        self.segments: list = []
        self.seg_count = 0
        self.ref: tuple[float, float, float] | None = None
        self.k = self.scale
        self.floor = 0.0
        self.n = 0
        self.last_step: int | None = None
        self.result: Decision | None = None

    # -- unit space -------------------------------------------------------------------
    def _to_unit(self, value: float) -> float:
        if self.range is None:
            return value
        lo, hi = self.range
        if not lo <= value <= hi:
            raise ValueError(f"value {value} outside reward_range [{lo}, {hi}]: widen the range "
                             f"(decide_improvement/decide_comparison do it with a warning); nothing is clipped")
        return (value - lo) / self.scale

    def _cs(self, alpha: float, prior_mean: float = 0.5, sigma2: float = 0.25):
        if self.kind == "empirical":
            return NormalMixtureCS(alpha, tight_at=self.segment_steps, empirical=True, floor=self.floor)
        if self.kind == "hoeffding":
            return NormalMixtureCS(alpha, sigma2=sigma2 / self.groups, tight_at=self.segment_steps)
        return ConfidenceSequence(alpha, prior_mean=prior_mean)

    def _feed_segments(self, y: float, prior_mean: float, sigma2: float) -> None:
        if self.seg_count % self.segment_steps == 0:
            j = len(self.segments) + 1
            self.segments.append(self._cs(_segment_alpha(self.alpha, j), prior_mean, sigma2))
        self.seg_count += 1
        for seg in self.segments:
            seg.update(y)

    # -- the decision -----------------------------------------------------------------
    @property
    def method(self) -> str:
        return f"{METHODS[self.kind]}; {PAIRED if self.paired else DESIGN}"

    def _may_say_no(self, step: int | None) -> bool:
        if step is None:
            return False
        if self.futility_after is not None and step >= self.futility_after:
            return True
        return self.horizon is not None and (step >= self.horizon or self.n >= self.horizon)

    def _gain(self, seg) -> tuple[float, float, float]:
        b_c, b_lo, b_hi = self.ref
        s_lo, s_hi = seg.bounds()
        return self.k * (seg.center - b_c), self.k * (s_lo - b_hi), self.k * (s_hi - b_lo)

    def _decision(self, name: DecisionName, step: int | None, gain=None) -> Decision:
        effect, lo, hi = gain if gain else (None, None, None)
        return Decision(decision=name, decided_at_step=step if name != "inconclusive" else None,
                        effect=effect, interval=None if gain is None else (lo, hi), alpha=self.alpha,
                        method=self.method, steps=self.n, min_effect=self.min_effect, horizon=self.horizon,
                        last_step=self.last_step, futility_after=self.futility_after, reward_range=self.range)

    def current(self, step: int | None = None) -> Decision:
        if self.result is not None:
            return self.result
        ready = [s for s in self.segments if s.t >= MIN_SEGMENT]
        if self.ref is None or self.min_effect is None or not ready:
            return self._decision("inconclusive", step)
        for seg in ready:
            gain = self._gain(seg)
            if gain[1] > 0 and gain[0] >= self.min_effect:
                return self._decision("improves", step, gain)
        overall = self._gain(ready[0])
        latest = self._gain(ready[-1])[0]
        if self._may_say_no(step) and overall[2] < self.min_effect and latest < self.min_effect / 2:
            return self._decision("no_improvement", step, overall)
        return self._decision("inconclusive", step, overall)

    def _settle(self, step: int) -> Decision:
        self.last_step = step
        decision = self.current(step)
        if decision.decision != "inconclusive":
            self.result = decision
        return decision


class SequentialImprovement(_SegmentedTest):
    """Feed one step at a time (`update`); read the decision whenever you like."""

    def __init__(self, min_effect: float | None = None, alpha: float = 0.05,
                 reward_range: tuple[float, float] | None = None, group_size: int | None = None,
                 baseline_steps: int = 20, segment_steps: int = 15, variance: str | None = None,
                 horizon: int | None = None, futility_after: int | None = None):
        super().__init__(min_effect, alpha, reward_range, group_size, segment_steps, variance, horizon,
                         futility_after, baseline_steps)
        self.baseline = Welford()
        self.baseline_cs = ConfidenceSequence(alpha) if self.kind == "bernstein" else None

    def _freeze_baseline(self) -> None:
        """The baseline is read once, at a fixed step: a fixed-time interval is valid there
        (Student t with the plug-in variance, Hoeffding when exact, else the PrPl-EB bounds)."""
        b = self.baseline
        if self.kind == "empirical":
            radius = _t_quantile(1 - self.alpha / 2, b.n - 1) * math.sqrt(b.var / b.n)
            self.floor = b.var / 4
        elif self.kind == "hoeffding":
            radius = math.sqrt(2 * 0.25 / self.groups * math.log(2 / self.alpha) / b.n)
        else:
            lo, hi = self.baseline_cs.bounds()
            self.ref = (self.baseline_cs.center, lo, hi)
            radius = None
        if radius is not None:
            self.ref = (b.mean, b.mean - radius, b.mean + radius)
        if self.min_effect is None:
            self.min_effect = RELATIVE_EFFECT * math.sqrt(b.var) * self.k

    def update(self, step: int, value: float) -> Decision:
        if self.result is not None:
            return self.result
        x = self._to_unit(value)
        self.n += 1
        if self.n <= self.baseline_steps:
            self.baseline.add(x)
            if self.baseline_cs is not None:
                self.baseline_cs.update(x)
            if self.n == self.baseline_steps:
                self._freeze_baseline()
        else:
            self._feed_segments(x, self.baseline.mean, 0.25)
        return self._settle(step)


class SequentialComparison(_SegmentedTest):
    """Treatment vs control, step-aligned differences; `improves` means the treatment beats the control."""

    paired = True

    def __init__(self, min_effect: float | None = None, alpha: float = 0.05,
                 reward_range: tuple[float, float] | None = None, group_size: int | None = None,
                 baseline_steps: int = 20, segment_steps: int = 20, variance: str | None = None,
                 horizon: int | None = None, futility_after: int | None = None):
        super().__init__(min_effect, alpha, reward_range, group_size, segment_steps, variance, horizon,
                         futility_after, baseline_steps)
        # differences d = t − c in metric units, or (t − c + 1)/2 in [0, 1] for the exact methods
        self.ref = (0.0, 0.0, 0.0) if self.kind == "empirical" else (0.5, 0.5, 0.5)
        self.k = 1.0 if self.kind == "empirical" else 2 * self.scale
        self.control, self.diffs = Welford(), Welford()

    def update(self, step: int, treatment: float, control: float) -> Decision:
        if self.result is not None:
            return self.result
        t, c = self._to_unit(treatment), self._to_unit(control)
        self.n += 1
        d = t - c if self.kind == "empirical" else (t - c + 1) / 2
        if self.n <= self.baseline_steps:
            self.control.add(c)
            self.diffs.add(d)
            if self.n == self.baseline_steps:
                if self.kind == "empirical":
                    self.floor = self.diffs.var / 4
                    for seg in self.segments:
                        seg.floor = self.floor
                if self.min_effect is None:
                    self.min_effect = RELATIVE_EFFECT * math.sqrt(self.control.var)
        # a difference of two means of g groups: σ² = 2/(4g), /4 after mapping to [0, 1]
        self._feed_segments(d, 0.5, 0.125)
        return self._settle(step)


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


def _check_horizon(horizon: int | None, last_step: int | None) -> None:
    if horizon is not None and last_step is not None and last_step > horizon:
        raise ValueError(f"horizon {horizon} is shorter than the steps seen (last step {last_step})")


def _widen(reward_range, values: list[float], what: str) -> tuple[tuple[float, float] | None, list[str]]:
    """A declared range the data leave is widened to the data, with a warning; never a clip."""
    if reward_range is None or not values:
        return reward_range, []
    lo, hi = reward_range
    v_lo, v_hi = min(values), max(values)
    if lo <= v_lo and v_hi <= hi:
        return reward_range, []
    wide = (min(lo, v_lo), max(hi, v_hi))
    outside = sum(not lo <= v <= hi for v in values)
    return wide, [f"{outside} {what} value(s) outside the reward range [{lo:g}, {hi:g}] "
                  f"(from {v_lo:g} to {v_hi:g}): range widened to [{wide[0]:g}, {wide[1]:g}]"]


def decide_improvement(points: Iterable[tuple[int, float]], min_effect: float | None = None, alpha: float = 0.05,
                       horizon: int | None = None, reward_range: tuple[float, float] | None = None,
                       **kwargs) -> Decision:
    """Run the sequential test over a series, step by step; the first decision stands.

    `horizon`: the run's planned number of steps (None: unknown, so never `no_improvement`
    unless `futility_after` is given). A horizon below the last step is a ValueError.
    """
    series, skipped = clean_series(points)
    _check_horizon(horizon, series[-1][0] if series else None)
    reward_range, warnings = _widen(reward_range, [v for _, v in series], "metric")
    test = SequentialImprovement(min_effect=min_effect, alpha=alpha, horizon=horizon, reward_range=reward_range,
                                 **kwargs)
    decision = test.current()
    for step, value in series:
        decision = test.update(step, value)
        if decision.decision != "inconclusive":
            break
    return decision.model_copy(update={"nan_skipped": skipped, "steps": len(series), "warnings": warnings,
                                       "last_step": series[-1][0] if series else None})


def decide_comparison(treatment: Iterable[tuple[int, float]], control: Iterable[tuple[int, float]],
                      min_effect: float | None = None, alpha: float = 0.05, horizon: int | None = None,
                      reward_range: tuple[float, float] | None = None, **kwargs) -> Decision:
    """Does the treatment's curve beat the control's (steps both have, in order)?"""
    t_series, t_skipped = clean_series(treatment)
    c_series, c_skipped = clean_series(control)
    control_at = dict(c_series)
    pairs = [(step, value, control_at[step]) for step, value in t_series if step in control_at]
    _check_horizon(horizon, pairs[-1][0] if pairs else None)
    reward_range, warnings = _widen(reward_range, [v for p in pairs for v in p[1:]], "paired")
    test = SequentialComparison(min_effect=min_effect, alpha=alpha, horizon=horizon, reward_range=reward_range,
                                **kwargs)
    decision = test.current()
    for step, value, base in pairs:
        decision = test.update(step, value, base)
        if decision.decision != "inconclusive":
            break
    return decision.model_copy(update={"nan_skipped": t_skipped + c_skipped, "steps": len(pairs),
                                       "warnings": warnings, "last_step": pairs[-1][0] if pairs else None})
