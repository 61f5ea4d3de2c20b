"""Labels, features and the daily model: the point-in-time heart of the graph.

Every time offset here is a partition mapping, so the UI shows exactly which days each
partition read: features look back, labels look forward, the model trains on the window of
days whose labels have matured.
"""

from collections.abc import Iterator, Mapping
from datetime import timedelta

import dagster as dg
import pandas as pd

from churn_assets import checks
from churn_assets.assets.realised import days_between, realised_record
from churn_assets.core.billing import active_at_end_of_day
from churn_assets.core.daily_model import code_version, train_daily_model
from churn_assets.core.features import FEATURE_COLUMNS, build_features
from churn_assets.core.labels import LabelsNotMature, compute_labels, label_summary
from churn_assets.engines.base import ClickstreamEngine
from churn_assets.metadata import markdown_table, numbers, table_metadata
from churn_assets.partitions import GraphPartitions, partition_date, window_input
from churn_assets.resources.model_store import ModelStore
from churn_assets.settings import PipelineSettings


def concat_days(by_day: Mapping[str, pd.DataFrame], day_column: str | None = None) -> pd.DataFrame:
    """Stack a {partition_key: table} window, optionally tagging rows with their day."""
    frames = []
    for key in sorted(by_day):
        frame = by_day[key]
        if day_column is not None:
            frame = frame.assign(**{day_column: pd.Timestamp(key)})
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def build_training_assets(
    settings: PipelineSettings, partitions: GraphPartitions
) -> list[dg.AssetsDefinition]:
    maturity = settings.label_maturity_days
    feature_lookback = settings.feature_window_days - 1
    training_start = -(maturity + settings.training_window_days - 1)
    contracts = checks.contract_settings(settings)

    @dg.asset(
        partitions_def=partitions.daily,
        group_name="ml",
        kinds={"pandas"},
        ins={"raw_billing": window_input(0, maturity + settings.label_fallback_days)},
        check_specs=checks.labels_specs(partitions.daily, contracts),
        description=(
            f"True churn label (and the naive one) of every customer active at the end of D, "
            f"from billing D .. D+{maturity} (horizon {settings.horizon_days} days, grace "
            f"{settings.grace_days} days); when the extract of D+{maturity} is missing or "
            f"rejected, up to the first valid one of the {settings.label_fallback_days} days "
            "after it (LANDING §4)."
        ),
    )
    def labels(context: dg.AssetExecutionContext, raw_billing: dict[str, pd.DataFrame]) -> Iterator:
        day = partition_date(context)
        try:
            table = compute_labels(
                concat_days(raw_billing), day, settings.horizon_days, settings.grace_days
            )
        except LabelsNotMature as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error
        summary = label_summary(table)
        yield dg.Output(
            table,
            metadata=table_metadata(table)
            | numbers(summary)
            | numbers({"billing_days_read": len(raw_billing)}),
        )
        yield from checks.labels_results(context, table, summary, settings.horizon_days, contracts)

    @dg.asset(
        partitions_def=partitions.daily,
        group_name="ml",
        kinds={"pandas"},
        ins={
            "raw_billing": window_input(-feature_lookback, 0),
            "sessions": window_input(-feature_lookback, 0),
        },
        check_specs=checks.features_specs(partitions.daily),
        description=(
            f"One row per customer active at the end of D, computed only from billing and "
            f"sessions of D-{feature_lookback} .. D."
        ),
    )
    def features(
        context: dg.AssetExecutionContext,
        raw_billing: dict[str, pd.DataFrame],
        sessions: dict[str, pd.DataFrame],
        engine: ClickstreamEngine,
        model_store: ModelStore,
    ) -> Iterator:
        day = partition_date(context)
        if day.isoformat() not in raw_billing:
            raise dg.Failure(f"raw_billing[{day}] is required for features[{day}]")
        activity = engine.customer_activity(
            concat_days(sessions), day, settings.feature_window_days
        )
        table = build_features(
            concat_days(raw_billing), activity, day, settings.feature_window_days
        )
        expected_days = min(settings.feature_window_days, (day - settings.history_start).days + 1)
        today = raw_billing[day.isoformat()]
        serving = model_store.serving_model(day)
        results = checks.features_results(
            context,
            table,
            today.loc[active_at_end_of_day(today, day), "customer_id"],
            serving.card | {"version": serving.version} if serving is not None else None,
            settings.feature_window_days,
            contracts,
            inputs={"raw_billing": set(raw_billing), "sessions": set(sessions)},
            first_day=settings.history_start,
        )
        blocked = checks.failed_blocking(results, context.assets_def.check_specs)
        if blocked:  # not materialized: neither scores nor a model may read these features
            yield from results
            raise dg.Failure(
                description=f"features[{day}] failed blocking checks {blocked}: not materialized",
                allow_retries=False,
            )
        yield dg.Output(
            table,
            metadata=table_metadata(table)
            | numbers(
                {
                    "customers": len(table),
                    "billing_days_read": len(raw_billing),
                    "session_days_read": len(sessions),
                    "days_missing": 2 * expected_days - len(raw_billing) - len(sessions),
                }
            )
            | {
                "feature_means": markdown_table(
                    table[list(FEATURE_COLUMNS)].mean().round(3).rename("mean").reset_index(),
                    max_rows=len(FEATURE_COLUMNS),
                )
            },
        )
        yield from results

    @dg.asset(
        partitions_def=partitions.model,
        group_name="ml",
        kinds={"xgboost"},
        io_manager_key="model_io_manager",
        ins={
            "features": window_input(training_start, -maturity),
            "labels": window_input(training_start, -maturity),
        },
        check_specs=checks.model_specs(partitions.model),
        description=(
            f"XGBoost churn model trained for D on up to {settings.training_window_days} days "
            f"of matured labels ending at D-{maturity} (from the first complete features on); "
            "validated and tested on later days and other customers, purged of training rows "
            f"within H+G = {maturity} days (no shared label window); promoted only if it beats "
            "the sessions heuristic and a logistic regression on the same rows."
        ),
    )
    def model(
        context: dg.AssetExecutionContext,
        features: dict[str, pd.DataFrame],
        labels: dict[str, pd.DataFrame],
        model_store: ModelStore,
    ) -> Iterator:
        day = partition_date(context)
        complete = settings.first_complete_features.isoformat()  # earlier: truncated windows
        features = {k: v for k, v in features.items() if k >= complete}
        labels = {k: v for k, v in labels.items() if k >= complete}
        matured = day - timedelta(days=maturity)  # online_metrics of later days: the future
        lookback = settings.training.gate.realised_lookback_days
        outcome = train_daily_model(
            day=day,
            features_by_day=features,
            labels_by_day=labels,
            incumbent=model_store.serving_model(day),
            config=settings.training,
            data_versions=_data_versions(context, ["features", "labels"]),
            code_version=code_version(),
            purge_days=maturity,
            realised=realised_record(
                context.instance, days_between(matured - timedelta(days=lookback - 1), matured)
            ),
        )
        yield dg.Output(
            outcome.artifact,
            metadata=numbers(outcome.metrics)
            | {
                "model_version": dg.MetadataValue.text(outcome.artifact.version),
                "promoted": dg.MetadataValue.bool(outcome.artifact.promoted),
                "training_days": dg.MetadataValue.int(len(features)),
                "model_card": dg.MetadataValue.json(outcome.artifact.card),
                "comparison": markdown_table(outcome.comparison),
                "decision": dg.MetadataValue.text(outcome.decision),
            }
            | {name: markdown_table(t, max_rows=50) for name, t in outcome.tables.items()},
        )
        yield from checks.model_results(context, outcome)

    return [labels, features, model]


def _data_versions(context: dg.AssetExecutionContext, inputs: list[str]) -> dict[str, str]:
    """Data version of every upstream partition the model read, for its card."""
    versions: dict[str, str] = {}
    for name in inputs:
        key = dg.AssetKey(name)
        for record in context.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=key,
                asset_partitions=list(context.asset_partition_keys_for_input(name)),
            ),
            limit=1000,
        ).records:
            materialization = record.asset_materialization
            if materialization is None:
                continue
            tag = (materialization.tags or {}).get("dagster/data_version", "")
            versions.setdefault(f"{name}[{materialization.partition}]", tag)
    return versions
