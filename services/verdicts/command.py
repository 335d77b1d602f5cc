"""What `hypolab verdict` does, as one function: read the metric files, decide, say it in a line.

Errors a user can fix (an unreadable file, a metric that never appears, a horizon
shorter than the steps seen, a bad range) are `VerdictInputError`s whose message is the
one line to print; everything worth knowing but not fatal (skipped lines, a reward range
the data leave and that was widened) comes back as warnings.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from .sequential import Decision, decide_comparison, decide_improvement
from .series import Series, SeriesError, read_series


class VerdictInputError(ValueError):
    """Bad input for a verdict; the message names the file (and line) and what was expected."""


class VerdictReport(BaseModel):
    decision: Decision
    metric: str
    files: list[str]
    formats: list[str]
    horizon_from_file: bool
    warnings: list[str]

    def line(self) -> str:
        d = self.decision
        effect = "n/a" if d.effect is None else f"{d.effect:+.4g} in [{d.interval[0]:+.4g}, {d.interval[1]:+.4g}]"
        minimum = "n/a" if d.min_effect is None else f"{d.min_effect:.4g}"
        return (f"{self.metric}: {d.describe()}; effect {effect}, min effect {minimum} "
                f"(alpha {d.alpha}; {d.nan_skipped} NaN skipped)")


def _read(path: Path, metric: str) -> Series:
    try:
        return read_series(path, metric)
    except SeriesError as exc:
        raise VerdictInputError(str(exc)) from None


def _check_horizon(series: Series, horizon: int | None) -> None:
    if horizon is None:
        return
    for (step, _), line in zip(series.points, series.lines):
        if step > horizon:
            raise VerdictInputError(f"{series.path}:{line}: step {step} is past the horizon {horizon}; "
                                    f"expected --horizon >= the run's last step")


def verdict_from_files(metrics: Path, metric: str = "reward", control: Path | None = None,
                       min_effect: float | None = None, alpha: float = 0.05, horizon: int | None = None,
                       reward_range: tuple[float, float] | None = None, groups: int | None = None,
                       futility_after: int | None = None) -> VerdictReport:
    """Decide from metric files. Without `horizon` the file is taken as the whole run (its last step)."""
    if reward_range is not None and not reward_range[0] < reward_range[1]:
        raise VerdictInputError(f"--reward-range {reward_range[0]:g} {reward_range[1]:g}: expected LO < HI")
    runs = [_read(metrics, metric)] + ([_read(control, metric)] if control is not None else [])
    for series in runs:
        _check_horizon(series, horizon)
    warnings = [p for s in runs for p in s.problems]
    from_file = horizon is None
    if from_file:
        horizon = min(max(step for step, _ in s.points) for s in runs)
    kwargs = dict(min_effect=min_effect, alpha=alpha, horizon=horizon, reward_range=reward_range,
                  group_size=groups, futility_after=futility_after)
    try:
        if control is not None:
            decision = decide_comparison(runs[0].points, runs[1].points, **kwargs)
        else:
            decision = decide_improvement(runs[0].points, **kwargs)
    except ValueError as exc:
        raise VerdictInputError(f"{metrics}: {exc}") from None
    if control is not None and decision.steps == 0:
        raise VerdictInputError(f"{metrics}: no step in common with {control}; expected runs logged at the same steps")
    if groups is not None and reward_range is None:
        warnings.append("--groups is used by the exact method only: give --reward-range LO HI too")
    if from_file:
        warnings.append(f"horizon: the file's last step ({horizon}); pass --horizon N if the run continues")
    return VerdictReport(decision=decision, metric=runs[0].metric, files=[s.path for s in runs],
                         formats=[s.format for s in runs], horizon_from_file=from_file,
                         warnings=warnings + decision.warnings)
