"""Sessions: one row per customer session that started on day D."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from churn_assets import checks
from churn_assets.engines.base import ClickstreamEngine
from churn_assets.metadata import numbers, table_metadata
from churn_assets.partitions import GraphPartitions
from churn_assets.settings import PipelineSettings


def build_activity_assets(
    settings: PipelineSettings, partitions: GraphPartitions
) -> list[dg.AssetsDefinition]:
    contracts = checks.contract_settings(settings)

    @dg.asset(
        partitions_def=partitions.daily,
        group_name="clickstream",
        kinds={"pandas"},
        check_specs=checks.sessions_specs(partitions.daily),
        description=(
            "One row per session started on D: a customer's events split by gaps of more "
            "than 30 minutes and at midnight UTC."
        ),
    )
    def sessions(
        context: dg.AssetExecutionContext,
        raw_clickstream: dict[str, pd.DataFrame],
        engine: ClickstreamEngine,
    ) -> Iterator:
        events = raw_clickstream["events"]
        table = engine.sessionise(events, settings.session_gap)
        yield dg.Output(
            table,
            metadata=table_metadata(table)
            | numbers(
                {
                    "sessions": len(table),
                    "customers": int(table["customer_id"].nunique()),
                    "events_sessionised": int(table["n_events"].sum()),
                    "median_duration_s": float(table["duration_s"].median())
                    if len(table)
                    else None,
                    "subscribe_hovers": int(table["n_subscribe_hovers"].sum()),
                    "subscribe_clicks": int(table["n_subscribe_clicks"].sum()),
                }
            ),
        )
        yield from checks.sessions_results(context, table, events, contracts)

    return [sessions]
