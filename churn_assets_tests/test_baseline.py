"""Judging a day against its stream's own history (``core.baseline``), and the thresholds
resource an operator edits (``RawContracts``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from churn_assets.core.baseline import Tolerance, comparable_days, judge, robust_baseline
from churn_assets.environments import contracts_for, resources_for
from churn_assets.resources.contracts import CONTRACTS_FILE_VARIABLE, RawContracts

DAY = date(2026, 3, 11)  # a Wednesday
SHARE = RawContracts().tolerance("quarantine_share")
EVENTS = RawContracts().tolerance("events")
REPOSITORY = Path(__file__).resolve().parents[1]


def before(values: list[float], day: date = DAY) -> dict[date, float]:
    """``values`` as the history of the days before ``day`` (the last value is yesterday's)."""
    return {day - timedelta(days=len(values) - i): v for i, v in enumerate(values)}


def shares(rng: np.random.Generator, p: float, lines: int, days: int) -> dict[date, float]:
    """Daily shares of bad lines of a producer with a steady rate ``p`` (binomial noise)."""
    return before(list(rng.binomial(lines, p, days) / lines))


def test_robust_baseline_ignores_a_few_outliers() -> None:
    center, spread = robust_baseline(
        before([0.02, 0.021, 0.019, 0.02, 0.3, 0.02, 0.022]), DAY, trend=False
    )
    assert center == 0.02
    assert spread == pytest.approx(1.4826 * 0.001)


@pytest.mark.parametrize("p", [0.005, 0.02, 0.05])
@pytest.mark.parametrize("lines", [5_000, 50_000])
def test_a_steady_share_passes_and_a_jump_of_five_points_fails(p: float, lines: int) -> None:
    """Any steady level passes (no false alarm in 300 noisy days); +5 points always fails."""
    rng = np.random.default_rng([int(p * 1000), lines])
    false_alarms = 0
    for _ in range(300):
        history = shares(rng, p, lines, 28)
        today = rng.binomial(lines, p) / lines
        false_alarms += not judge(today, history, DAY, SHARE, sample_size=lines).passed
        burst = judge(rng.binomial(lines, p + 0.05) / lines, history, DAY, SHARE, sample_size=lines)
        assert not burst.passed and burst.baseline == pytest.approx(p, abs=0.01)
    assert false_alarms == 0


def test_bad_days_in_the_window_do_not_move_the_baseline() -> None:
    history = before([0.02] * 10 + [0.07, 0.07, 0.07])
    assert judge(0.021, history, DAY, SHARE, sample_size=5000).passed
    assert not judge(0.07, history, DAY, SHARE, sample_size=5000).passed


def test_a_stream_that_always_swings_gets_a_wider_margin() -> None:
    steady = before([0.02] * 14)
    swinging = before([0.01, 0.04, 0.015, 0.035, 0.02, 0.045, 0.01] * 2)
    assert not judge(0.05, steady, DAY, SHARE, sample_size=50_000).passed
    wide = judge(0.05, swinging, DAY, SHARE, sample_size=50_000)
    assert wide.passed and wide.margin is not None and wide.margin > 0.05


def test_a_small_day_is_judged_with_its_sampling_error() -> None:
    """Five identical days give no spread; the day's binomial error still sets the margin."""
    history = before([0.02] * 5)
    small = judge(0.035, history, DAY, SHARE, sample_size=400)  # +1.5 points on 400 lines: noise
    assert small.passed and small.spread == pytest.approx((0.02 * 0.98 / 400) ** 0.5)
    assert not judge(0.035, history, DAY, SHARE, sample_size=400_000).passed


def test_too_little_history_leaves_only_the_ceiling() -> None:
    few = before([0.001] * (SHARE.min_history_days - 1))
    verdict = judge(0.2, few, DAY, SHARE, sample_size=10_000)
    assert verdict.passed and verdict.baseline is None and verdict.history_days == len(few)
    assert "too few" in verdict.explain("quarantine_share")
    broken = judge(0.3, few, DAY, SHARE, sample_size=10_000)
    assert not broken.passed and "ceiling 0.25" in broken.explain("quarantine_share")
    # The ceiling also holds against a history that is itself broken.
    assert not judge(0.3, before([0.3] * 28), DAY, SHARE, sample_size=10_000).passed


def test_a_volume_fails_on_a_drop_beyond_its_margin_and_below_its_floor() -> None:
    history = before([1000.0, 980, 1010, 995, 1005, 990, 1002])
    assert judge(800, history, DAY, EVENTS).passed  # -20%: within the 30% minimum margin
    dropped = judge(600, history, DAY, EVENTS)
    assert not dropped.passed and dropped.ratio == pytest.approx(0.6, abs=0.01)
    assert "below its baseline 1" in dropped.explain("events")
    assert judge(5000, history, DAY, EVENTS).passed  # more traffic is not an outage
    assert not judge(0, {}, DAY, EVENTS).passed  # nothing at all: an outage, whatever the history


def test_a_growing_stream_is_judged_against_its_trend() -> None:
    """Customers grow ~7 a day with a lost day in the window: the baseline follows the trend
    (a stale median would let a halved day pass), and the lost day does not bend it."""
    grown = [150.0, 157, 166, 171, 180, 1, 193, 200, 208]
    history = before(grown)
    trend = judge(120, history, DAY, EVENTS)
    assert trend.baseline == pytest.approx(214, abs=4) and not trend.passed
    assert judge(212, history, DAY, EVENTS).passed
    flat = judge(120, history, DAY, RawContracts().tolerance("quarantine_share"))
    assert flat.baseline == 171.0  # shares use no trend: the median
    level = Tolerance(above=False, bound=1, min_relative_margin=0.3, trend=False)
    assert judge(120, history, DAY, level).passed  # the stale median hides the drop


def test_volumes_compare_with_days_of_the_same_kind() -> None:
    def traffic(day: date) -> dict[date, float]:
        earlier = [day - timedelta(days=i) for i in range(1, 15)]
        return {d: 450.0 if d.weekday() >= 5 else 1000.0 for d in earlier}

    tolerance = Tolerance(above=False, bound=1, min_relative_margin=0.3, min_history_days=3)
    saturday = date(2026, 3, 14)
    weekend = comparable_days(traffic(saturday), saturday, weekday_aware=True)
    assert set(weekend.values()) == {450.0} and len(weekend) == 4
    assert judge(450, weekend, saturday, tolerance).passed
    weekdays = comparable_days(traffic(DAY), DAY, weekday_aware=True)
    wednesday = judge(450, weekdays, DAY, tolerance)
    assert not wednesday.passed and wednesday.baseline == 1000.0
    # Without weekday awareness the plain median is a weekday's: the Saturday would fail.
    every_day = comparable_days(traffic(saturday), saturday, weekday_aware=False)
    assert not judge(450, every_day, saturday, tolerance).passed


# the thresholds an operator edits ---------------------------------------------------------


def test_a_contracts_file_overrides_single_fields_and_rejects_unknown_ones(tmp_path) -> None:
    path = tmp_path / "contracts.yaml"
    path.write_text("history_days: 14\nquarantine_share:\n  ceiling: 0.4\n")
    contracts = contracts_for({CONTRACTS_FILE_VARIABLE: str(path)})
    assert contracts.history_days == 14
    assert contracts.quarantine_share.ceiling == 0.4
    assert contracts.quarantine_share.min_margin == RawContracts().quarantine_share.min_margin
    assert contracts.tolerance("quarantine_share").bound == 0.4
    assert contracts_for({}) == RawContracts()
    for misspelt, name in [
        ("quarantine_shares:\n  ceiling: 0.4\n", "quarantine_shares"),
        ("history_dayz: 14\n", "history_dayz"),
        ("events:\n  min_dorp: 0.5\n", "events.min_dorp"),
    ]:
        path.write_text(misspelt)
        with pytest.raises(ValueError, match=name):
            contracts_for({CONTRACTS_FILE_VARIABLE: str(path)})


def test_the_resource_of_every_environment_carries_the_file(tmp_path) -> None:
    path = tmp_path / "contracts.yaml"
    path.write_text("events:\n  min_drop: 0.5\n")
    resources = resources_for("local", {CONTRACTS_FILE_VARIABLE: str(path)})
    assert resources["raw_contracts"].events.min_drop == 0.5
    assert resources_for("local", {})["raw_contracts"] == RawContracts()


def test_the_documented_contracts_file_holds_the_defaults() -> None:
    """``contracts.yaml`` lists every threshold with its default: the operator's copy."""
    documented = RawContracts.from_file(REPOSITORY / "contracts.yaml")
    assert documented == RawContracts()
    text = (REPOSITORY / "contracts.yaml").read_text()
    assert all(f"{name}:" in text for name in RawContracts.model_fields)
