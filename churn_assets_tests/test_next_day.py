"""``churn-assets next-day``: the demo's world goes on one morning at a time, losing nothing."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churn_assets.cli import main
from churn_assets.core.billing import parse_billing_day
from churn_assets.core.generator import GeneratorConfig, generate_landing
from churn_assets.core.landing_layout import (
    SUCCESS_MARKER,
    parse_billing_key,
    parse_clickstream_arrival,
)
from churn_assets.next_day import (
    NoUpcomingDay,
    landed_by,
    release_next_day,
    split_by_landing_time,
)
from churn_assets.resources.storage import LocalObjectStore

START = date(2026, 1, 1)
DAYS, AHEAD = 4, 2
CONFIG = GeneratorConfig(start=START, days=DAYS + AHEAD, customers=60, seed=11)
LAST = START + timedelta(days=DAYS - 1)


def keys(store: LocalObjectStore) -> set[str]:
    return {o.key for prefix in ("billing/", "clickstream/") for o in store.list(prefix)}


def contents(store: LocalObjectStore) -> dict[str, bytes]:
    return {key: store.get(key) for key in keys(store)}


def billing_days(store: LocalObjectStore) -> list[date]:
    return sorted(
        {p[0] for o in store.list("billing/") if (p := parse_billing_key(o.key)) is not None}
    )


def billing(store: LocalObjectStore, day: date) -> pd.DataFrame:
    prefix = f"billing/dt={day.isoformat()}/"
    parts = [(o.key, store.get(o.key)) for o in store.list(prefix) if o.key.endswith(".csv.gz")]
    return parse_billing_day(parts, day).set_index("customer_id")


@pytest.fixture
def split(tmp_path: Path) -> tuple[LocalObjectStore, LocalObjectStore, dict[str, bytes]]:
    everything: dict[str, bytes] = {}
    generate_landing(everything.__setitem__, CONFIG)
    landing, upcoming = LocalObjectStore(tmp_path / "landing"), LocalObjectStore(tmp_path / "up")
    generate_landing(split_by_landing_time(landing, upcoming, LAST), CONFIG)
    return landing, upcoming, everything


def test_the_landing_zone_stands_the_morning_after_its_last_day_and_nothing_is_lost(
    split: tuple[LocalObjectStore, LocalObjectStore, dict[str, bytes]],
) -> None:
    landing, upcoming, everything = split
    landed, held_back = contents(landing), contents(upcoming)
    assert landed.keys().isdisjoint(held_back) and landed | held_back == everything
    assert billing_days(landing) == [START + timedelta(days=i) for i in range(DAYS)]
    cut = landed_by(LAST)
    arrivals = [parse_clickstream_arrival(k) for k in landed if k.startswith("clickstream/")]
    assert arrivals and all(a is not None and a <= cut for a in arrivals)
    later = [parse_clickstream_arrival(k) for k in held_back if k.startswith("clickstream/")]
    assert later and all(a is not None and a > cut for a in later)


def test_each_next_day_lands_one_more_morning_of_the_same_world(
    split: tuple[LocalObjectStore, LocalObjectStore, dict[str, bytes]],
) -> None:
    landing, upcoming, everything = split
    for offset in range(AHEAD):
        day = LAST + timedelta(days=offset + 1)
        before = keys(landing)
        released = release_next_day(landing, upcoming)
        assert released.day == day
        new = keys(landing) - before
        assert {k for k in new if k.startswith("billing/")} == {
            k for k in everything if k.startswith(f"billing/dt={day.isoformat()}/")
        }
        arrivals = [parse_clickstream_arrival(k) for k in new if k.startswith("clickstream/")]
        assert len(arrivals) == released.clickstream_objects > 0
        assert all(landed_by(day - timedelta(days=1)) < a <= landed_by(day) for a in arrivals)  # type: ignore[operator]
        marker = landing.head(f"billing/dt={day.isoformat()}/{SUCCESS_MARKER}")
        parts = [o for o in landing.list(f"billing/dt={day.isoformat()}/") if o.key != marker.key]  # type: ignore[union-attr]
        assert all(p.last_modified <= marker.last_modified for p in parts)  # type: ignore[union-attr]
        # the same customers go on: nobody disappears, nobody's signup date moves
        today, yesterday = billing(landing, day), billing(landing, day - timedelta(days=1))
        assert set(yesterday.index) <= set(today.index)
        common = yesterday.index
        assert (today.loc[common, "signup_date"] == yesterday["signup_date"]).all()
    with pytest.raises(NoUpcomingDay):
        release_next_day(landing, upcoming)
    landed = contents(landing)
    assert landed.keys() <= everything.keys()
    assert all(everything[key] == data for key, data in landed.items())


def test_the_command_says_what_landed_and_when_nothing_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    generate_landing(
        split_by_landing_time(
            LocalObjectStore(data / "landing"), LocalObjectStore(data / "upcoming"), LAST
        ),
        GeneratorConfig(start=START, days=DAYS + 1, customers=30, seed=3),
    )
    assert main(["next-day", "--data", str(data)]) == 0
    assert f"Landed {LAST + timedelta(days=1)}" in capsys.readouterr().out
    assert main(["next-day", "--data", str(data)]) == 1
    assert "No generated day is left" in capsys.readouterr().out
