"""Clickstream normalisation: the embedded (in-process, DuckDB) engine of LANDING.md §2–4.

Pure functions do the work:

* :func:`read_object` reads one delivered object under the caps of ``ObjectLimits``
  (``core.bounded_read``: streamed decompression, bounded bytes and lines) into its lines, or
  into the one row that stands for an object that was not read;
* :func:`normalise_objects` streams a partition's objects through that, in batches, and gives
  every line read for partition ``P`` exactly one category (valid, duplicate, anonymous,
  other_date or a quarantine reason); it returns the deduplicated events of event date ``P``,
  the lines quarantined by ``P`` with their exact bytes, and the row accounting, which always
  adds up. :func:`read_lines` + :func:`normalise_clickstream` do the same on an in-memory
  *lines* table (tests, small inputs).

The per-line work is one vectorised DuckDB query per batch of Arrow lines; Python only loops
per object, and objects are split into lines by numpy, never one Python object per line.
Other engines (Spark) must reproduce these outputs exactly, so every rule that the contract
leaves open is decided (and documented) here:

* **Lines**: an object is split on ``b"\\n"``; the empty piece after a final newline is not a
  line; one trailing ``b"\\r"`` per line is stripped (CRLF delivery). Empty lines in the middle
  are lines (``invalid_json``). An object that is not valid gzip (including a zero-byte object,
  a truncated stream or a bad CRC) becomes one row with ``line_no`` 0 holding the first
  ``max_stored_bytes`` of the raw object (``unreadable_object``). An object over a cap
  (decompressed bytes or lines) becomes one row with ``line_no`` 0, reason
  ``object_over_cap``, whose ``raw_line`` is a JSON note (cap, limit, compressed size, how far
  reading got), never the object's bytes. A valid but empty object has no lines, so it
  appears neither in ``lines`` nor in ``objects_read``.
* **JSON**: a line is JSON when it is UTF-8 and strict RFC 8259 JSON (any value, surrounding
  JSON whitespace allowed). Rejected: invalid UTF-8, a byte order mark, trailing commas,
  ``NaN``/``Infinity`` literals, comments, unescaped control characters, lone surrogate
  escapes, anything after the value. With duplicate keys in an object the *first* one wins.
* **Shape**: web has the keys ``event_id``, ``event`` and ``ts``; app has ``event_id``,
  ``event_type`` and ``timestamp_ms`` (present with null counts as present). Both sets,
  neither, an array or a scalar: ``unknown_shape``.
* **Time**: ``ts`` must be a JSON string ``YYYY-MM-DD[T| ]HH:MM:SS[.f{1,9}](Z|z|±HH:MM|±HHMM)``
  (seconds required; hour 00–23, minute and second 00–59, offset hour 00–23 and minute
  00–59, a real calendar date); the fraction is truncated to milliseconds. ``timestamp_ms``
  must be a JSON number with an integral value (``1e3`` and ``5.0`` are accepted; strings,
  null, booleans and fractions are not). Either way the instant must be representable as
  ``datetime64[ns]`` (``|epoch ms| <= 9223372036854``); otherwise ``bad_timestamp``.
* **Event type**: exact, case-sensitive match of the contract's spellings (web ``page_view``,
  ``hover``, ``click``, ``support_chat``; app ``ui.page_view``, ``ui.hover``, ``ui.click``,
  ``support.contact``); anything else, including null, is ``unknown_event_type``.
* **Ids**: ``event_id`` and the customer id are taken as text: a JSON string is unescaped, any
  other non-null value is its (minified) JSON text. Control characters (Unicode Cc:
  U+0000-U+001F, U+007F-U+009F, e.g. an escaped ``\\u0000``) are then removed from both, so
  ``"C0001378\\u0000"`` is customer ``C0001378``, not a new one. The customer id (web
  ``customerId``, app ``user.customer_id``) is stripped of the characters Python's
  ``str.isspace`` accepts and upper-cased (DuckDB's per-code-point ``upper``); null, absent
  or empty means anonymous.
* **Element / page**: web ``props.element`` / ``props.page``, where ``props`` is a JSON object
  or a string holding a strict-JSON object (anything else: no element, no page); app
  ``context.element.id`` / ``context.page.path``. Kept verbatim as text (not stripped).
  ``is_subscribe``: the element, after leading whitespace, starts with ``subscribe`` in any
  ASCII case.
* **Dedup**: among attributed lines of category "event date ``P`` in ``P``'s window", by
  ``event_id``; the first delivery is the smallest ``(arrival_time, object_key, line_no)``
  (object keys compared by code point). A record whose ``event_id`` is null is never a
  duplicate (there is nothing to compare it by), and anonymous records are never deduplicated.
"""

from __future__ import annotations

import functools
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churn_assets.core.bounded_read import (
    DEFAULT_LIMITS,
    OVER_CAP,
    NotGzip,
    ObjectLimits,
    OverCap,
    SplitLines,
    listed_over_cap,
    not_read,
    split_lines,
)

LINE_COLUMNS: tuple[str, ...] = ("object_key", "arrival_time", "line_no", "line")
"""Required columns of the lines table, in order (``read_lines`` adds ``problem``: why a
line_no 0 row stands for an object that was not read)."""

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "customer_id",
    "event_type",
    "event_time",
    "page",
    "element",
    "is_subscribe",
    "source",
    "object_key",
    "line_no",
    "arrival_time",
)
"""Columns of ``ClickstreamResult.events``, in order. Rows are sorted by customer_id (nulls,
i.e. anonymous, last), event_time, event_id (nulls last), object_key, line_no."""

QUARANTINE_COLUMNS: tuple[str, ...] = (
    "object_key",
    "line_no",
    "arrival_time",
    "reason",
    "event_id",
    "event_time",
    "raw_line",
)
"""Columns of ``ClickstreamResult.quarantine``, in order. Rows are sorted by arrival_time,
object_key, line_no. ``event_id`` is set whenever the line is a JSON object with an
``event_id`` (null otherwise); ``event_time`` is set for unknown_event_type, late and future."""

QUARANTINE_REASONS: tuple[str, ...] = (
    "invalid_json",
    "unknown_shape",
    "bad_timestamp",
    "unknown_event_type",
    "late",
    "future",
    "unreadable_object",
    "object_over_cap",
)

ACCOUNTING_KEYS: tuple[str, ...] = (
    "lines_read",
    "valid",
    "duplicate",
    "anonymous",
    "other_date",
    *(f"quarantined_{reason}" for reason in QUARANTINE_REASONS),
    "objects_read",
    "objects_unreadable",
)
"""Keys of ``ClickstreamResult.accounting``; always all present. Invariant: ``lines_read ==
valid + duplicate + anonymous + other_date + sum(quarantined_*)``."""

LINE_CATEGORIES: tuple[str, ...] = (
    "valid",
    "duplicate",
    "anonymous",
    "other_date",
    *QUARANTINE_REASONS,
)
"""Every category a line can get; exactly one per line."""

WEB_EVENT_TYPES: dict[str, str] = {
    "page_view": "page_view",
    "hover": "hover",
    "click": "click",
    "support_chat": "support_contact",
}
APP_EVENT_TYPES: dict[str, str] = {
    "ui.page_view": "page_view",
    "ui.hover": "hover",
    "ui.click": "click",
    "support.contact": "support_contact",
}

MAX_ABS_EPOCH_MS = 9_223_372_036_854
"""Largest |epoch ms| whose instant fits datetime64[ns]; beyond it a timestamp is bad."""

# Characters for which Python's str.isspace() is true: the customer-id strip set.
_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in _WHITESPACE) + "]"
_STRIP_RE = f"^{_WS_CLASS}+|{_WS_CLASS}+$"
_CONTROL_RE = "[\\x{0}-\\x{1f}\\x{7f}-\\x{9f}]"
_SUBSCRIBE_RE = f"^{_WS_CLASS}*[Ss][Uu][Bb][Ss][Cc][Rr][Ii][Bb][Ee]"
# What yyjson (as DuckDB configures it) accepts but RFC 8259 does not: trailing commas and
# inf/nan literals in any case. Run only on text yyjson accepted, so strings are well formed:
# the prefix skips whole string literals and other characters, then looks for one of those
# outside a string. Strict JSON has no letters outside strings but those of true, false, null
# and the exponent e/E, so any other letter (or "nan") there is an inf/nan literal.
_LENIENT_RE = r'^(?:[^"]|"(?:[^"\\]|\\.)*")*?(?:,[ \t\n\r]*[\]}]|[A-DF-Zi]|nan)'
_TS_RE = (
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)
_JSON_INT_RE = r"-?(?:0|[1-9][0-9]*)"
_JSON_NUMBER_RE = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_PATHS = (
    "$.event_id",  # 1
    "$.event",  # 2
    "$.ts",  # 3
    "$.event_type",  # 4
    "$.timestamp_ms",  # 5
    "$.customerId",  # 6
    "$.props",  # 7
    "$.user.customer_id",  # 8
    "$.context.page.path",  # 9
    "$.context.element.id",  # 10
)
_DAY_MS = 86_400_000
_DAY_NS = 86_400_000_000_000
_BATCH_ROWS = 122_880


@dataclass
class ClickstreamResult:
    """What one partition's normalisation produces (see the module docstring for the rules)."""

    events: pd.DataFrame
    quarantine: pd.DataFrame
    accounting: dict[str, int]


def _utc_series(ns: np.ndarray) -> pd.Series:
    return pd.Series(
        pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("M8[ns]")).tz_localize("UTC"),
        dtype="datetime64[ns, UTC]",
    )


def empty_lines() -> pd.DataFrame:
    """A lines table with no rows and the contract dtypes."""
    return pd.DataFrame(
        {
            "object_key": pd.Series([], dtype=object),
            "arrival_time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "line_no": pd.Series([], dtype="int64"),
            "line": pd.Series([], dtype=object),
            "problem": pd.Series([], dtype=object),
        }
    )


def empty_events() -> pd.DataFrame:
    """An events table with no rows, columns ``EVENT_COLUMNS`` and the contract dtypes."""
    obj = {"dtype": object}
    return pd.DataFrame(
        {
            "event_id": pd.Series([], **obj),
            "customer_id": pd.Series([], **obj),
            "event_type": pd.Series([], **obj),
            "event_time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "page": pd.Series([], **obj),
            "element": pd.Series([], **obj),
            "is_subscribe": pd.Series([], dtype=bool),
            "source": pd.Series([], **obj),
            "object_key": pd.Series([], **obj),
            "line_no": pd.Series([], dtype="int64"),
            "arrival_time": pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )[list(EVENT_COLUMNS)]


def empty_quarantine() -> pd.DataFrame:
    """A quarantine table with no rows, columns ``QUARANTINE_COLUMNS`` and contract dtypes."""
    return pd.DataFrame(
        {
            "object_key": pd.Series([], dtype=object),
            "line_no": pd.Series([], dtype="int64"),
            "arrival_time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "reason": pd.Series([], dtype=object),
            "event_id": pd.Series([], dtype=object),
            "event_time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "raw_line": pd.Series([], dtype=object),
        }
    )[list(QUARANTINE_COLUMNS)]


class ObjectRef(Protocol):
    """What the normaliser needs to know of a listed object (``ClickstreamObject`` has it)."""

    @property
    def key(self) -> str: ...
    @property
    def arrival_time(self) -> datetime: ...
    @property
    def size(self) -> int: ...


@dataclass(frozen=True)
class ObjectLines:
    """One object as read: its lines, or (``problem`` set) the one row that stands for it."""

    key: str
    arrival_ns: int
    lines: SplitLines | None
    problem: str | None = None
    raw: bytes = b""

    @property
    def rows(self) -> int:
        return 1 if self.lines is None else len(self.lines)


def _arrival_value(key: str, arrival: datetime) -> int:
    stamp = pd.Timestamp(arrival)
    if stamp.tzinfo is None:
        raise ValueError(f"arrival_time of {key!r} must be timezone-aware (UTC)")
    return int(stamp.tz_convert("UTC").value)


def read_object(
    key: str,
    arrival: datetime,
    fetch: Callable[[], bytes],
    limits: ObjectLimits = DEFAULT_LIMITS,
    size: int | None = None,
) -> ObjectLines:
    """Read one object under ``limits``: its lines, or one ``unreadable_object`` row (the
    first ``max_stored_bytes`` of it) or one ``object_over_cap`` row (a note of the cap,
    never its bytes). An object listed larger than ``max_bytes`` is not even fetched."""
    arrival_ns = _arrival_value(key, arrival)
    note = listed_over_cap(size, limits)
    if note is not None:
        return ObjectLines(key, arrival_ns, None, OVER_CAP, note)
    raw = bytes(fetch())
    try:
        return ObjectLines(key, arrival_ns, split_lines(raw, limits))
    except (NotGzip, OverCap) as error:
        return ObjectLines(key, arrival_ns, None, *not_read(raw, error, limits))


def _lines_table(objects: Sequence[ObjectLines], key_codes: Mapping[str, int]) -> pa.Table:
    """The lines of several read objects as one Arrow table (``rid`` added by the caller)."""
    counts = np.asarray([o.rows for o in objects], dtype="int64")
    data = np.concatenate(
        [
            o.lines.data if o.lines is not None else np.frombuffer(o.raw, dtype=np.uint8)
            for o in objects
        ]
    )
    lengths = np.concatenate(
        [
            o.lines.lengths if o.lines is not None else np.asarray([len(o.raw)], dtype="int64")
            for o in objects
        ]
    )
    offsets = np.zeros(len(lengths) + 1, dtype="int64")
    np.cumsum(lengths, out=offsets[1:])
    line_no = np.concatenate(
        [
            np.arange(1, o.rows + 1, dtype="int64") if o.lines is not None else np.zeros(1, "int64")
            for o in objects
        ]
    )
    arrivals = np.repeat(np.asarray([o.arrival_ns for o in objects], dtype="int64"), counts)
    problems = np.repeat(np.asarray([o.problem for o in objects], dtype=object), counts)
    return pa.table(
        {
            "kc": pa.array(np.repeat([key_codes[o.key] for o in objects], counts).astype("int64")),
            "arr_ns": pa.array(arrivals),
            "a_day": pa.array(np.floor_divide(arrivals, _DAY_NS)),
            "line_no": pa.array(line_no),
            "line": pa.Array.from_buffers(
                pa.large_binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
            ),
            "problem": pa.array(problems, type=pa.string()),
        }
    )


def read_lines(
    objects: Sequence[tuple[str, datetime, bytes]], limits: ObjectLimits = DEFAULT_LIMITS
) -> pd.DataFrame:
    """Build the lines table from ``(object_key, arrival_time, gzip bytes)`` triples.

    Columns ``LINE_COLUMNS``: object_key str, arrival_time datetime64[ns, UTC], line_no int64
    (1-based), line bytes, plus ``problem``. An object that is not valid gzip, or over a cap
    of ``limits``, becomes one row with line_no 0 and ``problem`` set (``unreadable_object``
    with its first bytes, ``object_over_cap`` with a note of the cap), so the loss is visible.
    ``arrival_time`` must be timezone-aware. For tests and small inputs: the engines stream
    objects through :func:`normalise_objects` instead.
    """
    read = [read_object(key, arrival, lambda raw=raw: raw, limits) for key, arrival, raw in objects]
    read = [o for o in read if o.rows]
    if not read:
        return empty_lines()
    table = _lines_table(read, {o.key: 0 for o in read})
    counts = [o.rows for o in read]
    return pd.DataFrame(
        {
            "object_key": np.repeat(np.asarray([o.key for o in read], dtype=object), counts),
            "arrival_time": _utc_series(table["arr_ns"].to_numpy()),
            "line_no": table["line_no"].to_numpy(),
            "line": np.asarray(table["line"].to_pylist(), dtype=object),
            "problem": np.asarray(table["problem"].to_pylist(), dtype=object),
        }
    )


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _case_map(expr: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {expr} {whens} END"


def _strict_json(expr: str) -> str:
    """SQL: ``expr`` (VARCHAR) is strict RFC 8259 JSON. Safe on any text (no errors)."""
    return (
        f"({expr} IS NOT NULL AND json_valid({expr})"
        f" AND NOT regexp_matches({expr}, '{_LENIENT_RE}'))"
    )


def _no_controls(expr: str) -> str:
    """SQL: ``expr`` without control characters (Unicode Cc: U+0000-U+001F, U+007F-U+009F)."""
    return f"regexp_replace({expr}, '{_CONTROL_RE}', '', 'g')"


def _floor_div(expr: str, d: int) -> str:
    """SQL floor division of a BIGINT by a positive constant (DuckDB's // truncates)."""
    return f"(({expr}) - ((({expr}) % {d}) + {d}) % {d}) // {d}"


def _jtext(expr: str) -> str:
    """SQL: the text of a minified JSON value: a string unescaped, null -> NULL, else the JSON.

    Strings without a backslash are unquoted by slicing; only escaped ones are re-parsed.
    """
    return (
        f"CASE WHEN {expr} IS NULL OR {expr} = 'null' THEN NULL"
        f" WHEN left({expr}, 1) <> '\"' THEN {expr}"
        f" WHEN contains({expr}, '\\') THEN json_extract_string({expr}, '$')"
        f" ELSE substr({expr}, 2, length({expr}) - 2) END"
    )


def _classify_sql(partition_day: int, lateness_ns: int) -> str:
    """One query: every line -> its fields and its category before deduplication."""

    def in_window(day: str) -> str:
        start = f"CAST({day} AS HUGEINT) * {_DAY_NS}"
        return (
            f"({start} <= arr_ns AND arr_ns < {start} + {_DAY_NS} + CAST({lateness_ns} AS HUGEINT))"
        )

    def digits(start: str, length: str) -> str:
        return f"try_cast(substr(ts, {start}, {length}) AS BIGINT)"

    return f"""
    WITH src AS (
        SELECT rid, kc, arr_ns, a_day, line_no,
               CASE WHEN line_no = 0 THEN coalesce(problem, 'unreadable_object') END
                 AS unreadable,
               CASE WHEN line_no <> 0 THEN try(decode(line)) END AS txt
        FROM lines_in
    ),
    checked AS (
        SELECT rid, kc, arr_ns, a_day, line_no, unreadable, txt, {_strict_json("txt")} AS is_json
        FROM src
    ),
    js AS (
        -- v[i]: the value at _PATHS[i] as minified JSON text; NULL when the key is absent.
        SELECT rid, kc, arr_ns, a_day, line_no, unreadable, is_json,
               CASE WHEN is_json THEN json_extract(txt, {_sql_list(_PATHS)})::VARCHAR[] END AS v
        FROM checked
    ),
    shaped AS (
        SELECT *,
               CASE
                 WHEN NOT is_json THEN NULL
                 WHEN (v[1] IS NOT NULL AND v[2] IS NOT NULL AND v[3] IS NOT NULL)
                      AND NOT (v[4] IS NOT NULL AND v[5] IS NOT NULL) THEN 'web'
                 WHEN (v[1] IS NOT NULL AND v[4] IS NOT NULL AND v[5] IS NOT NULL)
                      AND NOT (v[2] IS NOT NULL AND v[3] IS NOT NULL) THEN 'app'
               END AS source
        FROM js
    ),
    picked AS (
        SELECT rid, kc, arr_ns, a_day, line_no, unreadable, is_json, source,
               v[1] AS j_id,
               CASE source WHEN 'web' THEN v[2] WHEN 'app' THEN v[4] END AS j_type,
               CASE WHEN source = 'web' AND left(v[3], 1) = '"' THEN v[3] END AS j_ts,
               CASE WHEN source = 'app' THEN v[5] END AS ms_text,
               CASE source WHEN 'web' THEN v[6] WHEN 'app' THEN v[8] END AS j_cid,
               CASE WHEN source = 'web' THEN v[7] END AS j_props,
               CASE WHEN source = 'app' THEN v[9] END AS j_page,
               CASE WHEN source = 'app' THEN v[10] END AS j_element
        FROM shaped
    ),
    fields AS (
        SELECT rid, kc, arr_ns, a_day, line_no, unreadable, is_json, source, ms_text,
               {_no_controls(_jtext("j_id"))} AS event_id,
               CASE source
                 WHEN 'web' THEN {_case_map(_jtext("j_type"), WEB_EVENT_TYPES)}
                 WHEN 'app' THEN {_case_map(_jtext("j_type"), APP_EVENT_TYPES)}
               END AS event_type,
               {_jtext("j_ts")} AS ts_text,
               {_no_controls(_jtext("j_cid"))} AS cid_text,
               left(j_props, 1) AS props_kind,
               CASE left(j_props, 1) WHEN '{{' THEN j_props WHEN '"' THEN {_jtext("j_props")}
               END AS props_text,
               {_jtext("j_page")} AS app_page,
               {_jtext("j_element")} AS app_element
        FROM picked
    ),
    ts_checked AS (
        -- ts: the timestamp text when it has the contract's form (all ASCII then), else NULL;
        -- off_len: length of its offset (Z: 1, +HH:MM: 6, +HHMM: 5).
        SELECT *,
               CASE WHEN regexp_full_match(ts_text, '{_TS_RE}') THEN ts_text END AS ts
        FROM fields
    ),
    ts_sized AS (
        SELECT *,
               length(ts) AS ts_len,
               CASE WHEN right(ts, 1) IN ('Z', 'z') THEN 1
                    WHEN substr(ts, length(ts) - 2, 1) = ':' THEN 6 ELSE 5 END AS off_len
        FROM ts_checked
    ),
    parts AS (
        SELECT *,
               {digits("1", "4")} AS t_y, {digits("6", "2")} AS t_mo, {digits("9", "2")} AS t_d,
               {digits("12", "2")} AS t_h, {digits("15", "2")} AS t_mi,
               {digits("18", "2")} AS t_s,
               CASE WHEN substr(ts, 20, 1) = '.'
                    THEN try_cast(rpad(left(substr(ts, 21, ts_len - off_len - 20), 3), 3, '0')
                                  AS BIGINT)
                    ELSE 0 END AS t_ms,
               CASE WHEN off_len = 1 THEN 0 ELSE {digits("ts_len - off_len + 2", "2")} END
                 AS t_oh,
               CASE WHEN off_len = 1 THEN 0 ELSE try_cast(right(ts, 2) AS BIGINT) END AS t_om,
               CASE WHEN substr(ts, ts_len - off_len + 1, 1) = '-' THEN -1 ELSE 1 END AS t_sign,
               CASE WHEN regexp_full_match(ms_text, '{_JSON_INT_RE}')
                    THEN try_cast(ms_text AS BIGINT) END AS ms_int,
               CASE WHEN regexp_full_match(ms_text, '{_JSON_NUMBER_RE}')
                    THEN try_cast(ms_text AS DOUBLE) END AS ms_dbl,
               CASE props_kind
                 WHEN '{{' THEN props_text
                 WHEN '"' THEN
                   CASE WHEN {_strict_json("props_text")}
                        THEN CASE WHEN regexp_matches(props_text, '^[ \\t\\n\\r]*[{{]')
                                  THEN props_text END
                   END
               END AS props
        FROM ts_sized
    ),
    timed AS (
        SELECT *,
               CASE
                 WHEN source = 'web' THEN
                   CASE WHEN t_h <= 23 AND t_mi <= 59 AND t_s <= 59
                             AND t_oh <= 23 AND t_om <= 59 THEN
                     (try(make_date(t_y, t_mo, t_d)) - DATE '1970-01-01')
                       * CAST({_DAY_MS} AS BIGINT)
                     + t_h * 3600000 + t_mi * 60000 + t_s * 1000 + t_ms
                     - t_sign * (t_oh * 60 + t_om) * 60000
                   END
                 WHEN ms_int IS NOT NULL THEN ms_int
                 WHEN isfinite(ms_dbl) AND ms_dbl = trunc(ms_dbl)
                      AND abs(ms_dbl) <= {MAX_ABS_EPOCH_MS} THEN ms_dbl::BIGINT
               END AS raw_ms,
               json_extract_string(props, ['$.element', '$.page']) AS props_values
        FROM parts
    ),
    norm AS (
        SELECT rid, kc, arr_ns, a_day, line_no, source, event_id, event_type,
               CASE WHEN raw_ms BETWEEN -{MAX_ABS_EPOCH_MS} AND {MAX_ABS_EPOCH_MS} THEN raw_ms
               END AS ms,
               CASE WHEN unreadable IS NOT NULL THEN unreadable
                    WHEN NOT is_json THEN 'invalid_json'
                    WHEN source IS NULL THEN 'unknown_shape'
                    WHEN raw_ms IS NULL
                         OR raw_ms NOT BETWEEN -{MAX_ABS_EPOCH_MS} AND {MAX_ABS_EPOCH_MS}
                      THEN 'bad_timestamp'
                    WHEN event_type IS NULL THEN 'unknown_event_type'
               END AS bad,
               nullif(upper(regexp_replace(cid_text, '{_STRIP_RE}', '', 'g')), '') AS customer_id,
               CASE source WHEN 'web' THEN props_values[2] ELSE app_page END AS page,
               CASE source WHEN 'web' THEN props_values[1] ELSE app_element END AS element
        FROM timed
    ),
    dated AS (
        SELECT *, {_floor_div("ms", _DAY_MS)} AS e_day FROM norm
    )
    SELECT rid, kc, arr_ns, line_no, source, event_id, event_type, ms, customer_id, page,
           element,
           coalesce(regexp_matches(element, '{_SUBSCRIBE_RE}'), false) AS is_subscribe,
           CASE
             WHEN bad IS NOT NULL THEN
               CASE WHEN a_day = {partition_day} THEN bad ELSE 'other_date' END
             WHEN e_day = {partition_day} AND {in_window(str(partition_day))} THEN
               CASE WHEN customer_id IS NULL THEN 'anonymous' ELSE 'attributed' END
             WHEN e_day <> {partition_day} AND {in_window("e_day")} THEN 'other_date'
             WHEN a_day = {partition_day} THEN
               CASE WHEN e_day < a_day THEN 'late' ELSE 'future' END
             ELSE 'other_date'
           END AS cat0
    FROM dated
    """


_EVENTS_SQL = """
    SELECT kc, line_no, arr_ns, cat0 = 'attributed' AS attributed, event_id, customer_id,
           event_type, ms * 1000000 AS ns, page, element, is_subscribe, source
    FROM classified
    WHERE cat0 IN ('attributed', 'anonymous')
    -- dedup: the first delivery of an attributed event_id; anonymous / null ids all stay
    QUALIFY cat0 = 'anonymous' OR event_id IS NULL
            OR row_number() OVER (PARTITION BY cat0, event_id ORDER BY arr_ns, kc, line_no) = 1
    ORDER BY customer_id NULLS LAST, ms, event_id NULLS LAST, kc, line_no
"""

_REASONS_SQL = ", ".join(f"'{r}'" for r in QUARANTINE_REASONS)

_QUARANTINE_SQL = f"""
    SELECT c.kc, c.line_no, c.arr_ns, c.cat0 AS reason, c.event_id, c.ms * 1000000 AS ns,
           q.raw
    FROM classified c JOIN quarantined_raw q USING (rid)
    WHERE c.cat0 IN ({_REASONS_SQL})
    ORDER BY c.arr_ns, c.kc, c.line_no
"""


def _fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run ``sql`` and return an Arrow table (DuckDB renamed the method in 1.4)."""
    result = con.execute(sql)
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return fetch()


def _binary_array(raw: np.ndarray) -> pa.Array:
    """Arrow large_binary array of the line bytes, built from one join (much faster than
    converting a million Python objects one by one); anything but bytes takes the slow path."""
    try:
        data = b"".join(raw)
        lengths = np.fromiter(map(len, raw), dtype="int64", count=len(raw))
    except TypeError:
        return pa.array(raw, type=pa.large_binary())
    offsets = np.zeros(len(raw) + 1, dtype="int64")
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] != len(data):  # a bytes-like value whose len() is not its byte count
        return pa.array(raw, type=pa.large_binary())
    return pa.Array.from_buffers(
        pa.large_binary(), len(raw), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _check_lines(lines: pd.DataFrame) -> None:
    missing = [c for c in LINE_COLUMNS if c not in lines.columns]
    if missing:
        raise ValueError(f"lines table is missing columns {missing}")


def _arrival_ns(lines: pd.DataFrame) -> np.ndarray:
    """Arrival instants as int64 ns since the epoch (naive values are taken as UTC)."""
    arrival = pd.DatetimeIndex(pd.to_datetime(lines["arrival_time"], utc=True)).as_unit("ns")
    return np.asarray(arrival.asi8, dtype="int64")


def _partition_day(partition: date, lateness: timedelta) -> date:
    if lateness < timedelta(0):
        raise ValueError("lateness must not be negative")
    if isinstance(partition, datetime):  # a datetime is a date too; keep only its date
        return partition.date()
    return partition


class _Classifier:
    """Lines in (Arrow batches, any number), one ``ClickstreamResult`` out.

    Each batch is classified by one DuckDB query as it arrives and only the per-line fields
    are kept (the raw bytes only of quarantined lines), so the input never has to be in
    memory at once; DuckDB spills to ``temp_directory`` beyond ``memory_limit``.
    """

    def __init__(
        self,
        keys: Sequence[str],
        partition: date,
        lateness: timedelta,
        memory_limit: str | None = None,
    ) -> None:
        self.keys = np.asarray(keys, dtype=object)
        self.sql = _classify_sql(
            (partition - date(1970, 1, 1)).days, lateness // timedelta(microseconds=1) * 1000
        )
        self.rows = 0
        self.unreadable: set[int] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="churn-ingest-")
        config = {"preserve_insertion_order": False, "temp_directory": self._tmp.name}
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.con = duckdb.connect(":memory:", config=config)

    def close(self) -> None:
        self.con.close()
        self._tmp.cleanup()

    def add(self, table: pa.Table) -> None:
        """Classify one batch (columns kc, arr_ns, a_day, line_no, line, problem)."""
        n = table.num_rows
        if n == 0:
            return
        first = self.rows
        table = table.add_column(0, "rid", pa.array(np.arange(first, first + n, dtype="int64")))
        object_rows = pc.equal(table["line_no"], 0)
        unreadable = pc.and_(
            object_rows, pc.fill_null(pc.not_equal(table["problem"], OVER_CAP), True)
        )
        self.unreadable.update(table["kc"].filter(unreadable).to_pylist())
        # Batches of one DuckDB row group let the scan run in parallel.
        batches = pa.Table.from_batches(table.to_batches(max_chunksize=_BATCH_ROWS))
        create = first == 0
        self.con.register("lines_in", batches)
        try:
            verb = "CREATE TABLE classified AS" if create else "INSERT INTO classified"
            self.con.execute(f"{verb} {self.sql}")
            raw = (
                "SELECT rid, line AS raw FROM lines_in WHERE rid IN (SELECT rid FROM classified"
                f" WHERE rid >= {first} AND cat0 IN ({_REASONS_SQL}))"
            )
            verb = "CREATE TABLE quarantined_raw AS" if create else "INSERT INTO quarantined_raw"
            self.con.execute(f"{verb} {raw}")
        finally:
            self.con.unregister("lines_in")
        self.rows += n

    def result(self) -> ClickstreamResult:
        accounting = dict.fromkeys(ACCOUNTING_KEYS, 0)
        if self.rows == 0:
            return ClickstreamResult(empty_events(), empty_quarantine(), accounting)
        con = self.con
        counts = dict(con.execute("SELECT cat0, count(*) FROM classified GROUP BY cat0").fetchall())
        objects_read = con.execute("SELECT count(DISTINCT kc) FROM classified").fetchone()[0]
        events = _fetch_arrow(con, _EVENTS_SQL)
        quarantine = _fetch_arrow(con, _QUARANTINE_SQL)

        attributed = int(counts.pop("attributed", 0))
        counts["valid"] = int(pc.sum(events["attributed"]).as_py() or 0)
        counts["duplicate"] = attributed - counts["valid"]
        unknown = set(counts) - set(LINE_CATEGORIES)
        if unknown:  # pragma: no cover - a bug in the query, never data
            raise AssertionError(f"unexpected line categories {unknown}")
        accounting["lines_read"] = self.rows
        for cat in ("valid", "duplicate", "anonymous", "other_date"):
            accounting[cat] = int(counts.get(cat, 0))
        for reason in QUARANTINE_REASONS:
            accounting[f"quarantined_{reason}"] = int(counts.get(reason, 0))
        accounting["objects_read"] = int(objects_read)
        accounting["objects_unreadable"] = len(self.unreadable)
        total = sum(int(counts.get(c, 0)) for c in LINE_CATEGORIES)
        if total != self.rows:  # pragma: no cover - a bug in the query, never data
            raise AssertionError(f"accounting does not add up: {total} != {self.rows}")
        return ClickstreamResult(
            events=self._events_frame(events),
            quarantine=self._quarantine_frame(quarantine),
            accounting=accounting,
        )

    def _located(self, tbl: pa.Table) -> dict[str, Any]:
        return {
            "object_key": self.keys[tbl.column("kc").to_numpy()],
            "line_no": tbl.column("line_no").to_numpy().astype("int64"),
            "arrival_time": _utc_series(tbl.column("arr_ns").to_numpy()),
        }

    def _events_frame(self, tbl: pa.Table) -> pd.DataFrame:
        if tbl.num_rows == 0:
            return empty_events()
        frame = pd.DataFrame(
            {
                "event_id": _text(tbl.column("event_id")),
                "customer_id": _text(tbl.column("customer_id")),
                "event_type": _text(tbl.column("event_type")),
                "event_time": _utc_series(tbl.column("ns").to_numpy()),
                "page": _text(tbl.column("page")),
                "element": _text(tbl.column("element")),
                "is_subscribe": tbl.column("is_subscribe").to_numpy().astype(bool),
                "source": _text(tbl.column("source")),
                **self._located(tbl),
            }
        )
        return frame[list(EVENT_COLUMNS)]

    def _quarantine_frame(self, tbl: pa.Table) -> pd.DataFrame:
        if tbl.num_rows == 0:
            return empty_quarantine()
        frame = pd.DataFrame(
            {
                **self._located(tbl),
                "reason": _text(tbl.column("reason")),
                "event_id": _text(tbl.column("event_id")),
                "event_time": _ns_to_utc(tbl.column("ns")),
                "raw_line": np.asarray(tbl.column("raw").to_pylist(), dtype=object),
            }
        )
        return frame[list(QUARANTINE_COLUMNS)]


def normalise_clickstream(
    lines: pd.DataFrame, partition: date, lateness: timedelta = timedelta(hours=2)
) -> ClickstreamResult:
    """Classify, normalise and deduplicate the lines read for ``partition`` (LANDING.md §2–4).

    Every line gets exactly one category. Bad lines (invalid_json, unknown_shape,
    bad_timestamp, unknown_event_type, unreadable_object, object_over_cap) are quarantined
    only when their object's arrival date is ``partition``, else they are other_date. A line
    of event date E: E == partition and arrival in the partition's window -> valid /
    duplicate / anonymous; E != partition and arrival in E's window -> other_date; otherwise
    late (E before the arrival date) or future (after it), quarantined only by the arrival
    date's partition. Categories are computed from ``arrival_time`` itself, so passing
    objects outside the window cannot mis-classify a line. See the module docstring for the
    field rules. A line_no 0 row stands for an object that was not read: its ``problem``
    (when the column is there) is the reason, ``unreadable_object`` otherwise.
    """
    partition = _partition_day(partition, lateness)
    _check_lines(lines)
    arr_ns = _arrival_ns(lines)
    key_codes, key_uniques = pd.factorize(lines["object_key"].to_numpy(dtype=object), sort=True)
    problem = lines["problem"] if "problem" in lines.columns else pd.Series(None, lines.index)
    table = pa.table(
        {
            "kc": pa.array(key_codes.astype("int64")),
            "arr_ns": pa.array(arr_ns),
            "a_day": pa.array(np.floor_divide(arr_ns, _DAY_NS)),
            "line_no": pa.array(lines["line_no"].to_numpy(dtype="int64")),
            "line": _binary_array(lines["line"].to_numpy(dtype=object)),
            "problem": pa.array(_objects(problem), type=pa.string()),
        }
    )
    classifier = _Classifier(list(key_uniques), partition, lateness)
    try:
        classifier.add(table)
        return classifier.result()
    finally:
        classifier.close()


def normalise_objects(
    objects: Sequence[ObjectRef],
    fetch: Callable[[str], bytes],
    partition: date,
    lateness: timedelta = timedelta(hours=2),
    limits: ObjectLimits = DEFAULT_LIMITS,
    *,
    workers: int = 2,
    batch_lines: int = 500_000,
    memory_limit: str | None = "1GB",
) -> ClickstreamResult:
    """``normalise_clickstream`` of listed objects, streamed: equal results, bounded memory.

    ``workers`` threads fetch, decompress and split objects (zlib and numpy release the
    GIL) while DuckDB classifies the previous batch of about ``batch_lines`` lines. Memory
    is the batch, the objects being read (each bounded by ``limits``) and what DuckDB keeps
    of every line (its parsed fields, not its bytes), which spills to disk past
    ``memory_limit``; plus the output tables.
    """
    partition = _partition_day(partition, lateness)
    keys = sorted({o.key for o in objects})
    if len(keys) != len(objects):
        raise ValueError("object keys must be unique")
    codes = {key: i for i, key in enumerate(keys)}
    classifier = _Classifier(keys, partition, lateness, memory_limit)
    try:
        pending: list[ObjectLines] = []
        pending_rows = 0
        with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
            reads: deque[Future[ObjectLines]] = deque()
            remaining = iter(objects)
            while True:
                while len(reads) < max(workers, 1) + 1:
                    obj = next(remaining, None)
                    if obj is None:
                        break
                    reads.append(
                        pool.submit(
                            read_object,
                            obj.key,
                            obj.arrival_time,
                            functools.partial(fetch, obj.key),
                            limits,
                            obj.size,
                        )
                    )
                if not reads:
                    break
                done = reads.popleft().result()
                if done.rows:
                    pending.append(done)
                    pending_rows += done.rows
                if pending_rows >= batch_lines:
                    classifier.add(_lines_table(pending, codes))
                    pending, pending_rows = [], 0
        if pending:
            classifier.add(_lines_table(pending, codes))
        return classifier.result()
    finally:
        classifier.close()


def _ns_to_utc(column: pa.ChunkedArray) -> pd.Series:
    return pd.Series(
        column.cast(pa.timestamp("ns", tz="UTC")).to_pandas(), dtype="datetime64[ns, UTC]"
    )


def _text(column: pa.ChunkedArray) -> np.ndarray:
    """Object array of str / None (never NaN); equal strings share one object."""
    values = column.to_pandas(deduplicate_objects=True).to_numpy(dtype=object)
    values[pd.isna(values)] = None
    return values


def _objects(values: pd.Series) -> np.ndarray:
    """Object array of str / None (DuckDB's pandas output may hold NaN for NULL)."""
    out = values.to_numpy(dtype=object)
    out[pd.isna(out)] = None
    return out
