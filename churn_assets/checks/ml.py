"""Checks of the model and the scores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from churn_assets.checks.common import ERROR, result, spec
from churn_assets.metadata import numbers

# model ------------------------------------------------------------------------------------


def model_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "model",
            "champion_gate",
            partitions_def,
            True,
            "The candidate serves only if it clears the quality floor and is not worse than "
            "the serving model on the same validation data by more than the tolerance.",
        ),
    ]


def model_results(context: dg.AssetExecutionContext, outcome: Any) -> Iterator[dg.AssetCheckResult]:
    yield result(
        "champion_gate",
        outcome.artifact.promoted,
        ERROR,
        numbers(outcome.gate) | {"decision": dg.MetadataValue.text(outcome.decision)},
    )


# scores -----------------------------------------------------------------------------------


def scores_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "scores",
            "scores_sane",
            partitions_def,
            False,
            "Probabilities in [0, 1], every active customer scored once, model version set.",
        ),
    ]


def scores_results(
    context: dg.AssetExecutionContext,
    scores: pd.DataFrame,
    features: pd.DataFrame,
    model_version: str,
) -> Iterator[dg.AssetCheckResult]:
    probability = scores["churn_probability"]
    out_of_range = int(((probability < 0) | (probability > 1) | probability.isna()).sum())
    missing = len(set(features["customer_id"]) - set(scores["customer_id"]))
    duplicates = int(scores["customer_id"].duplicated().sum())
    unversioned = int((scores["model_version"] != model_version).sum())
    yield result(
        "scores_sane",
        out_of_range == 0 and missing == 0 and duplicates == 0 and unversioned == 0,
        ERROR,
        numbers(
            {
                "out_of_range": out_of_range,
                "customers_not_scored": missing,
                "scored_twice": duplicates,
                "wrong_model_version": unversioned,
            }
        ),
    )
