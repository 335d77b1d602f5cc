"""A plain fixed-horizon test on reward curves: early window vs late window (Welch's t).

Until the sequential engine (the verdicts issue) lands, the coordinator decides
`improves` / `no_improvement` / `compare` rules with this test, and only once the
experiment has finished — a fixed-horizon test looked at once is valid; looked at after
every step it would not be, which is why it is never run on a live curve.

The windows are the first and the last quarter of the steps (at least 4 steps each).
Caveat, stated rather than hidden: consecutive GRPO steps are autocorrelated, which
makes Welch's standard error optimistic; the sequential engine handles that properly.
"""

from __future__ import annotations

import math
from statistics import fmean, variance

from pydantic import BaseModel
from scipy import stats

MIN_WINDOW = 4


class WindowTest(BaseModel):
    decision: str  # "greater" | "not_greater" | "undecided" | "insufficient"
    effect: float | None = None
    interval: tuple[float, float] | None = None  # two-sided (1 - 2*alpha) = one-sided bounds
    n_a: int = 0
    n_b: int = 0
    detail: str = ""


def windows(series: list[tuple[int, float]]) -> tuple[list[float], list[float]]:
    """First and last quarter of a curve, ordered by step."""
    values = [v for _, v in sorted(series)]
    k = max(MIN_WINDOW, len(values) // 4)
    if len(values) < 2 * MIN_WINDOW:
        return [], []
    return values[:k], values[-k:]


def welch_greater(a: list[float], b: list[float], min_effect: float, alpha: float = 0.05) -> WindowTest:
    """Is mean(b) - mean(a) at least `min_effect`? One-sided Welch bounds at level alpha.

    greater:      lower bound > 0 and the estimate >= min_effect
    not_greater:  upper bound < min_effect (confidently below the minimum effect)
    undecided:    neither
    """
    if len(a) < MIN_WINDOW or len(b) < MIN_WINDOW:
        return WindowTest(decision="insufficient", n_a=len(a), n_b=len(b),
                          detail=f"need at least {MIN_WINDOW} values in each window")
    effect = fmean(b) - fmean(a)
    va, vb = variance(a) / len(a), variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        lo = hi = effect
    else:
        df = (va + vb) ** 2 / ((va ** 2) / (len(a) - 1) + (vb ** 2) / (len(b) - 1))
        t = stats.t.ppf(1 - alpha, df)
        lo, hi = effect - t * se, effect + t * se
    if lo > 0 and effect >= min_effect:
        decision = "greater"
    elif hi < min_effect:
        decision = "not_greater"
    else:
        decision = "undecided"
    return WindowTest(decision=decision, effect=effect, interval=(lo, hi), n_a=len(a), n_b=len(b),
                      detail=f"effect {effect:+.4f}, one-sided {1 - alpha:.0%} bounds [{lo:+.4f}, {hi:+.4f}], "
                             f"minimum effect {min_effect}")
