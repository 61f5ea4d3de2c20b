"""Shared pieces of the asset checks: severities, thresholds, spec and result builders, and
the trailing history that volume checks compare a day with.

Every check is partitioned (one evaluation per day) and carries metadata that explains a
failure on its own: the numbers compared, the threshold, and a sample of offending rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median
from typing import Any

import dagster as dg
import pandas as pd

from churn_assets.metadata import markdown_table
from churn_assets.settings import ContractSettings, PipelineSettings

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


DEFAULT_CONTRACTS = ContractSettings()


def contract_settings(settings: PipelineSettings) -> ContractSettings:
    """The contract thresholds of a PipelineSettings."""
    return settings.contracts


def spec(
    asset: str, name: str, partitions_def: Any, blocking: bool, description: str
) -> dg.AssetCheckSpec:
    """A partitioned check spec: each day of the asset gets its own evaluation."""
    return dg.AssetCheckSpec(
        name,
        asset=asset,
        partitions_def=partitions_def,
        blocking=blocking,
        description=description,
    )


def result(
    name: str,
    passed: bool,
    severity: dg.AssetCheckSeverity,
    metadata: dict[str, Any],
    description: str | None = None,
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=bool(passed),
        severity=severity,
        metadata=metadata,
        description=description,
    )


PERSONAL_COLUMNS: tuple[str, ...] = ("account_name",)
"""Personal data: never shown in check samples (the ids locate the rows)."""


def samples(frames: Mapping[str, pd.DataFrame], max_rows: int) -> dict[str, dg.MetadataValue]:
    """``<name>_sample`` markdown tables of the non-empty frames (the offending rows), escaped
    and without personal columns."""
    return {
        f"{k}_sample": markdown_table(
            v.drop(columns=list(PERSONAL_COLUMNS), errors="ignore"), max_rows
        )
        for k, v in frames.items()
        if len(v)
    }


def failed_blocking(
    results: Iterable[dg.AssetCheckResult], specs: Sequence[dg.AssetCheckSpec]
) -> list[str]:
    """Names of the blocking checks among ``results`` that failed with ERROR severity."""
    blocking = {s.name for s in specs if s.blocking}
    return [
        r.check_name or ""
        for r in results
        if r.check_name in blocking and not r.passed and r.severity == ERROR
    ]


# trailing history -------------------------------------------------------------------------


def trailing_days(day: date, window_days: int, first_day: date | None = None) -> list[date]:
    """The ``window_days`` days before ``day`` (oldest first), not before ``first_day``."""
    days = [day - timedelta(days=i) for i in range(window_days, 0, -1)]
    return [d for d in days if first_day is None or d >= first_day]


def materialized_numbers(
    instance: dg.DagsterInstance, asset: str, days: Sequence[date], keys: Sequence[str]
) -> dict[date, dict[str, float]]:
    """Numeric metadata ``keys`` of the latest materialization of each day of ``asset``.

    Read from the instance's event log (one indexed lookup per day; no table is read):
    these are the numbers the asset recorded and the UI plots. Days never materialized are
    absent.
    """
    found: dict[date, dict[str, float]] = {}
    for day in days:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day.isoformat()]),
            limit=1,
        ).records
        materialization = records[0].asset_materialization if records else None
        if materialization is None:
            continue
        found[day] = {
            k: float(materialization.metadata[k].value)  # type: ignore[arg-type]
            for k in keys
            if k in materialization.metadata
            and isinstance(materialization.metadata[k].value, (int, float))
        }
    return found


@dataclass(frozen=True)
class VolumeVerdict:
    passed: bool
    baseline: float | None
    ratio: float | None
    history_days: int


def volume_verdict(
    current: float,
    history: Mapping[date, float],
    day: date,
    max_drop_share: float,
    min_history_days: int,
    weekly_seasonality: bool = False,
) -> VolumeVerdict:
    """Is ``current`` at least (1 - max_drop_share) x the median of ``history``?

    With ``weekly_seasonality`` a weekday is compared with the weekdays of the window and a
    weekend day with its weekend days (B2B traffic roughly halves at weekends, so a plain
    7-day median would flag every Saturday or hide a real drop on a Tuesday).
    """
    values = [
        v
        for d, v in history.items()
        if not weekly_seasonality or (d.weekday() >= 5) == (day.weekday() >= 5)
    ]
    if len(values) < min_history_days:
        return VolumeVerdict(True, None, None, len(values))
    baseline = float(median(values))
    ratio = current / baseline if baseline > 0 else None
    passed = baseline <= 0 or current >= (1.0 - max_drop_share) * baseline
    return VolumeVerdict(passed, baseline, ratio, len(values))
