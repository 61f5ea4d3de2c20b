"""Is a day out of line with its stream's own recent history?

Steady mess is the normal state of a clickstream (one producer always sends 2% of malformed
lines, another 0.2%); a change is what must block. So a day's share or volume is compared
with a robust baseline of the same stream's recent days (median and 1.4826 x MAD, which a
few bad days in the window do not move), and it fails when it departs from it by more than
a margin. Volumes of a growing (or shrinking) business trend: with ``trend`` the baseline
is the robust line through the history (Theil-Sen: the median of the pairwise slopes)
extrapolated to the day, and the spread that of the residuals, so that a growing stream is
neither flagged nor allowed to hide a drop behind a stale median. An absolute bound (a
ceiling for shares, a floor for volumes) fails outright, whatever the history; with too
little history it is the only rule.

The margin is ``margin_sigmas`` spreads, where the spread is the larger of the history's
robust standard deviation and, for a share of ``sample_size`` lines, its binomial sampling
error at the baseline: a small day is noisy, and five equal days in the window must not make
the next slightly different one an outlier. ``min_margin`` (absolute) and
``min_relative_margin`` (a fraction of the baseline) keep departures too small to matter
from failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
from scipy.stats import theilslopes

MAD_TO_SIGMA = 1.4826
"""Scales the median absolute deviation to a standard deviation for normal data."""


@dataclass(frozen=True)
class Tolerance:
    """How far a measure may depart from its baseline, and its absolute bound."""

    above: bool
    """True: only a rise is bad (a share of bad lines); False: only a drop (a volume)."""
    bound: float
    """Ceiling (above) or floor (below) that fails outright, whatever the history."""
    margin_sigmas: float = 5.0
    min_margin: float = 0.0
    min_relative_margin: float = 0.0
    min_history_days: int = 5
    trend: bool = False


@dataclass(frozen=True)
class Verdict:
    """The numbers behind a pass or a fail, for the check's metadata."""

    passed: bool
    value: float
    above: bool
    bound: float
    history_days: int
    baseline: float | None = None
    spread: float | None = None
    margin: float | None = None
    limit: float | None = None

    @property
    def ratio(self) -> float | None:
        """Value over baseline (None without a positive baseline)."""
        if self.baseline is None or self.baseline <= 0:
            return None
        return self.value / self.baseline

    def explain(self, measure: str) -> str:
        """One sentence for the UI: why this verdict."""
        bound = "ceiling" if self.above else "floor"
        if (self.value > self.bound) if self.above else (self.value < self.bound):
            return f"{measure} {self.value:.4g} is beyond the absolute {bound} {self.bound:.4g}."
        if self.baseline is None:
            return (
                f"{measure} {self.value:.4g} is within the absolute {bound} {self.bound:.4g}; "
                f"{self.history_days} comparable earlier days are too few for a baseline."
            )
        relation = "within" if self.passed else "beyond"
        return (
            f"{measure} {self.value:.4g} is {relation} the margin {self.margin:.4g} "
            f"{'above' if self.above else 'below'} its baseline {self.baseline:.4g} (from "
            f"{self.history_days} earlier days; limit {self.limit:.4g})."
        )


def comparable_days(
    history: Mapping[date, float], day: date, weekday_aware: bool
) -> dict[date, float]:
    """The days of ``history`` that ``day`` is compared with: all, or those of the same kind
    (weekdays with weekdays, weekends with weekends: B2B traffic roughly halves at weekends,
    so a plain median would flag every Saturday or hide a real drop on a Tuesday)."""
    weekend = day.weekday() >= 5
    return {d: v for d, v in history.items() if not weekday_aware or (d.weekday() >= 5) == weekend}


def robust_baseline(history: Mapping[date, float], day: date, trend: bool) -> tuple[float, float]:
    """(baseline for ``day``, robust standard deviation around it) of ``history``.

    Without trend: the median and 1.4826 x the median absolute deviation. With trend: the
    Theil-Sen line's value at ``day`` and 1.4826 x the median absolute residual.
    """
    values = np.array(list(history.values()), dtype=float)
    if trend and len(values) >= 3:
        ages = np.array([(d - day).days for d in history], dtype=float)
        slope, intercept, _, _ = theilslopes(values, ages, method="joint")
        residuals = values - (intercept + slope * ages)
        return float(intercept), MAD_TO_SIGMA * float(np.median(np.abs(residuals)))
    center = float(np.median(values))
    return center, MAD_TO_SIGMA * float(np.median(np.abs(values - center)))


def judge(
    value: float,
    history: Mapping[date, float],
    day: date,
    tolerance: Tolerance,
    sample_size: int | None = None,
) -> Verdict:
    """Compare the ``value`` of ``day`` with ``history`` (earlier comparable days).

    ``sample_size``: the value is a share of that many lines; its binomial sampling error at
    the baseline is a lower bound of the spread.
    """
    t = tolerance
    within_bound = value <= t.bound if t.above else value >= t.bound
    if len(history) < max(t.min_history_days, 1):
        return Verdict(within_bound, value, t.above, t.bound, len(history))
    baseline, spread = robust_baseline(history, day, t.trend)
    if sample_size is not None:
        share = min(max(baseline, 0.0), 1.0)
        spread = max(spread, math.sqrt(share * (1.0 - share) / max(sample_size, 1)))
    margin = max(t.margin_sigmas * spread, t.min_margin, t.min_relative_margin * abs(baseline))
    limit = baseline + margin if t.above else baseline - margin
    within_margin = value <= limit if t.above else value >= limit
    return Verdict(
        within_bound and within_margin,
        value,
        t.above,
        t.bound,
        len(history),
        baseline=baseline,
        spread=spread,
        margin=margin,
        limit=limit,
    )
