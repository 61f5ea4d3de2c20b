"""The landing zone resource: where upstream producers drop billing extracts and clickstream.

Assets and sensors ask it questions in the contract's own terms (a billing day's delivery,
the clickstream objects of an arrival window); whether the root is a directory or an S3
prefix is decided by its URL alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from churn_assets.core.landing_layout import (
    SUCCESS_MARKER,
    billing_day_prefix,
    clickstream_prefixes_for_window,
    is_billing_part,
    parse_clickstream_arrival,
)
from churn_assets.resources.location import StorageLocation
from churn_assets.resources.storage import StoredObject


@dataclass(frozen=True)
class BillingDelivery:
    """A complete billing day: the parts present when its ``_SUCCESS`` marker was found."""

    day: date
    parts: tuple[StoredObject, ...]
    success: StoredObject

    @property
    def version(self) -> str:
        """Identifies this delivery: changes whenever upstream writes the day again.

        An empty ``_SUCCESS`` always has the same ETag, so its LastModified is part of it.
        """
        marker = f"{self.success.etag}@{self.success.last_modified.isoformat()}"
        return "|".join([marker, *(f"{p.key}:{p.etag}" for p in self.parts)])


@dataclass(frozen=True)
class ClickstreamObject:
    key: str
    arrival_time: datetime
    size: int
    etag: str


@dataclass(frozen=True)
class ClickstreamListing:
    objects: tuple[ClickstreamObject, ...]
    unrecognised_keys: tuple[str, ...]


class LandingZone(StorageLocation):
    """Landing zone root: a local directory or ``s3://bucket/prefix`` (same layout below it)."""

    def billing_delivery(self, day: date) -> BillingDelivery | None:
        """The day's parts, or None while the day is incomplete (LANDING §1).

        Incomplete: no ``_SUCCESS`` yet, or parts newer than it (a re-delivery in progress).
        """
        listing = list(self.store.list(billing_day_prefix(day)))
        success = next((o for o in listing if o.key.endswith("/" + SUCCESS_MARKER)), None)
        if success is None:
            return None
        parts = tuple(o for o in listing if is_billing_part(o.key.rsplit("/", 1)[-1]))
        if any(part.last_modified > success.last_modified for part in parts):
            return None  # a re-delivery is being written: wait for its new _SUCCESS
        return BillingDelivery(day=day, parts=parts, success=success)

    def read_billing_parts(self, delivery: BillingDelivery) -> list[tuple[str, bytes]]:
        return [(part.key, self.store.get(part.key)) for part in delivery.parts]

    def clickstream_objects(self, start: datetime, end: datetime) -> ClickstreamListing:
        """Objects whose arrival time (from the name) is in [start, end), in arrival order."""
        found: list[ClickstreamObject] = []
        unrecognised: list[str] = []
        for prefix in clickstream_prefixes_for_window(start, end):
            for stored in self.store.list(prefix):
                arrival = parse_clickstream_arrival(stored.key)
                if arrival is None:
                    unrecognised.append(stored.key)
                elif start <= arrival < end:
                    found.append(ClickstreamObject(stored.key, arrival, stored.size, stored.etag))
        found.sort(key=lambda o: (o.arrival_time, o.key))
        return ClickstreamListing(tuple(found), tuple(unrecognised))

    def read(self, key: str) -> bytes:
        return self.store.get(key)

    def uri(self, key: str) -> str:
        return self.store.uri(key)
