"""Scores: what sales and marketing read every morning."""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from churn_assets import checks
from churn_assets.core.scoring import score_with, top_risk_markdown
from churn_assets.metadata import numbers, table_metadata
from churn_assets.partitions import GraphPartitions, partition_date, window
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

    return [scores]
