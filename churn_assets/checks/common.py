"""Shared pieces of the asset checks: severities, thresholds, spec and result builders, and
the trailing history that volume and share checks judge a day against.

Every check is partitioned (one evaluation per day) and carries metadata that explains a
failure on its own: the numbers compared, the threshold, and a sample of offending rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from churn_assets.core.baseline import Verdict, comparable_days, judge
from churn_assets.metadata import markdown_table, numbers
from churn_assets.resources.contracts import RawContracts
from churn_assets.settings import ContractSettings, PipelineSettings

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


DEFAULT_CONTRACTS = ContractSettings()
DEFAULT_RAW_CONTRACTS = RawContracts()


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


# judged against the stream's own history --------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One number of the day to judge: ``name`` in the metadata, ``limit`` the RawContracts
    field that holds its thresholds, ``history`` its values on earlier materialized days."""

    name: str
    limit: str
    value: float
    history: Mapping[date, float]
    sample_size: int | None = None


def judged_result(
    check_name: str,
    measures: Sequence[Measure],
    day: date,
    contracts: RawContracts,
    weekday_aware: bool,
    severity: dg.AssetCheckSeverity,
    extra: Mapping[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """A check that passes when every measure is within its bound and its history's margin.

    The metadata shows, per measure, the day's value, the baseline and spread of the
    comparable earlier days, the margin, the limit they give, the absolute bound and the
    settings in force, plus the history used: the UI explains each verdict on its own.
    """
    metadata: dict[str, Any] = {}
    verdicts: list[Verdict] = []
    used: dict[str, dict[date, float]] = {}
    for m in measures:
        comparable = comparable_days(m.history, day, weekday_aware)
        verdict = judge(m.value, comparable, day, contracts.tolerance(m.limit), m.sample_size)
        verdicts.append(verdict)
        used[m.name] = comparable
        bound = "ceiling" if verdict.above else "floor"
        metadata |= numbers(
            {
                m.name: m.value,
                f"{m.name}_baseline": verdict.baseline,
                f"{m.name}_spread": verdict.spread,
                f"{m.name}_margin": verdict.margin,
                f"{m.name}_limit": verdict.limit,
                f"{m.name}_{bound}": verdict.bound,
                f"{m.name}_ratio": verdict.ratio,
                f"{m.name}_history_days": verdict.history_days,
            }
        )
        metadata[f"{m.name}_settings"] = dg.MetadataValue.json(contracts.in_force(m.limit))
    history = pd.DataFrame(used).sort_index()
    history.index = [d.isoformat() for d in history.index]
    metadata["history"] = markdown_table(
        history.rename_axis("day").reset_index(), max_rows=contracts.history_days
    )
    metadata["compared_with"] = dg.MetadataValue.text(
        ("weekend days" if day.weekday() >= 5 else "weekdays") if weekday_aware else "every day"
    )
    return result(
        check_name,
        all(v.passed for v in verdicts),
        severity,
        metadata | dict(extra or {}),
        description=" ".join(v.explain(m.name) for v, m in zip(verdicts, measures, strict=True)),
    )
