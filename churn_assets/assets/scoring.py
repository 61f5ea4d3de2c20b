"""Scores: what sales and marketing read every morning."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pandas as pd

from churn_assets import checks
from churn_assets.checks import ml as ml_checks
from churn_assets.core.call_list import call_list_csv, ranked_call_list, read_call_list_csv
from churn_assets.core.scoring import score_with, top_risk_markdown
from churn_assets.metadata import numbers, table_metadata
from churn_assets.partitions import GraphPartitions, partition_date, window, window_input
from churn_assets.resources.exports import ExportStore
from churn_assets.resources.model_store import ModelStore
from churn_assets.settings import PipelineSettings


def build_scoring_assets(
    settings: PipelineSettings, partitions: GraphPartitions
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=partitions.scores,
        group_name="serving",
        kinds={"xgboost", "pandas"},
        deps=[dg.AssetDep("model", partition_mapping=window(-1, -1))],
        check_specs=checks.scores_specs(partitions.scores),
        description=(
            "Churn probability, risk tier, rank, top three reasons and model version for every "
            "customer active at the end of D, from the model serving on D (the newest promoted "
            "model trained before D, or the pinned one)."
        ),
    )
    def scores(
        context: dg.AssetExecutionContext, features: pd.DataFrame, model_store: ModelStore
    ) -> Iterator:
        day = partition_date(context)
        serving = model_store.serving_model(day)
        if serving is None:
            raise dg.Failure(
                description=f"no promoted (or pinned) model trained before {day} in "
                f"{model_store.store.url}: materialize model first",
                allow_retries=False,
            )
        table = score_with(serving, features, settings.feature_window_days)
        tiers = table["risk_tier"].value_counts()
        yield dg.Output(
            table,
            metadata=table_metadata(table)
            | numbers(
                {
                    "customers_scored": len(table),
                    "high_risk": int(tiers.get("high", 0)),
                    "medium_risk": int(tiers.get("medium", 0)),
                    "low_risk": int(tiers.get("low", 0)),
                    "mean_probability": float(table["churn_probability"].mean())
                    if len(table)
                    else None,
                    "threshold": float(serving.card["threshold"]),
                }
            )
            | {
                "model_version": dg.MetadataValue.text(serving.version),
                "top_20": dg.MetadataValue.md(top_risk_markdown(table, n=20)),
            },
        )
        yield from checks.scores_results(context, table, features, serving.version)

    @dg.asset(
        partitions_def=partitions.scores,
        group_name="serving",
        kinds={"csv", "duckdb"},
        ins={
            # {day: table} for D-7 .. D: today's scores, and last week's for the change
            "scores": window_input(-7, 0),
            "raw_billing": dg.AssetIn(),
        },
        check_specs=ml_checks.call_list_specs(partitions.scores),
        description=(
            "The day's ranked call list as a CSV file next to the warehouse "
            "(call_list/dt=D/call_list_D.csv): every scored customer, highest risk first, with "
            "account name, plan, seats, MRR, probability, tier, change since last week's score "
            "and the three reasons, for a CRM import or an e-mail job."
        ),
    )
    def call_list(
        context: dg.AssetExecutionContext,
        scores: dict[str, pd.DataFrame],
        raw_billing: pd.DataFrame,
        exports: ExportStore,
    ) -> Iterator:
        day = partition_date(context)
        today = scores.get(day.isoformat())
        if today is None:
            raise dg.Failure(f"scores[{day}] has not been materialized", allow_retries=False)
        last_week = scores.get((day - timedelta(days=7)).isoformat())
        table = ranked_call_list(today, raw_billing, last_week)
        key = exports.call_list_key(day.isoformat())
        exports.store.put(key, call_list_csv(table))
        written = read_call_list_csv(exports.store.get(key))
        yield dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(exports.store.uri(key)),
                "dagster/uri": dg.MetadataValue.path(exports.store.uri(key)),
                "dagster/row_count": dg.MetadataValue.int(len(written)),
                "compared_with_last_week": dg.MetadataValue.bool(last_week is not None),
            }
        )
        yield from ml_checks.call_list_results(written, today)

    return [scores, call_list]
