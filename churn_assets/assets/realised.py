"""The realised record: what online_metrics measured on recent matured days, read back from
the instance so that the model's gate and the monitoring check can see production quality.

online_metrics[D] reads the scores of D, which read a model trained before D, so a declared
dependency from model back to online_metrics would be a cycle in the asset graph; the
record is read from the materializations' metadata instead (public instance API).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, timedelta

import dagster as dg

from churn_assets.core.online import RealisedDay, RealisedRecord

ONLINE_METRICS = dg.AssetKey("online_metrics")


def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _number(metadata: dict, key: str) -> float:
    value = metadata.get(key)
    raw = getattr(value, "value", None)
    return float(raw) if isinstance(raw, (int, float)) else math.nan


def _text(metadata: dict, key: str) -> str:
    value = metadata.get(key)
    return str(getattr(value, "value", "") or "")


def realised_record(instance: dg.DagsterInstance, partitions: Iterable[str]) -> RealisedRecord:
    """RealisedDay of every listed online_metrics partition that has been materialized."""
    keys = list(partitions)
    days: dict[str, RealisedDay] = {}
    if not keys:
        return RealisedRecord(())
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=ONLINE_METRICS, asset_partitions=keys), limit=len(keys) * 4
    ).records  # newest first: the first one seen per partition wins
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or materialization.partition in days:
            continue
        metadata = dict(materialization.metadata)
        days[str(materialization.partition)] = RealisedDay(
            day=str(materialization.partition),
            model_version=_text(metadata, "model_version"),
            realised_auc=_number(metadata, "realised_auc"),
            heuristic_auc=_number(metadata, "realised_heuristic_auc"),
            offline_auc=_number(metadata, "offline_auc"),
        )
    return RealisedRecord.of(days.values())
