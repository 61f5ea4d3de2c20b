"""Key layout of the landing zone (LANDING.md): pure functions over key strings.

Both the local directory and S3 use the same keys below the root, so every rule about
where a file belongs lives here once, shared by assets, sensors and tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

BILLING_ROOT = "billing/"
CLICKSTREAM_ROOT = "clickstream/"
SUCCESS_MARKER = "_SUCCESS"

_BILLING_KEY = re.compile(r"^billing/dt=(\d{4}-\d{2}-\d{2})/([^/]+)$")
_CLICKSTREAM_NAME = re.compile(
    r"^clickstream/(?:[^/]+/)*"
    r"churn-clickstream-\d+-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[^/]+\.gz$"
)
_CLICKSTREAM_FOLDER = re.compile(r"^clickstream/(\d{4})/(\d{2})/(\d{2})/(?:(\d{2})/)?")
_LAYOUT_FOLDER = re.compile(
    r"^(?:clickstream/(\d{4})/(?:(\d{2})/(?:(\d{2})/)?)?|billing/dt=(\d{4})-(\d{2})-(\d{2})/)$"
)

UNRECOGNISED_NAME = "unrecognised_name"
MISFILED = "misfiled"
UNKNOWN_BILLING_FILE = "unknown_billing_file"
REFUSED_LINK = "symlink"
OUTSIDE_LAYOUT = "outside_layout"


@dataclass(frozen=True)
class UnreadKey:
    """A key under the landing zone that a partition saw but did not read as data, and why.

    Reasons: ``unrecognised_name`` (not the contract's naming), ``misfiled`` (a clickstream
    object under a folder other than its name's arrival hour; ``detail`` says whether and by
    which partition it is read), ``unknown_billing_file`` (in a billing day but neither a
    ``part-NNNNN.csv.gz`` nor ``_SUCCESS``), ``symlink`` (the local store does not follow it),
    ``outside_layout`` (a file under ``clickstream/`` or ``billing/`` but above any day
    folder, or a folder that is not the layout's, such as ``clickstream/2026/13/`` or
    ``billing/dt=2026-02-30/``: reported by the partitions that list that level).
    """

    key: str
    reason: str
    detail: str = ""


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


def billing_day_file(key: str, day: date) -> str | None:
    """What a key listed under ``billing/dt=day/`` is: ``"part"``, ``"success"`` or None
    (an unknown file, including anything in a sub-folder)."""
    parsed = parse_billing_key(key)
    if parsed is None or parsed[0] != day:
        return None
    if parsed[1] == SUCCESS_MARKER:
        return "success"
    return "part" if is_billing_part(parsed[1]) else None


def is_layout_folder(folder: str) -> bool:
    """Is ``folder`` (ending in ``/``) one the layout has above or at a day: ``clickstream/
    YYYY/``, ``clickstream/YYYY/MM/``, ``clickstream/YYYY/MM/DD/`` or ``billing/dt=YYYY-MM-DD/``,
    with a real month and calendar date?"""
    match = _LAYOUT_FOLDER.match(folder)
    if match is None:
        return False
    year, month, day, b_year, b_month, b_day = match.groups()
    if b_year is not None:
        year, month, day = b_year, b_month, b_day
    try:
        date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return False
    return True


def stray_keys(files: Iterable[str], folders: Iterable[str]) -> list[UnreadKey]:
    """What a delimiter listing of a level above the day folders (``clickstream/``,
    ``clickstream/YYYY/``, ``clickstream/YYYY/MM/``, ``billing/``) shows outside the layout:
    every file there, and every folder that is not a layout folder (its keys are never
    listed by any partition, so the folder is reported instead)."""
    out = [
        UnreadKey(key, OUTSIDE_LAYOUT, "a file outside any day folder: not read") for key in files
    ]
    out += [
        UnreadKey(folder, OUTSIDE_LAYOUT, "a folder outside the layout: no key under it is read")
        for folder in folders
        if not is_layout_folder(folder)
    ]
    return out


def stray_levels(day: date) -> list[str]:
    """The clickstream levels above ``day``'s folder that its partition lists with a
    delimiter (three list calls): the root, its year and its month."""
    return [CLICKSTREAM_ROOT, f"{CLICKSTREAM_ROOT}{day:%Y}/", f"{CLICKSTREAM_ROOT}{day:%Y/%m}/"]


def clickstream_day_prefix(day: date) -> str:
    return f"{CLICKSTREAM_ROOT}{day:%Y/%m/%d}/"


def parse_clickstream_arrival(key: str) -> datetime | None:
    """Arrival time (UTC) of a clickstream object: the timestamp in its name, per LANDING §4.

    Returns None for keys that do not follow the naming contract; callers report those as
    unrecognised rather than guessing a partition for them.
    """
    match = _CLICKSTREAM_NAME.match(key)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None


def clickstream_folder_time(key: str) -> datetime | None:
    """The hour a key is filed under (``clickstream/YYYY/MM/DD/HH/``; 00h when the folder
    has no hour level), or None when it is not under a day folder."""
    match = _CLICKSTREAM_FOLDER.match(key)
    if match is None:
        return None
    year, month, day, hour = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour or 0), tzinfo=timezone.utc)
    except ValueError:
        return None


def is_filed_by_arrival(key: str, arrival: datetime) -> bool:
    """Is the object directly under the folder of its name's arrival hour (LANDING §2)?"""
    return key.rsplit("/", 1)[0] + "/" == f"{CLICKSTREAM_ROOT}{arrival:%Y/%m/%d/%H}/"


LISTED_DAYS_AROUND = 1
"""A partition lists the day folders of its window and one more on each side, so that an
object filed under a neighbouring day (a producer's clock or path bug) is still read by the
partition its name gives."""


def clickstream_listing_prefixes(start: datetime, end: datetime) -> list[str]:
    """Day prefixes a partition with arrival window [start, end) lists."""
    around = timedelta(days=LISTED_DAYS_AROUND)
    return clickstream_prefixes_for_window(start - around, end + around)


def partitions_reading(arrival: datetime, lateness: timedelta) -> list[date]:
    """The partitions whose arrival window holds ``arrival`` (one, or two in the overlap)."""
    own = arrival.date()
    earlier = own - timedelta(days=1)
    start, end = clickstream_window(earlier, lateness)
    return [earlier, own] if start <= arrival < end else [own]


def misfiled_detail(key: str, arrival: datetime, lateness: timedelta) -> str:
    """Where a misfiled object is read: by the partitions its name gives, if they list the
    folder it is under; otherwise nowhere (the folder's own partition reports it)."""
    folder = clickstream_folder_time(key)
    readers = [
        p
        for p in partitions_reading(arrival, lateness)
        if folder is not None
        and any(
            prefix == clickstream_day_prefix(folder.date())
            for prefix in clickstream_listing_prefixes(*clickstream_window(p, lateness))
        )
    ]
    named = f"named for arrival {arrival:%Y-%m-%d %H:%M:%S}"
    if readers:
        return f"{named}; read by partition(s) {', '.join(d.isoformat() for d in readers)}"
    return f"{named}; NOT read: too far from its name's folder, move it there"


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
