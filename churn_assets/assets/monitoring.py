"""Monitoring: what the scores of D turned out to be worth, and whether D still looks like
the data the serving model was trained on.

``online_metrics[D]`` joins the scores issued on D with the labels of D, so it can only run
once labels[D] has matured (H+G days later). ``drift[D]`` runs with the scores of D: the
population stability index of every feature and of the score against the reference in the
serving model's card, and a training/serving skew check on a sample of customers.
"""

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from churn_assets.assets.realised import days_between, realised_record
from churn_assets.assets.training import concat_days
from churn_assets.checks import ml as ml_checks
from churn_assets.core.daily_model import ModelArtifact, partition_of_version
from churn_assets.core.drift import (
    compare_features,
    drift_status,
    drift_table,
    drifting_references,
    psi_against,
    sample_customers,
)
from churn_assets.core.features import FEATURE_COLUMNS, build_features
from churn_assets.core.online import (
    RealisedDay,
    RealisedRecord,
    online_metrics,
    realised_quality,
)
from churn_assets.core.sessions import customer_activity
from churn_assets.metadata import markdown_table, numbers, table_metadata
from churn_assets.partitions import GraphPartitions, partition_date, window_input
from churn_assets.resources.model_store import ModelStore
from churn_assets.settings import PipelineSettings


def model_of_scores(model_store: ModelStore, scores: pd.DataFrame) -> ModelArtifact | None:
    """The stored model whose version issued these scores (the most frequent one)."""
    versions = scores["model_version"].dropna()
    if versions.empty:
        return None
    version = str(versions.value_counts().sort_index().idxmax())
    try:
        artifact = model_store.load(partition_of_version(version))
    except ValueError:
        return None
    return artifact if artifact is not None and artifact.version == version else None


def offline_estimate(artifact: ModelArtifact | None) -> dict[str, float]:
    """What the card promised on its held-out test days (older cards: validation figures)."""
    if artifact is None:
        return {}
    card = artifact.card
    estimate = card.get("offline_estimate") or card.get("metrics") or {}
    keys = ("auc", "precision_top_decile", "flagged_churn_share", "calibration_error")
    return {
        f"offline_{k}": float(estimate[k]) if estimate.get(k) is not None else math.nan
        for k in keys
    }


def build_monitoring_assets(
    settings: PipelineSettings, partitions: GraphPartitions
) -> list[dg.AssetsDefinition]:
    config = settings.monitoring
    lookback = settings.feature_window_days - 1

    @dg.asset(
        name="online_metrics",
        partitions_def=partitions.scores,
        group_name="monitoring",
        kinds={"pandas"},
        ins={"scores": dg.AssetIn(), "labels": dg.AssetIn(), "features": dg.AssetIn()},
        check_specs=ml_checks.online_specs(partitions.scores),
        description=(
            "Realised quality of the scores issued on D, once the labels of D have matured "
            f"({settings.label_maturity_days} days later): AUC, precision in the top decile, "
            "calibration and the share of flagged customers who churned, next to the serving "
            "model's offline estimate and the realised AUC of the sessions heuristic and the "
            "logistic regression on the same customers."
        ),
    )
    def online_metrics_asset(
        context: dg.AssetExecutionContext,
        scores: pd.DataFrame,
        labels: pd.DataFrame,
        features: pd.DataFrame,
        model_store: ModelStore,
    ) -> Iterator:
        day = partition_date(context)
        artifact = model_of_scores(model_store, scores)
        logistic = (
            artifact.card.get("baselines", {}).get("logistic_regression") if artifact else None
        )
        online = online_metrics(
            scores,
            labels,
            features=features,
            logistic_card=logistic if logistic and "mean" in logistic else None,
        )
        offline = offline_estimate(artifact)
        passed, details = realised_quality(
            online.metrics["realised_auc"],
            offline.get("offline_auc"),
            config.online_auc_tolerance,
        )
        version = artifact.version if artifact else "unknown"
        today = RealisedDay(
            day.isoformat(),
            version,
            online.metrics["realised_auc"],
            online.metrics["realised_heuristic_auc"],
            offline.get("offline_auc", math.nan),
        )
        earlier = days_between(day - timedelta(days=config.realised_failing_days - 1), day)[:-1]
        record = RealisedRecord.of([*realised_record(context.instance, earlier).days, today])
        summary = pd.DataFrame(
            [{"day": pd.Timestamp(day), "model_version": version, **online.metrics, **offline}]
        )
        yield dg.Output(
            {"summary": summary, "calibration": online.calibration},
            metadata=table_metadata(summary)
            | numbers(online.metrics | offline | {"auc_shortfall": details["auc_shortfall"]})
            | {
                "model_version": dg.MetadataValue.text(version),
                "calibration": markdown_table(online.calibration.round(4)),
            },
        )
        yield from ml_checks.online_results(context, passed, details)
        yield from ml_checks.heuristic_results(record, version, config.realised_failing_days)

    @dg.asset(
        name="drift",
        partitions_def=partitions.scores,
        group_name="monitoring",
        kinds={"pandas"},
        ins={
            "features": dg.AssetIn(),
            "scores": dg.AssetIn(),
            "raw_billing": window_input(-lookback, 0),
            "sessions": window_input(-lookback, 0),
        },
        check_specs=ml_checks.drift_specs(partitions.scores),
        description=(
            "Population stability index of every feature and of the score on D against the "
            f"serving model's training reference (warn > {config.psi_warn}, fail > "
            f"{config.psi_fail}), and a skew check: {config.skew_sample_size} served customers' "
            "features recomputed from raw billing and sessions."
        ),
    )
    def drift_asset(
        context: dg.AssetExecutionContext,
        features: pd.DataFrame,
        scores: pd.DataFrame,
        raw_billing: dict[str, pd.DataFrame],
        sessions: dict[str, pd.DataFrame],
        model_store: ModelStore,
    ) -> Iterator:
        day = partition_date(context)
        artifact = model_of_scores(model_store, scores)
        reference: dict[str, Any] = (artifact.card.get("reference") if artifact else None) or {}
        if reference.get("features"):
            feature_psi = drift_table(
                drifting_references(reference["features"]),
                features,
                config.psi_warn,
                config.psi_fail,
            )
        else:
            feature_psi = pd.DataFrame(
                {"column": pd.Series(dtype=object), "psi": pd.Series(dtype=np.float64)}
            ).assign(status=pd.Series(dtype=object))
        score_psi = (
            psi_against(reference["score"], scores["churn_probability"])
            if reference.get("score")
            else math.nan
        )

        sample = sample_customers(features["customer_id"], config.skew_sample_size, day.toordinal())
        billing = concat_days(raw_billing)
        billing = billing.loc[billing["customer_id"].isin(sample)]
        session_rows = concat_days(sessions)
        if "customer_id" in session_rows:
            session_rows = session_rows.loc[session_rows["customer_id"].isin(sample)]
        activity = customer_activity(session_rows, day, settings.feature_window_days)
        recomputed = build_features(billing, activity, day, settings.feature_window_days)
        skew_columns, skew = compare_features(
            features, recomputed, FEATURE_COLUMNS, sample, config.skew_tolerance
        )

        psi_rows = pd.concat(
            [
                feature_psi,
                pd.DataFrame(
                    {
                        "column": ["churn_probability"],
                        "psi": [score_psi],
                        "status": [drift_status(score_psi, config.psi_warn, config.psi_fail)],
                    }
                ),
            ],
            ignore_index=True,
        )
        yield dg.Output(
            {"psi": psi_rows, "skew": skew_columns},
            metadata=numbers(dict(zip("psi_" + psi_rows["column"], psi_rows["psi"], strict=True)))
            | numbers(skew)
            | {
                "model_version": dg.MetadataValue.text(artifact.version if artifact else "unknown"),
                "psi": markdown_table(psi_rows.round(4), max_rows=len(psi_rows)),
            },
        )
        yield from ml_checks.drift_results(
            context,
            feature_psi,
            score_psi,
            skew,
            skew_columns,
            config.psi_warn,
            config.psi_fail,
        )

    return [online_metrics_asset, drift_asset]
