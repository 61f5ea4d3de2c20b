"""Sessions and per-customer activity from normalised clickstream events (LANDING.md §3).

Pure, vectorised pandas/numpy: rows are sorted once and sessions are contiguous runs, so
every aggregate is a segmented reduction, never a loop per customer. Other engines (Spark)
must reproduce these tables exactly, column order included (``SESSION_COLUMNS``,
``ACTIVITY_COLUMNS``).

Rules:

* Only attributed events (``customer_id`` not null) are sessionised. Events of one customer
  are ordered by ``event_time`` then ``event_id`` (nulls last). A new session starts at the
  customer's first event, when the gap to the previous event is *more* than ``gap`` (exactly
  ``gap`` stays in the session), and when the UTC date changes (a session never spans
  midnight, so never two partitions).
* ``session_id`` is ``f"{customer_id}-{start epoch ms}"``; ``duration_s`` is end - start.
* ``n_subscribe_hovers`` / ``n_subscribe_clicks`` count hover / click events whose
  ``is_subscribe`` is true.
* Activity window: sessions whose start date (UTC) is in ``(as_of - window_days, as_of]``.
  The "7d" figures use the last ``min(7, window_days)`` days of that window; the "earlier"
  part of ``visit_trend`` is the rest of the window.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

SESSION_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "session_id",
    "session_start",
    "session_end",
    "duration_s",
    "n_events",
    "n_page_views",
    "n_hovers",
    "n_clicks",
    "n_support_contacts",
    "n_subscribe_hovers",
    "n_subscribe_clicks",
)
"""Columns of the sessions table, in order; rows sorted by customer_id, session_start."""

_SESSION_COUNTS: tuple[str, ...] = SESSION_COLUMNS[5:]

ACTIVITY_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "sessions_7d",
    "sessions_28d",
    "active_days_28d",
    "page_views_28d",
    "hovers_28d",
    "clicks_28d",
    "subscribe_hovers_28d",
    "subscribe_clicks_28d",
    "support_contacts_28d",
    "minutes_28d",
    "days_since_last_session",
    "visit_trend",
)
"""Columns of the activity table, in order; rows sorted by customer_id. The ``_28d`` suffix
stays whatever ``window_days`` is."""

_ACTIVITY_SUMS: dict[str, str] = {
    "page_views_28d": "n_page_views",
    "hovers_28d": "n_hovers",
    "clicks_28d": "n_clicks",
    "subscribe_hovers_28d": "n_subscribe_hovers",
    "subscribe_clicks_28d": "n_subscribe_clicks",
    "support_contacts_28d": "n_support_contacts",
}
_FLOAT_ACTIVITY = ("minutes_28d", "visit_trend")
_DAY_NS = 86_400_000_000_000
_RECENT_DAYS = 7


def empty_sessions() -> pd.DataFrame:
    """A sessions table with no rows, columns ``SESSION_COLUMNS`` and the contract dtypes."""
    data: dict[str, pd.Series] = {
        "customer_id": pd.Series([], dtype=object),
        "session_id": pd.Series([], dtype=object),
        "session_start": pd.Series([], dtype="datetime64[ns, UTC]"),
        "session_end": pd.Series([], dtype="datetime64[ns, UTC]"),
        "duration_s": pd.Series([], dtype="float64"),
    }
    data.update({c: pd.Series([], dtype="int64") for c in _SESSION_COUNTS})
    return pd.DataFrame(data)[list(SESSION_COLUMNS)]


def empty_activity() -> pd.DataFrame:
    """An activity table with no rows, columns ``ACTIVITY_COLUMNS`` and the contract dtypes."""
    data = {
        c: pd.Series(
            [],
            dtype=object if c == "customer_id" else "float64" if c in _FLOAT_ACTIVITY else "int64",
        )
        for c in ACTIVITY_COLUMNS
    }
    return pd.DataFrame(data)[list(ACTIVITY_COLUMNS)]


def _utc_ns(values: pd.Series) -> np.ndarray:
    """int64 ns since the epoch of a datetime Series (naive values are taken as UTC)."""
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")
    return np.asarray(index.asi8, dtype="int64")


def _utc(ns: np.ndarray) -> pd.Series:
    return pd.Series(
        pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("M8[ns]")).tz_localize("UTC")
    )


def _in_session_order(customers: np.ndarray, ns: np.ndarray, event_ids: np.ndarray) -> bool:
    """Are the rows already ordered by (customer_id, event_time, event_id), all ids set?

    Vectorised comparisons of neighbours (code point order, as the sort would give);
    a null id or anything that is not a string means "no" (the sort handles those).
    """
    if len(ns) < 2:
        return True
    try:
        same = customers[1:] == customers[:-1]
        if not (same | (customers[1:] > customers[:-1])).all():
            return False
        tie = same & (ns[1:] == ns[:-1])
        if not (~same | (ns[1:] >= ns[:-1])).all():
            return False
        return bool((~tie | (event_ids[1:] >= event_ids[:-1])).all())
    except TypeError:  # a None or a non-string id
        return False


def sessionise(events: pd.DataFrame, gap: timedelta = timedelta(minutes=30)) -> pd.DataFrame:
    """One row per session of the attributed events (see the module docstring for the rules).

    ``events`` is a normalised, deduplicated events table (``EVENT_COLUMNS`` of
    ``churn_assets.core.clickstream``; only customer_id, event_id, event_type, event_time and
    is_subscribe are used). It may hold several days: sessions are still cut at midnight.
    """
    if gap < timedelta(0):
        raise ValueError("gap must not be negative")
    attributed = events.loc[
        events["customer_id"].notna(),
        ["customer_id", "event_id", "event_type", "event_time", "is_subscribe"],
    ]
    if attributed.empty:
        return empty_sessions()
    raw_customers = attributed["customer_id"].to_numpy(dtype=object)
    raw_events = attributed["event_id"].to_numpy(dtype=object)
    raw_ns = _utc_ns(attributed["event_time"])
    if _in_session_order(raw_customers, raw_ns, raw_events):
        # normalise_clickstream's events already are: no sort (the big cost on a large day).
        order = np.arange(len(raw_ns))
        customers = raw_customers
        changed = customers[1:] != customers[:-1]
    else:
        # Sort on integer codes (factorize with sort=True keeps the code point order of the
        # ids): much cheaper than sorting the object columns themselves.
        customer_codes = pd.factorize(raw_customers, sort=True)[0]
        event_codes = pd.factorize(raw_events, sort=True)[0]
        event_codes = np.where(event_codes < 0, np.iinfo("int64").max, event_codes)  # nulls last
        order = np.lexsort((event_codes, raw_ns, customer_codes))
        codes = customer_codes[order]
        customers = raw_customers[order]
        changed = codes[1:] != codes[:-1]
    ns = raw_ns[order]
    day = np.floor_divide(ns, _DAY_NS)
    gap_ns = gap // timedelta(microseconds=1) * 1000

    new = np.ones(len(order), dtype=bool)
    new[1:] = changed | (day[1:] != day[:-1]) | (np.diff(ns) > gap_ns)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(order)) - 1

    event_type = attributed["event_type"].to_numpy(dtype=object)[order]
    subscribe = attributed["is_subscribe"].to_numpy(dtype=bool)[order]
    flags = {
        "n_events": np.ones(len(order), dtype="int64"),
        "n_page_views": event_type == "page_view",
        "n_hovers": event_type == "hover",
        "n_clicks": event_type == "click",
        "n_support_contacts": event_type == "support_contact",
        "n_subscribe_hovers": (event_type == "hover") & subscribe,
        "n_subscribe_clicks": (event_type == "click") & subscribe,
    }
    start_ns, end_ns = ns[starts], ns[ends]
    session_customers = pd.Series(customers[starts], dtype=object)
    start_ms = pd.Series(np.floor_divide(start_ns, 1_000_000)).astype(str)
    frame = pd.DataFrame(
        {
            "customer_id": session_customers,
            "session_id": (session_customers + "-" + start_ms).astype(object),
            "session_start": _utc(start_ns),
            "session_end": _utc(end_ns),
            "duration_s": (end_ns - start_ns) / 1e9,
            **{
                name: np.add.reduceat(np.asarray(flag, dtype="int64"), starts)
                for name, flag in flags.items()
            },
        }
    )
    return frame[list(SESSION_COLUMNS)]


def customer_activity(sessions: pd.DataFrame, as_of: date, window_days: int = 28) -> pd.DataFrame:
    """Per-customer activity over the sessions that started in ``(as_of - window_days, as_of]``.

    ``sessions`` is any concatenation of sessions tables (extra days are ignored). One row
    per customer with a session in the window, sorted by customer_id.
    ``visit_trend`` = recent sessions/day ÷ earlier sessions/day − 1; 0.0 when both are
    zero; 1.0 when only the earlier part is zero (no cap otherwise).
    """
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    if sessions.empty:
        return empty_activity()
    as_of_day = (pd.Timestamp(as_of).date() - date(1970, 1, 1)).days
    start_day = np.floor_divide(_utc_ns(sessions["session_start"]), _DAY_NS)
    in_window = (
        (start_day > as_of_day - window_days)
        & (start_day <= as_of_day)
        & sessions["customer_id"].notna().to_numpy()
    )
    if not in_window.any():
        return empty_activity()
    recent_days = min(_RECENT_DAYS, window_days)
    earlier_days = window_days - recent_days

    # Integer codes per customer (sorted like the ids) and segmented sums with bincount.
    codes, customers = pd.factorize(
        sessions["customer_id"].to_numpy(dtype=object)[in_window], sort=True
    )
    n = len(customers)
    day = start_day[in_window]
    first_day = as_of_day - window_days + 1

    def total(column: str) -> np.ndarray:
        weights = sessions[column].to_numpy(dtype="float64")[in_window]
        return np.bincount(codes, weights=weights, minlength=n)

    customer_days = np.unique(codes.astype("int64") * window_days + (day - first_day))
    last_day = np.full(n, np.iinfo("int64").min, dtype="int64")
    np.maximum.at(last_day, codes, day)
    out = pd.DataFrame(
        {
            "customer_id": customers.astype(object),
            "sessions_7d": np.bincount(codes[day > as_of_day - recent_days], minlength=n),
            "sessions_28d": np.bincount(codes, minlength=n),
            "active_days_28d": np.bincount(customer_days // window_days, minlength=n),
            **{name: np.rint(total(col)) for name, col in _ACTIVITY_SUMS.items()},
            "minutes_28d": total("duration_s") / 60.0,
            "days_since_last_session": as_of_day - last_day,
        }
    )
    recent_rate = out["sessions_7d"].to_numpy() / recent_days
    earlier = (out["sessions_28d"] - out["sessions_7d"]).to_numpy()
    earlier_rate = earlier / earlier_days if earlier_days else np.zeros(len(out))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = recent_rate / earlier_rate - 1.0
    out["visit_trend"] = np.where(
        earlier_rate > 0, ratio, np.where(recent_rate > 0, 1.0, 0.0)
    ).astype("float64")
    for column in ACTIVITY_COLUMNS[1:]:
        out[column] = out[column].astype("float64" if column in _FLOAT_ACTIVITY else "int64")
    out["customer_id"] = out["customer_id"].astype(object)
    return out[list(ACTIVITY_COLUMNS)]
