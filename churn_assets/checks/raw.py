"""Checks of the raw layer: the landing contract, per day.

The verdicts are plain functions of tables and numbers (``*_verdict``), so they are tested
on hand-made inputs; the ``*_results`` wrappers fetch the little context they need (the
previous billing extract from the warehouse, the trailing volumes from the instance) and
turn verdicts into ``AssetCheckResult``s.

Trailing history: the volume and share checks judge a day against the same stream's own
recent days (``core.baseline``: median and spread, a margin, an absolute ceiling or floor;
thresholds from the ``RawContracts`` resource). They read the numbers each earlier partition
recorded in its materialization metadata (``accounts``; the clickstream's accounting counts
and ``attributed_customers``) from the instance's event log: one indexed lookup per day, no
table read, the same cost for a million events as for a thousand, and exactly the numbers
the UI plots. The "no account disappears" check needs the previous day's customer ids, so it
reads that one extract from the warehouse.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from churn_assets.checks.common import (
    DEFAULT_CONTRACTS,
    DEFAULT_RAW_CONTRACTS,
    ERROR,
    WARN,
    ContractSettings,
    Measure,
    judged_result,
    materialized_numbers,
    result,
    samples,
    spec,
    trailing_days,
)
from churn_assets.core.billing import (
    BILLING_COLUMNS,
    BillingRejected,
    billing_contract_violations,
    empty_billing,
)
from churn_assets.core.clickstream import ACCOUNTING_KEYS, OVER_CAP, ClickstreamResult
from churn_assets.core.landing_layout import UnreadKey
from churn_assets.metadata import markdown_table, numbers
from churn_assets.resources.contracts import RawContracts

UNREAD_FILES_CHECK = "unread_landing_files"
UNREAD_FILES_DESCRIPTION = (
    "Every key under the day's landing folders is read, or reported here with its reason: "
    "unrecognised name, misfiled (under another hour's folder: read by the partition its name "
    "gives when that partition lists the folder, else not read), unknown file in a billing "
    "day, symlink (never followed out of the landing zone). Warns when there is any."
)

BILLING_VOLUME_KEY = "accounts"
_MAX_HEADER_BYTES = 64 << 10
CUSTOMERS_KEY = "attributed_customers"
CONTENT_REASONS = (
    "invalid_json",
    "unknown_shape",
    "bad_timestamp",
    "unknown_event_type",
    "future",
    "unreadable_object",
    "object_over_cap",
)
"""Quarantine reasons that say the record itself is bad. ``late`` is not among them: a late
record is a good record of an earlier, already materialized day (see ``late_events``)."""

# raw_billing ------------------------------------------------------------------------------


def raw_billing_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "raw_billing",
            "schema",
            partitions_def,
            True,
            "Every contract column present (matched by header name) and typed; otherwise the "
            "day is rejected whole and counts as not landed. Unknown columns are ignored and "
            "listed.",
        ),
        spec(
            "raw_billing",
            "customer_id_unique",
            partitions_def,
            True,
            "customer_id is unique and non-null: the key every join downstream relies on.",
        ),
        spec(
            "raw_billing",
            "snapshot_date_is_partition",
            partitions_def,
            True,
            "snapshot_date equals the dt of the folder (features and labels select extract "
            "rows by it).",
        ),
        spec(
            "raw_billing",
            "values_in_range",
            partitions_def,
            False,
            "mrr >= 0, seats >= 1, support_calls >= 0.",
        ),
        spec(
            "raw_billing",
            "no_account_disappears",
            partitions_def,
            False,
            "Every account of the previous available extract is still in this one "
            "(accounts never disappear, LANDING §1).",
        ),
        spec(
            "raw_billing",
            "previous_day_landed",
            partitions_def,
            False,
            "The extract of the day before is there (or D is the first day of history): a day "
            "that never arrived is reported by the next one, even after later days landed.",
        ),
        spec(
            "raw_billing",
            "volume_vs_trailing_median",
            partitions_def,
            True,
            "Row count not below the baseline of the recent extracts by more than the margin, "
            "nor below the floor (a truncated extract); thresholds from the raw_contracts "
            "resource, shown with the history in the metadata.",
        ),
        spec("raw_billing", UNREAD_FILES_CHECK, partitions_def, False, UNREAD_FILES_DESCRIPTION),
    ]


def unread_files_metadata(unread: Sequence[UnreadKey], max_rows: int) -> dict[str, Any]:
    """Counts per reason and the keys (escaped) of the files a partition did not read."""
    frame = pd.DataFrame(
        {
            "key": [u.key for u in unread],
            "reason": [u.reason for u in unread],
            "detail": [u.detail for u in unread],
        }
    )
    by_reason = frame["reason"].value_counts().to_dict() if len(frame) else {}
    return numbers({"unread_landing_files": len(frame)}) | {
        "unread_by_reason": dg.MetadataValue.json(by_reason),
        "unread_files": markdown_table(frame, max_rows),
    }


def unread_files_result(unread: Sequence[UnreadKey], max_rows: int) -> dg.AssetCheckResult:
    """WARN check: the landing keys of the day that were not read (nothing skipped silently)."""
    return result(
        UNREAD_FILES_CHECK,
        not unread,
        WARN,
        unread_files_metadata(unread, max_rows),
        description=None if not unread else f"{len(unread)} landing key(s) not read as data.",
    )


def part_headers(parts: Sequence[tuple[str, bytes]]) -> dict[str, list[str]]:
    """Header row of each part (lower-cased, trimmed); unreadable parts map to []."""
    headers: dict[str, list[str]] = {}
    for name, payload in parts:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(payload)) as handle:
                first = handle.readline(_MAX_HEADER_BYTES).decode("utf-8", errors="replace")
        except (OSError, EOFError, zlib.error):
            headers[name] = []
            continue
        cells = next(csv.reader([first.removeprefix("\ufeff")]), [])
        headers[name] = [c.strip().lower() for c in cells]
    return headers


def header_summary(parts: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """Missing and ignored (unknown) columns across the parts of a day, from their headers."""
    headers = part_headers(parts)
    seen = {c for cols in headers.values() for c in cols}
    missing = sorted({c for cols in headers.values() for c in BILLING_COLUMNS if c not in cols})
    return {
        "headers": headers,
        "missing_columns": missing,
        "ignored_columns": sorted(seen - set(BILLING_COLUMNS)),
    }


def rejected_billing_results(
    rejection: BillingRejected, parts: Sequence[tuple[str, bytes]] = ()
) -> list[dg.AssetCheckResult]:
    """The schema check of a day that could not be read as a whole (it counts as not landed)."""
    metadata: dict[str, Any] = {
        "reason": dg.MetadataValue.text(rejection.reason),
        "details": dg.MetadataValue.text(str(rejection.details)),
        "parts": dg.MetadataValue.int(len(parts)),
    }
    if parts:
        summary = header_summary(parts)
        metadata |= {
            "missing_columns": dg.MetadataValue.json(summary["missing_columns"]),
            "ignored_columns": dg.MetadataValue.json(summary["ignored_columns"]),
            "headers": dg.MetadataValue.json(summary["headers"]),
        }
    return [
        result(
            "schema",
            False,
            ERROR,
            metadata,
            description=f"Day rejected as a whole ({rejection.reason}); its landing files are "
            "left untouched. Deliver it again (new _SUCCESS) to recompute it.",
        )
    ]


def schema_verdict(billing: pd.DataFrame) -> tuple[bool, dict[str, Any]]:
    """The typed table has exactly the contract's columns and dtypes."""
    expected = empty_billing().dtypes.astype(str).to_dict()
    actual = billing.dtypes.astype(str).to_dict()
    wrong = {c: {"expected": t, "actual": actual.get(c)} for c, t in expected.items()}
    wrong = {c: v for c, v in wrong.items() if v["expected"] != v["actual"]}
    extra = sorted(set(actual) - set(expected))
    return not wrong and not extra, {"wrong_columns": wrong, "unexpected_columns": extra}


def billing_row_verdicts(billing: pd.DataFrame, day: date) -> dict[str, dict[str, pd.DataFrame]]:
    """Offending rows per rule, grouped by the check that reports them."""
    violations = billing_contract_violations(billing, day)
    return {
        "customer_id_unique": {
            k: violations[k] for k in ("duplicate_customer_id", "null_customer_id")
        },
        "snapshot_date_is_partition": {
            "snapshot_date_mismatch": violations["snapshot_date_mismatch"]
        },
        "values_in_range": {
            k: violations[k] for k in ("negative_mrr", "seats_below_one", "negative_support_calls")
        },
    }


def disappeared_accounts(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``previous`` whose customer_id is absent from ``current``."""
    ids = previous["customer_id"].dropna()
    gone = ~ids.isin(set(current["customer_id"].dropna()))
    columns = [c for c in ("customer_id", "signup_date", "plan", "cancelled_at") if c in previous]
    return previous.loc[gone.index[gone], columns].sort_values("customer_id")


def previous_billing(
    warehouse: Any, day: date, first_day: date, lookback_days: int
) -> tuple[date, pd.DataFrame] | None:
    """The latest extract stored before ``day`` within ``lookback_days`` (skipping missing days)."""
    for back in range(1, lookback_days + 1):
        previous = day - timedelta(days=back)
        if previous < first_day:
            return None
        table = warehouse.read_tables(
            warehouse.partition_prefix(["raw_billing"], previous.isoformat())
        )
        if isinstance(table, pd.DataFrame):
            return previous, table
    return None


def raw_billing_results(
    context: dg.AssetExecutionContext,
    billing: pd.DataFrame,
    day: date,
    *,
    parts: Sequence[tuple[str, bytes]] = (),
    warehouse: Any = None,
    first_day: date | None = None,
    contracts: ContractSettings = DEFAULT_CONTRACTS,
    raw_contracts: RawContracts = DEFAULT_RAW_CONTRACTS,
) -> list[dg.AssetCheckResult]:
    """Every raw_billing check of a typed extract (a list: the asset looks for blocking ones)."""
    n = contracts.sample_rows
    first_day = first_day or day
    out: list[dg.AssetCheckResult] = []

    ok, details = schema_verdict(billing)
    headers = header_summary(parts) if parts else {"ignored_columns": [], "headers": {}}
    out.append(
        result(
            "schema",
            ok,
            ERROR,
            {
                "columns": dg.MetadataValue.int(len(billing.columns)),
                "parts": dg.MetadataValue.int(len(parts)),
                "ignored_columns": dg.MetadataValue.json(headers["ignored_columns"]),
                "headers": dg.MetadataValue.json(headers["headers"]),
                "schema_problems": dg.MetadataValue.json(details),
            },
        )
    )
    for name, frames in billing_row_verdicts(billing, day).items():
        severity = WARN if name == "values_in_range" else ERROR
        out.append(
            result(
                name,
                all(v.empty for v in frames.values()),
                severity,
                numbers({k: len(v) for k, v in frames.items()} | {"rows": len(billing)})
                | samples(frames, n),
            )
        )

    found = (
        previous_billing(warehouse, day, first_day, contracts.previous_billing_lookback_days)
        if hasattr(warehouse, "read_tables")  # the parquet warehouse (not a test's in-memory IO)
        else None
    )
    yesterday = day - timedelta(days=1)
    previous_day = found[0] if found is not None else None
    out.append(
        result(
            "previous_day_landed",
            day <= first_day or previous_day == yesterday or not hasattr(warehouse, "read_tables"),
            WARN,
            {
                "previous_extract": dg.MetadataValue.text(
                    previous_day.isoformat() if previous_day else "none within the lookback"
                ),
                "days_missing_before": dg.MetadataValue.int(
                    (day - previous_day).days - 1
                    if previous_day
                    else min((day - first_day).days, contracts.previous_billing_lookback_days)
                ),
            },
        )
    )
    if found is None:
        out.append(
            result(
                "no_account_disappears",
                True,
                WARN,
                {"previous_extract": dg.MetadataValue.text("none within the lookback")},
            )
        )
    else:
        previous_day, previous = found
        gone = disappeared_accounts(previous, billing)
        out.append(
            result(
                "no_account_disappears",
                gone.empty,
                WARN,
                {"previous_extract": dg.MetadataValue.text(previous_day.isoformat())}
                | numbers(
                    {
                        "previous_accounts": len(previous),
                        "accounts": len(billing),
                        "disappeared": len(gone),
                    }
                )
                | samples({"disappeared": gone}, n),
            )
        )

    history_days = trailing_days(day, raw_contracts.history_days, first_day)
    recorded = materialized_numbers(
        context.instance, "raw_billing", history_days, [BILLING_VOLUME_KEY]
    )
    history = {d: v[BILLING_VOLUME_KEY] for d, v in recorded.items() if BILLING_VOLUME_KEY in v}
    out.append(
        judged_result(
            "volume_vs_trailing_median",
            [Measure("accounts", "billing_accounts", len(billing), history)],
            day,
            raw_contracts,
            weekday_aware=False,
            severity=ERROR,
        )
    )
    return out


# raw_clickstream --------------------------------------------------------------------------


HISTORY_RULE = (
    "judged against the stream's own recent days (median and spread of the materialized "
    "days in the raw_contracts resource's window), and against an absolute bound; the "
    "metadata shows the value, baseline, margin, bound, settings and history of each verdict"
)


def raw_clickstream_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "raw_clickstream",
            "row_accounting",
            partitions_def,
            True,
            "Every line read is exactly one of valid, duplicate, anonymous, other date or "
            "quarantined (LANDING §3): the counts add up, and the stored events and quarantine "
            "tables hold exactly the counted rows.",
        ),
        spec(
            "raw_clickstream",
            "quarantine_share",
            partitions_def,
            True,
            f"Share of bad records ({', '.join(CONTENT_REASONS)}) among the lines read, "
            f"{HISTORY_RULE}. A steady share passes; a burst or a broken producer blocks. Bad "
            "records are kept, with their reason and exact bytes, in the quarantine table.",
        ),
        spec(
            "raw_clickstream",
            "anonymous_share",
            partitions_def,
            True,
            f"Share of anonymous records among the day's records, {HISTORY_RULE}: a jump "
            "means customer ids are being lost, and features would undercount.",
        ),
        spec(
            "raw_clickstream",
            "volume_vs_trailing_median",
            partitions_def,
            True,
            f"Valid events and attributed customers (weekdays vs weekdays, weekend vs "
            f"weekend), {HISTORY_RULE}: an outage or a silent producer.",
        ),
        spec(
            "raw_clickstream",
            "duplicate_share",
            partitions_def,
            False,
            f"Share of duplicate deliveries (same event_id) among attributed records, "
            f"{HISTORY_RULE}. Warns only: duplicates are removed, the day stays exact.",
        ),
        spec(
            "raw_clickstream",
            "late_events",
            partitions_def,
            False,
            "Records that arrived after their day's lateness window (quarantined 'late' by "
            f"this arrival day, by event date); their share of the lines read is {HISTORY_RULE}. "
            "Warns only: the event dates listed are missing those events, this day is not.",
        ),
        spec(
            "raw_clickstream", UNREAD_FILES_CHECK, partitions_def, False, UNREAD_FILES_DESCRIPTION
        ),
        spec(
            "raw_clickstream",
            "objects_within_caps",
            partitions_def,
            False,
            "No object arriving this day went over the landing zone's caps (decompressed bytes, "
            "lines): such an object is quarantined whole as one object_over_cap row (key, "
            "sizes and cap; its bytes are not read further). Warns when there is any.",
        ),
    ]


def accounting_verdict(result_: ClickstreamResult) -> tuple[bool, dict[str, int]]:
    """Categories add up to lines_read; stored tables hold exactly the counted rows."""
    a = result_.accounting
    quarantined = {k: v for k, v in a.items() if k.startswith("quarantined_")}
    categories = a["valid"] + a["duplicate"] + a["anonymous"] + a["other_date"]
    total = categories + sum(quarantined.values())
    events = result_.events
    attributed = int(events["customer_id"].notna().sum())
    by_reason = result_.quarantine["reason"].value_counts()
    reason_mismatch = sum(
        abs(int(by_reason.get(k.removeprefix("quarantined_"), 0)) - v)
        for k, v in quarantined.items()
    )
    details = {
        "lines_read": a["lines_read"],
        "sum_of_categories": total,
        "valid": a["valid"],
        "duplicate": a["duplicate"],
        "anonymous": a["anonymous"],
        "other_date": a["other_date"],
        "quarantined": sum(quarantined.values()),
        "events_stored_attributed": attributed,
        "events_stored_anonymous": len(events) - attributed,
        "quarantine_rows_stored": len(result_.quarantine),
        "quarantine_reason_mismatch": reason_mismatch,
    }
    passed = (
        total == a["lines_read"]
        and attributed == a["valid"]
        and len(events) - attributed == a["anonymous"]
        and len(result_.quarantine) == sum(quarantined.values())
        and reason_mismatch == 0
    )
    return passed, details


def quarantine_sample(quarantine: pd.DataFrame, reasons: Sequence[str], n: int) -> pd.DataFrame:
    """A few quarantined lines of ``reasons``, raw bytes shown as (truncated) text."""
    rows = quarantine.loc[quarantine["reason"].isin(list(reasons))].head(n)
    shown = rows[["reason", "object_key", "line_no", "event_id"]].copy()
    shown["raw_line"] = [
        (bytes(b) if b is not None else b"").decode("utf-8", errors="replace")[:120]
        for b in rows["raw_line"]
    ]
    return shown


SHARES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "quarantine_share": (tuple(f"quarantined_{r}" for r in CONTENT_REASONS), ("lines_read",)),
    "anonymous_share": (("anonymous",), ("valid", "duplicate", "anonymous")),
    "duplicate_share": (("duplicate",), ("valid", "duplicate")),
    "late_share": (("quarantined_late",), ("lines_read",)),
}
"""Each share of a clickstream day: (numerator, denominator) accounting keys. The anonymous
and duplicate shares are among the records of the day's date that parsed; the bad and late
shares among every line read."""


def share_of(counts: Mapping[str, float], share: str) -> tuple[float, int] | None:
    """(share, denominator) of a day's accounting counts; None when a count is missing."""
    numerator, denominator = SHARES[share]
    if any(k not in counts for k in (*numerator, *denominator)):
        return None
    lines = int(sum(counts[k] for k in denominator))
    return float(sum(counts[k] for k in numerator)) / max(lines, 1), lines


def clickstream_shares(counts: Mapping[str, float]) -> dict[str, float]:
    """Every share of ``SHARES`` that the counts allow (recorded on each materialization)."""
    found = {name: share_of(counts, name) for name in SHARES}
    return {name: value[0] for name, value in found.items() if value is not None}


def clickstream_history(
    recorded: Mapping[date, Mapping[str, float]], measure: str
) -> dict[date, float]:
    """``measure`` (a share, or a recorded count) of each earlier day that recorded it."""
    if measure in SHARES:
        return {
            d: v[measure]
            for d, v in ((d, clickstream_shares(c)) for d, c in recorded.items())
            if measure in v
        }
    return {d: c[measure] for d, c in recorded.items() if measure in c}


def raw_clickstream_results(
    context: dg.AssetExecutionContext,
    outcome: ClickstreamResult,
    listing: Any,
    *,
    day: date | None = None,
    first_day: date | None = None,
    contracts: ContractSettings = DEFAULT_CONTRACTS,
    raw_contracts: RawContracts = DEFAULT_RAW_CONTRACTS,
) -> list[dg.AssetCheckResult]:
    """Every raw_clickstream check of one normalised partition."""
    day = day or date.fromisoformat(context.partition_key)
    first_day = first_day or day
    a = outcome.accounting
    n = contracts.sample_rows
    out: list[dg.AssetCheckResult] = []

    passed, details = accounting_verdict(outcome)
    out.append(result("row_accounting", passed, ERROR, numbers(details)))

    customers = int(outcome.events["customer_id"].nunique())
    recorded = materialized_numbers(
        context.instance,
        "raw_clickstream",
        trailing_days(day, raw_contracts.history_days, first_day),
        [*ACCOUNTING_KEYS, CUSTOMERS_KEY],
    )

    def share(name: str) -> Measure:
        value, lines = share_of(a, name) or (0.0, 0)
        return Measure(name, name, value, clickstream_history(recorded, name), lines)

    def judged_share(
        check: str, name: str, severity: dg.AssetCheckSeverity, extra: Mapping[str, Any]
    ) -> dg.AssetCheckResult:
        return judged_result(
            check,
            [share(name)],
            day,
            raw_contracts,
            raw_contracts.weekday_aware_shares,
            severity,
            extra,
        )

    bad = {r: a.get(f"quarantined_{r}", 0) for r in CONTENT_REASONS}
    out.append(
        judged_share(
            "quarantine_share",
            "quarantine_share",
            ERROR,
            numbers(
                {"lines_read": a["lines_read"], "bad_records": sum(bad.values())}
                | {f"quarantined_{k}": v for k, v in bad.items()}
            )
            | samples(
                {"quarantined": quarantine_sample(outcome.quarantine, CONTENT_REASONS, n)}, n
            ),
        )
    )
    out.append(
        judged_share(
            "anonymous_share",
            "anonymous_share",
            ERROR,
            numbers({"anonymous": a["anonymous"], "attributed": a["valid"] + a["duplicate"]}),
        )
    )
    out.append(
        judged_result(
            "volume_vs_trailing_median",
            [
                Measure("events", "events", a["valid"], clickstream_history(recorded, "valid")),
                Measure(
                    "customers",
                    "customers",
                    customers,
                    clickstream_history(recorded, CUSTOMERS_KEY),
                ),
            ],
            day,
            raw_contracts,
            raw_contracts.weekday_aware_volumes,
            ERROR,
        )
    )
    out.append(
        judged_share(
            "duplicate_share",
            "duplicate_share",
            WARN,
            numbers(
                {"duplicates": a["duplicate"], "attributed_records": a["valid"] + a["duplicate"]}
            ),
        )
    )

    late = outcome.quarantine.loc[outcome.quarantine["reason"] == "late"]
    by_date = (
        late["event_time"].dt.strftime("%Y-%m-%d").value_counts().sort_index()
        if len(late)
        else pd.Series(dtype="int64")
    )
    out.append(
        judged_share(
            "late_events",
            "late_share",
            WARN,
            numbers({"late": len(late)})
            | {
                "late_by_event_date": markdown_table(
                    by_date.rename_axis("event_date").rename("late").reset_index()
                )
            }
            | samples({"late": quarantine_sample(outcome.quarantine, ["late"], n)}, n),
        )
    )

    out.append(unread_files_result(tuple(getattr(listing, "unread", ())), n))
    over = outcome.quarantine.loc[outcome.quarantine["reason"] == OVER_CAP]
    notes = [
        {"object_key": key, **json.loads(bytes(note))}
        for key, note in zip(over["object_key"], over["raw_line"], strict=True)
    ]
    out.append(
        result(
            "objects_within_caps",
            over.empty,
            WARN,
            numbers({"objects_over_cap": len(over)})
            | {"objects_over_cap_detail": dg.MetadataValue.json(notes[:n])},
            description=None
            if over.empty
            else f"{len(over)} object(s) over a cap were quarantined whole, not read.",
        )
    )
    return out
