"""The landing zone resource: where upstream producers drop billing extracts and clickstream.

Assets and sensors ask it questions in the contract's own terms (a billing day's delivery,
the clickstream objects of an arrival window); whether the root is a directory or an S3
prefix is decided by its URL alone. Every key it sees under a listed prefix is either read
or returned as an ``UnreadKey`` with its reason, so nothing is skipped silently; and the caps
on what one object may cost (``ObjectLimits``) are configured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import Field

from churn_assets.core.billing import part_over_cap
from churn_assets.core.bounded_read import DEFAULT_LIMITS, ObjectLimits, OverCap
from churn_assets.core.landing_layout import (
    BILLING_ROOT,
    MISFILED,
    REFUSED_LINK,
    UNKNOWN_BILLING_FILE,
    UNRECOGNISED_NAME,
    UnreadKey,
    billing_day_file,
    billing_day_prefix,
    clickstream_day_prefix,
    clickstream_listing_prefixes,
    is_filed_by_arrival,
    misfiled_detail,
    parse_clickstream_arrival,
    stray_keys,
    stray_levels,
)
from churn_assets.resources.location import StorageLocation
from churn_assets.resources.storage import StoredObject


@dataclass(frozen=True)
class BillingDelivery:
    """A complete billing day: the parts present when its ``_SUCCESS`` marker was found."""

    day: date
    parts: tuple[StoredObject, ...]
    success: StoredObject
    unread: tuple[UnreadKey, ...] = ()

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
    unread: tuple[UnreadKey, ...] = ()
    """Keys of this partition's folders not read as its data, and misfiled keys it reads."""


class LandingZone(StorageLocation):
    """Landing zone root: a local directory or ``s3://bucket/prefix`` (same layout below it)."""

    max_object_bytes: int = Field(
        default=DEFAULT_LIMITS.max_bytes,
        description="Decompressed bytes one object (clickstream object or billing part) may "
        "hold; beyond it the object is quarantined whole (object_over_cap) or the billing day "
        "rejected, without reading further.",
    )
    max_object_lines: int = Field(
        default=DEFAULT_LIMITS.max_lines,
        description="Lines one object may hold; beyond it, as for max_object_bytes.",
    )
    max_stored_bytes: int = Field(
        default=DEFAULT_LIMITS.max_stored_bytes,
        description="Bytes of an unreadable (not gzip) object kept in the quarantine table.",
    )

    @property
    def object_limits(self) -> ObjectLimits:
        return ObjectLimits(self.max_object_bytes, self.max_object_lines, self.max_stored_bytes)

    def _refused(self, prefix: str) -> list[UnreadKey]:
        return [UnreadKey(key, REFUSED_LINK, why) for key, why in self.store.refused(prefix)]

    def _strays(self, levels: list[str]) -> list[UnreadKey]:
        found: list[UnreadKey] = []
        for level in levels:
            found += stray_keys(*self.store.list_level(level))
        return found

    def billing_delivery(self, day: date, strays: bool = False) -> BillingDelivery | None:
        """The day's parts, or None while the day is incomplete (LANDING §1).

        Incomplete: no ``_SUCCESS`` yet, or parts newer than it (a re-delivery in progress).
        Other files in the day's folder are returned as ``unread`` with their reason; with
        ``strays``, so is whatever ``billing/`` holds outside the day folders (one delimiter
        listing: a page per 1,000 days, not a listing of their keys).
        """
        prefix = billing_day_prefix(day)
        listing = list(self.store.list(prefix))
        kinds = {o.key: billing_day_file(o.key, day) for o in listing}
        success = next((o for o in listing if kinds[o.key] == "success"), None)
        if success is None:
            return None
        parts = tuple(o for o in listing if kinds[o.key] == "part")
        if any(part.last_modified > success.last_modified for part in parts):
            return None  # a re-delivery is being written: wait for its new _SUCCESS
        unread = [
            UnreadKey(o.key, UNKNOWN_BILLING_FILE, "not part-NNNNN.csv.gz or _SUCCESS: not read")
            for o in listing
            if kinds[o.key] is None
        ]
        unread += self._refused(prefix)
        if strays:
            unread += self._strays([BILLING_ROOT])
        return BillingDelivery(day, parts, success, tuple(unread))

    def read_billing_parts(self, delivery: BillingDelivery) -> list[tuple[str, bytes]]:
        """The parts' bytes; a part listed larger than the byte cap is not even fetched: the
        day is rejected (``part_over_cap``)."""
        limits = self.object_limits
        for part in delivery.parts:
            if part.size > limits.max_bytes:
                over = OverCap("bytes", limits.max_bytes, 0, 0)
                raise part_over_cap(part.key, over, part.size)
        return [(part.key, self.store.get(part.key)) for part in delivery.parts]

    def clickstream_objects(
        self, start: datetime, end: datetime, lateness: timedelta | None = None
    ) -> ClickstreamListing:
        """Objects whose arrival time (from the name) is in [start, end), in arrival order.

        The day folders of the window and one more on each side are listed, so an object
        misfiled under a neighbouring day is still read (and reported as misfiled). Keys
        filed under the window's first day that are not read here are reported: unrecognised
        names, symlinks, and misfiled objects named for another time (``misfiled_detail``
        says which partition reads them, if any), and, from delimiter listings of the root,
        year and month levels above that day, keys outside any day folder (``stray_keys``).
        ``lateness`` defaults to the window's length beyond one day.
        """
        lateness = end - start - timedelta(days=1) if lateness is None else lateness
        own_day = start.date()
        found: list[ClickstreamObject] = []
        unrecognised: list[str] = []
        unread: list[UnreadKey] = self._strays(stray_levels(own_day))
        for prefix in clickstream_listing_prefixes(start, end):
            if prefix == clickstream_day_prefix(own_day):
                unread.extend(self._refused(prefix))
            for stored in self.store.list(prefix):
                arrival = parse_clickstream_arrival(stored.key)
                # by key, so that a bad hour folder (``.../25/``) of the day is reported here
                reported_here = stored.key.startswith(clickstream_day_prefix(own_day))
                if arrival is None:
                    if reported_here:
                        unrecognised.append(stored.key)
                        unread.append(UnreadKey(stored.key, UNRECOGNISED_NAME, "not read"))
                    continue
                misfiled = not is_filed_by_arrival(stored.key, arrival)
                if start <= arrival < end:
                    found.append(ClickstreamObject(stored.key, arrival, stored.size, stored.etag))
                    if misfiled:
                        detail = misfiled_detail(stored.key, arrival, lateness)
                        unread.append(UnreadKey(stored.key, MISFILED, detail))
                elif misfiled and reported_here:
                    detail = misfiled_detail(stored.key, arrival, lateness)
                    unread.append(UnreadKey(stored.key, MISFILED, detail))
        found.sort(key=lambda o: (o.arrival_time, o.key))
        return ClickstreamListing(tuple(found), tuple(unrecognised), tuple(unread))

    def read(self, key: str) -> bytes:
        return self.store.get(key)

    def uri(self, key: str) -> str:
        return self.store.uri(key)
