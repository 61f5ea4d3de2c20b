"""Parse, type and check one day of the CRM accounts extract (LANDING.md §1, §4 "Billing").

A day is all-or-nothing: if any part cannot be decoded, a required column is missing, or a
value cannot be typed, the whole day is rejected with a reason (it then counts as not landed).
Range problems (negative mrr, zero seats, duplicate ids, a wrong snapshot date) are *kept* so
that asset checks can report the offending rows instead of the day silently disappearing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from churn_assets.core.bounded_read import (
    DEFAULT_LIMITS,
    NotGzip,
    ObjectLimits,
    OverCap,
    gunzip_bounded,
)

BILLING_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "account_name",
    "signup_date",
    "plan",
    "seats",
    "mrr",
    "cancelled_service",
    "cancelled_at",
    "new_customer",
    "reactivated_at",
    "support_calls",
    "snapshot_date",
)

PLANS: tuple[str, ...] = ("basic", "plus", "pro")

_DATE_COLUMNS = ("signup_date", "cancelled_at", "reactivated_at", "snapshot_date")
_OPTIONAL_DATE_COLUMNS = frozenset({"cancelled_at", "reactivated_at"})
_INT_COLUMNS = ("seats", "support_calls")
_BOOL_COLUMNS = ("cancelled_service", "new_customer")
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})

_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_INT_RE = r"^[+-]?\d+$"
_DECIMAL_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
_SAMPLE = 5

VIOLATION_NAMES: tuple[str, ...] = (
    "duplicate_customer_id",
    "null_customer_id",
    "negative_mrr",
    "seats_below_one",
    "negative_support_calls",
    "snapshot_date_mismatch",
)


class BillingRejected(ValueError):
    """A billing day that cannot be read as a whole; `reason` is a short machine code.

    Reasons: decode_error, part_over_cap (a part over the landing zone's caps on
    decompressed bytes or lines), malformed_csv, missing_columns, duplicate_columns,
    untypeable_values, empty_day.
    """

    def __init__(self, reason: str, details: str) -> None:
        super().__init__(f"{reason}: {details}")
        self.reason = reason
        self.details = details


def part_over_cap(name: str, over: OverCap, compressed_size: int) -> BillingRejected:
    """The rejection of a day with a part over a cap: its name, size and the cap."""
    return BillingRejected(
        "part_over_cap",
        f"{name}: over the {over.cap} cap of {over.limit:,} per part ({compressed_size:,} "
        "bytes compressed); not read further",
    )


def _decode_part(name: str, payload: bytes, limits: ObjectLimits = DEFAULT_LIMITS) -> bytes:
    """Gunzip (as a stream, under ``limits``) and validate UTF-8; returns the raw CSV bytes
    without a BOM."""
    try:
        raw = gunzip_bounded(payload, limits)
    except NotGzip as exc:
        raise BillingRejected("decode_error", f"{name}: not a valid gzip file ({exc})") from exc
    except OverCap as over:
        raise part_over_cap(name, over, len(payload)) from over
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BillingRejected(
            "decode_error", f"{name}: not valid UTF-8 at byte {exc.start} ({exc.reason})"
        ) from exc
    return raw.removeprefix(b"\xef\xbb\xbf")


def _read_part(name: str, raw: bytes) -> pa.Table:
    """One part as an all-string Arrow table of the contract columns, header matched loosely.

    Arrow's reader is strict about RFC 4180 (a row with too few or too many fields is an
    error, quoted fields may hold commas, quotes and newlines), which pandas is not.
    """
    first = next(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")), None)
    if first is None:
        raise BillingRejected("malformed_csv", f"{name}: no header row")
    header = [h.strip().lower() for h in first]
    seen: dict[str, int] = {}
    for h in header:
        seen[h] = seen.get(h, 0) + 1
    dup = sorted(h for h, n in seen.items() if n > 1 and h in BILLING_COLUMNS)
    if dup:
        raise BillingRejected("duplicate_columns", f"{name}: columns appear twice: {dup}")
    missing = [c for c in BILLING_COLUMNS if c not in seen]
    if missing:
        raise BillingRejected(
            "missing_columns", f"{name}: missing required columns {missing}; header was {first}"
        )
    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            io.BytesIO(raw),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                include_columns=[names[header.index(c)] for c in BILLING_COLUMNS],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise BillingRejected("malformed_csv", f"{name}: {exc}") from exc
    table = table.rename_columns(list(BILLING_COLUMNS))
    n = table.num_rows
    table = table.append_column("_part", pa.array([name] * n, pa.string()))
    # File line of each row (header is line 1); exact unless a quoted value spans lines.
    return table.append_column("_row", pa.array(np.arange(2, n + 2, dtype=np.int64)))


def _bad(col: str, raw: pa.Table, bad: pa.ChunkedArray) -> str:
    sample = raw.filter(bad).select(["_part", "_row", col]).slice(0, _SAMPLE).to_pylist()
    shown = ", ".join(f"{r['_part']} row {r['_row']}: {r[col]!r}" for r in sample)
    return f"{col}: {pc.sum(bad).as_py()} untypeable value(s), e.g. {shown}"


def _matches(values: pa.ChunkedArray, pattern: str) -> pa.ChunkedArray:
    return pc.match_substring_regex(values, pattern)


def _type(raw: pa.Table) -> pd.DataFrame:
    """Type every contract column with Arrow kernels; report every bad column, then reject."""
    problems: list[str] = []
    out: dict[str, pd.Series] = {}
    col = {c: pc.utf8_trim_whitespace(raw[c]) for c in BILLING_COLUMNS if c != "account_name"}

    cid = pc.utf8_upper(col["customer_id"])
    cid = pc.if_else(pc.equal(cid, ""), pa.scalar(None, pa.string()), cid)
    out["customer_id"] = cid.to_pandas().astype(object)
    out["account_name"] = raw["account_name"].to_pandas().astype(object)

    for c in _DATE_COLUMNS:
        s = col[c]
        empty = pc.equal(s, "")
        parsed = pc.strptime(s, format="%Y-%m-%d", unit="s", error_is_null=True)
        # Arrow's strptime rolls 2026-02-30 over to March: a round trip rejects that.
        same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), s)
        ok = pc.and_kleene(_matches(s, _DATE_RE), pc.fill_null(same, False))
        allowed = pc.or_(ok, empty) if c in _OPTIONAL_DATE_COLUMNS else ok
        bad = pc.invert(allowed)
        if pc.any(bad).as_py():
            problems.append(_bad(c, raw, bad))
        valid = pc.if_else(ok, parsed, pa.scalar(None, parsed.type))
        out[c] = valid.to_pandas().astype("datetime64[ns]")

    plan = pc.utf8_lower(col["plan"])
    bad = pc.invert(pc.is_in(plan, value_set=pa.array(PLANS)))
    if pc.any(bad).as_py():
        problems.append(_bad("plan", raw, bad) + f" (allowed: {list(PLANS)})")
    out["plan"] = plan.to_pandas().astype(object)

    for c, pattern, kind in (
        ("seats", _INT_RE, pa.int64()),
        ("support_calls", _INT_RE, pa.int64()),
        ("mrr", _DECIMAL_RE, pa.float64()),
    ):
        s = pc.replace_substring_regex(col[c], r"^\+", "")
        bad = pc.invert(_matches(col[c], pattern))
        if pc.any(bad).as_py():
            problems.append(_bad(c, raw, bad))
            s = pc.if_else(bad, "0", s)
        try:
            out[c] = pc.cast(s, kind).to_pandas()
        except pa.ArrowInvalid as exc:  # e.g. an integer beyond int64
            problems.append(f"{c}: {exc}")

    for c in _BOOL_COLUMNS:
        s = pc.utf8_lower(col[c])
        is_true = pc.is_in(s, value_set=pa.array(sorted(_TRUE)))
        bad = pc.invert(pc.or_(is_true, pc.is_in(s, value_set=pa.array(sorted(_FALSE)))))
        if pc.any(bad).as_py():
            problems.append(_bad(c, raw, bad))
        out[c] = is_true.to_pandas().astype(bool)

    if problems:
        raise BillingRejected("untypeable_values", "; ".join(problems))
    frame = pd.DataFrame({c: out[c].reset_index(drop=True) for c in BILLING_COLUMNS})
    return frame.astype({"seats": np.int64, "support_calls": np.int64, "mrr": np.float64})


def parse_billing_day(
    parts: Sequence[tuple[str, bytes]], day: date, limits: ObjectLimits = DEFAULT_LIMITS
) -> pd.DataFrame:
    """Typed billing extract of `day` from its (name, gzip bytes) parts, in part-name order.

    Raises BillingRejected for anything that makes the day unreadable as a whole. `day` is
    only used in messages: a snapshot_date that differs is a contract violation to report
    (see billing_contract_violations), not a parse failure.
    """
    if not parts:
        raise BillingRejected("empty_day", f"{day}: no part files")
    tables = [
        _read_part(name, _decode_part(name, payload, limits)) for name, payload in sorted(parts)
    ]
    raw = pa.concat_tables(tables).combine_chunks()
    if raw.num_rows == 0:
        raise BillingRejected("empty_day", f"{day}: {len(parts)} part(s) but no rows")
    return _type(raw)


def empty_billing() -> pd.DataFrame:
    """A zero-row frame with the typed billing schema (for concatenations with no days)."""
    dtypes = {
        "customer_id": object,
        "account_name": object,
        "signup_date": "datetime64[ns]",
        "plan": object,
        "seats": np.int64,
        "mrr": np.float64,
        "cancelled_service": bool,
        "cancelled_at": "datetime64[ns]",
        "new_customer": bool,
        "reactivated_at": "datetime64[ns]",
        "support_calls": np.int64,
        "snapshot_date": "datetime64[ns]",
    }
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def billing_contract_violations(billing: pd.DataFrame, day: date) -> dict[str, pd.DataFrame]:
    """Rows of one typed extract that break a range rule of the contract, per rule.

    Every key of VIOLATION_NAMES is always present (an empty frame when the rule holds).
    """
    cid = billing["customer_id"]
    null_id = cid.isna() | (cid.astype(str).str.strip() == "")
    masks = {
        "duplicate_customer_id": cid.duplicated(keep=False) & ~null_id,
        "null_customer_id": null_id,
        "negative_mrr": billing["mrr"] < 0,
        "seats_below_one": billing["seats"] < 1,
        "negative_support_calls": billing["support_calls"] < 0,
        "snapshot_date_mismatch": billing["snapshot_date"] != pd.Timestamp(day),
    }
    return {name: billing.loc[masks[name]] for name in VIOLATION_NAMES}


def cancelled_at_end_of_day(billing: pd.DataFrame) -> pd.Series:
    """Cancelled per LANDING §1: cancelled_at set and not re-activated on or after it."""
    c, r = billing["cancelled_at"], billing["reactivated_at"]
    return (c.notna() & (r.isna() | (r < c))).astype(bool)


def active_at_end_of_day(billing: pd.DataFrame, day: date) -> pd.Series:
    """Active at the end of `day` per LANDING §1, from that day's extract (bool, same index).

    A cancellation and a re-activation on the same day leave the account active.
    """
    signed_up = billing["signup_date"] <= pd.Timestamp(day)
    return (signed_up & ~cancelled_at_end_of_day(billing)).astype(bool)
