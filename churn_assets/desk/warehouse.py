"""The desk's read-only view of the warehouse, through the project's own ``ParquetWarehouse``.

Only reads: listings, pointer heads and table reads (``read_tables``); no method here writes.
Tables are cached in memory as Arrow, keyed by the ETag of the partition's version pointer,
so a re-materialized day is picked up on the next request and an unchanged one is read once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache

import pyarrow as pa

from churn_assets.core.billing import BILLING_COLUMNS
from churn_assets.core.call_list import ranked_call_list
from churn_assets.core.scoring import SCORE_COLUMNS
from churn_assets.resources.warehouse import POINTER, ParquetWarehouse

_DAY = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})/")
DESK_BILLING_COLUMNS = tuple(
    c for c in BILLING_COLUMNS if c not in ("cancelled_service", "new_customer", "snapshot_date")
)
ACTIVITY_COLUMNS = (
    "customer_id",
    "sessions_7d",
    "sessions_28d",
    "minutes_28d",
    "support_calls_7d",
    "support_contacts_28d",
    "subscribe_hovers_28d",
    "subscribe_clicks_28d",
    "days_since_last_session",
)


REPEATED_TEXT = frozenset(
    {"risk_tier", "model_version", "plan", "reason_1", "reason_2", "reason_3"}
)
"""Columns with few distinct values: kept dictionary-encoded in memory (a fraction of the size)."""


class DeskWarehouse:
    """Days and tables of the warehouse, cached; ``cached_tables`` bounds the memory used."""

    def __init__(self, warehouse: ParquetWarehouse, cached_tables: int = 48):
        self.warehouse = warehouse
        self._read = lru_cache(maxsize=cached_tables)(self._read_uncached)
        self._day_lists = lru_cache(maxsize=8)(self._day_list_uncached)

    @property
    def url(self) -> str:
        return self.warehouse.store.url

    def _prefix(self, asset: str, day: str) -> str:
        return self.warehouse.partition_prefix([asset], day)

    def days(self, asset: str) -> list[str]:
        """Materialized partitions of ``asset``, oldest first (one paginated listing)."""
        found = set()
        for obj in self.warehouse.store.list(f"{asset}/"):
            rest = obj.key[len(asset) + 1 :]
            match = _DAY.match(rest)
            if match and rest.endswith("/" + POINTER) and rest.count("/") == 1:
                found.add(match.group(1))
        return sorted(found)

    def etag(self, asset: str, day: str) -> str | None:
        head = self.warehouse.store.head(self._prefix(asset, day) + POINTER)
        return None if head is None else head.etag

    def written_at(self, asset: str, day: str) -> datetime | None:
        head = self.warehouse.store.head(self._prefix(asset, day) + POINTER)
        return None if head is None else head.last_modified

    def _read_uncached(
        self, asset: str, day: str, etag: str, columns: tuple[str, ...] | None, table: str
    ) -> pa.Table | None:
        return self.warehouse.read_arrow(
            self._prefix(asset, day),
            table=table,
            columns=columns,
            dictionary=[c for c in columns or () if c in REPEATED_TEXT],
        )

    def table(
        self,
        asset: str,
        day: str,
        columns: Sequence[str] | None = None,
        table: str = "data",
    ) -> pa.Table | None:
        """The current version of ``asset[day]`` (one named table of it), or None."""
        etag = self.etag(asset, day)
        if etag is None:
            return None
        return self._read(asset, day, etag, tuple(columns) if columns else None, table)

    def _day_list_uncached(self, day: str, etags: tuple[str | None, ...]) -> pa.Table | None:
        scores = self.table("scores", day, SCORE_COLUMNS)
        if scores is None:
            return None
        billing = self.table("raw_billing", day, DESK_BILLING_COLUMNS)
        if billing is None:  # scored but its billing table is gone: names unknown, not lost
            billing = pa.table({c: pa.array([], pa.string()) for c in DESK_BILLING_COLUMNS[:2]})
            billing = billing.append_column("plan", pa.array([], pa.string()))
            billing = billing.append_column("seats", pa.array([], pa.int64()))
            billing = billing.append_column("mrr", pa.array([], pa.float64()))
        week_before = (date.fromisoformat(day) - timedelta(days=7)).isoformat()
        last_week = self.table("scores", week_before, ("customer_id", "churn_probability"))
        return ranked_call_list(scores, billing, last_week)

    def day_list(self, day: str) -> pa.Table | None:
        """The day's call list (scores + billing + last week), as the call_list CSV has it."""
        week_before = (date.fromisoformat(day) - timedelta(days=7)).isoformat()
        etags = tuple(
            self.etag(asset, d)
            for asset, d in (("scores", day), ("raw_billing", day), ("scores", week_before))
        )
        if etags[0] is None:
            return None
        return self._day_lists(day, etags)

    def warm(self, history_days: int) -> None:
        """Read the newest day's list and its history into the cache (before the first
        visitor, so that page is as fast as the ones after it)."""
        days = self.days("scores")
        if not days:
            return
        self.day_list(days[-1])
        for day in days[-history_days:]:
            self.table("scores", day, SCORE_COLUMNS)
