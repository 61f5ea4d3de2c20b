"""Key layout of the landing zone (LANDING.md): pure functions over key strings.

Both the local directory and S3 use the same keys below the root, so every rule about
where a file belongs lives here once, shared by assets, sensors and tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone

BILLING_ROOT = "billing/"
CLICKSTREAM_ROOT = "clickstream/"
SUCCESS_MARKER = "_SUCCESS"

_BILLING_KEY = re.compile(r"^billing/dt=(\d{4}-\d{2}-\d{2})/([^/]+)$")
_CLICKSTREAM_KEY = re.compile(
    r"^clickstream/(\d{4})/(\d{2})/(\d{2})/(\d{2})/"
    r"churn-clickstream-\d+-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[^/]+\.gz$"
)


def billing_day_prefix(day: date) -> str:
    return f"{BILLING_ROOT}dt={day.isoformat()}/"


def parse_billing_key(key: str) -> tuple[date, str] | None:
    """(day, file name) of a key under billing/dt=…/, or None for anything else."""
    match = _BILLING_KEY.match(key)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1)), match.group(2)
    except ValueError:
        return None


def is_billing_part(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".csv.gz")


def clickstream_day_prefix(day: date) -> str:
    return f"{CLICKSTREAM_ROOT}{day:%Y/%m/%d}/"


def parse_clickstream_arrival(key: str) -> datetime | None:
    """Arrival time (UTC) of a clickstream object: the timestamp in its name, per LANDING §4.

    Returns None for keys that do not follow the naming contract; callers report those as
    unrecognised rather than guessing a partition for them.
    """
    match = _CLICKSTREAM_KEY.match(key)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[4:])
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None


def clickstream_window(partition: date, lateness: timedelta) -> tuple[datetime, datetime]:
    """Arrival-time window [start, end) of the objects that partition D reads."""
    start = datetime.combine(partition, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1) + lateness


def clickstream_prefixes_for_window(start: datetime, end: datetime) -> list[str]:
    """Day prefixes that can hold objects arriving in [start, end): two list calls per day."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [
        clickstream_day_prefix(first + timedelta(days=i)) for i in range((last - first).days + 1)
    ]


def fingerprint(items: Iterable[str]) -> str:
    """Order-independent digest of a set of strings (16 hex digits: compact, collision-safe)."""
    digest = hashlib.sha256()
    for item in sorted(items):
        digest.update(item.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


EMPTY_WINDOW = "empty"
DELIVERY_METADATA = "delivery_fingerprint"
"""raw_billing metadata key: fingerprint([delivery version]), as the billing sensor computes it."""
WINDOW_METADATA = "window_fingerprint"
"""raw_clickstream metadata key: window_fingerprint of the objects it read."""


def window_fingerprint(objects: Iterable[tuple[str, str]]) -> str:
    """What identifies the content of a clickstream window: its objects' keys and ETags."""
    members = [f"{key}:{etag}" for key, etag in objects]
    return fingerprint(members) if members else EMPTY_WINDOW
