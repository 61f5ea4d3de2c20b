"""Daily UTC partitions and the partition mappings that carry the graph's time logic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from churn_assets.resources.warehouse import WINDOW_INPUT
from churn_assets.settings import PipelineSettings


def daily_from(start: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")


def window(start_offset: int, end_offset: int) -> dg.TimeWindowPartitionMapping:
    """Days D+start_offset .. D+end_offset; days before the start of history are skipped."""
    return dg.TimeWindowPartitionMapping(
        start_offset=start_offset,
        end_offset=end_offset,
        allow_nonexistent_upstream_partitions=True,
    )


def window_input(start_offset: int, end_offset: int) -> dg.AssetIn:
    """An input loaded as {partition_key: value} over a window of days (missing days skipped)."""
    return dg.AssetIn(
        partition_mapping=window(start_offset, end_offset), metadata={WINDOW_INPUT: True}
    )


@dataclass(frozen=True)
class GraphPartitions:
    """Partition definitions of the graph, built from the settings in one place."""

    daily: dg.DailyPartitionsDefinition
    model: dg.DailyPartitionsDefinition
    scores: dg.DailyPartitionsDefinition

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> GraphPartitions:
        return cls(
            daily=daily_from(settings.history_start),
            model=daily_from(settings.model_start),
            scores=daily_from(settings.scores_start),
        )


def partition_date(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)
