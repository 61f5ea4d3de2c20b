"""The demo's producers, one day at a time: ``churn-assets next-day``.

``churn-assets demo`` simulates a longer world than it backfills (``--ahead`` more days of
the same customers, the same seed). The landing zone gets what the producers had
delivered by the morning after the history's last day (``LANDED_BY``, D+1 04:00 UTC: D's
billing extract, lands 02:30-03:30, and D's clickstream window, closes at 02:00); the
rest waits in ``upcoming/``, laid out like a landing zone. ``next-day`` moves one more
morning's deliveries into the landing zone: the clickstream objects that arrived until
the next morning, then the day's billing parts and its ``_SUCCESS`` last, as the CRM
export writes them. A running daemon (``make dev``) sees the new files and carries the
day through to ``scores``. Regenerating the world instead would not do: the simulation
depends on its length, so a longer run is not the same history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from churn_assets.core.landing_layout import (
    SUCCESS_MARKER,
    parse_billing_key,
    parse_clickstream_arrival,
)
from churn_assets.resources.storage import ObjectStore

UPCOMING = "upcoming"
"""Folder next to ``landing/`` in the demo's data folder holding the days not yet landed."""
LANDED_BY = time(4)
"""Time of day (UTC) after a day D at which the demo's landing zone stands (on D+1)."""


def landed_by(day: date) -> datetime:
    """The moment the demo's landing zone stands at when ``day`` is its last day."""
    return datetime.combine(day + timedelta(days=1), LANDED_BY, tzinfo=timezone.utc)


def landing_time_bound(key: str) -> datetime | None:
    """When a generated file has landed at the latest: an object's arrival time from its
    name; a billing file of day D by D+1 ``LANDED_BY``. None for any other key."""
    arrival = parse_clickstream_arrival(key)
    if arrival is not None:
        return arrival
    billing = parse_billing_key(key)
    return landed_by(billing[0]) if billing is not None else None


def split_by_landing_time(
    landing: ObjectStore, upcoming: ObjectStore, last_day: date
) -> Callable[[str, bytes], None]:
    """A ``write`` for the generator: files landed by ``landed_by(last_day)`` (included) go
    to the landing zone, later ones to ``upcoming``."""
    cut = landed_by(last_day)

    def write(key: str, data: bytes) -> None:
        when = landing_time_bound(key)
        if when is None:
            raise ValueError(f"the generator wrote {key!r}, which is not a landing key")
        (landing if when <= cut else upcoming).put(key, data)

    return write


@dataclass(frozen=True)
class ReleasedDay:
    day: date
    clickstream_objects: int
    billing_files: int


class NoUpcomingDay(Exception):
    """Nothing left to release: every generated day is in the landing zone."""


def release_next_day(landing: ObjectStore, upcoming: ObjectStore) -> ReleasedDay:
    """Move the next day's deliveries from ``upcoming`` to the landing zone, in the order the
    producers write them: clickstream objects by arrival, then billing parts, marker last."""
    billing_days = sorted(
        {parsed[0] for o in upcoming.list("billing/") if (parsed := parse_billing_key(o.key))}
    )
    if not billing_days:
        raise NoUpcomingDay(f"{upcoming.url} holds no billing day")
    day = billing_days[0]
    cut = landed_by(day)
    objects = sorted(
        (arrival, o.key)
        for o in upcoming.list("clickstream/")
        if (arrival := parse_clickstream_arrival(o.key)) is not None and arrival <= cut
    )
    billing = sorted(o.key for o in upcoming.list(f"billing/dt={day.isoformat()}/"))
    billing.sort(key=lambda key: key.endswith("/" + SUCCESS_MARKER))  # the marker last
    for key in [key for _, key in objects] + billing:
        landing.put(key, upcoming.get(key))
        upcoming.delete(key)
    return ReleasedDay(day, len(objects), len(billing))
