"""Checks of sessions, labels and features."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from churn_assets.checks.common import ERROR, WARN, result, spec
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.metadata import numbers

CHURN_RATE_BOUNDS = (0.005, 0.5)

# sessions ---------------------------------------------------------------------------------


def sessions_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "sessions",
            "consistent_with_events",
            partitions_def,
            False,
            "No negative duration, no session crossing midnight, event counts match "
            "raw_clickstream's attributed events.",
        ),
    ]


def sessions_results(
    context: dg.AssetExecutionContext, sessions: pd.DataFrame, events: pd.DataFrame
) -> Iterator[dg.AssetCheckResult]:
    attributed = int(events["customer_id"].notna().sum())
    negative = int((sessions["duration_s"] < 0).sum())
    crossing = int(
        (sessions["session_start"].dt.floor("D") != sessions["session_end"].dt.floor("D")).sum()
    )
    sessionised = int(sessions["n_events"].sum())
    yield result(
        "consistent_with_events",
        negative == 0 and crossing == 0 and sessionised == attributed,
        WARN,
        numbers(
            {
                "negative_durations": negative,
                "crossing_midnight": crossing,
                "events_sessionised": sessionised,
                "attributed_events": attributed,
            }
        ),
    )


# labels -----------------------------------------------------------------------------------


def labels_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    low, high = CHURN_RATE_BOUNDS
    return [
        spec(
            "labels",
            "churn_rate_in_bounds",
            partitions_def,
            False,
            f"True churn rate within [{low:.1%}, {high:.0%}]; the naive label's gap reported.",
        ),
    ]


def labels_results(
    context: dg.AssetExecutionContext, labels: pd.DataFrame, summary: dict[str, Any]
) -> Iterator[dg.AssetCheckResult]:
    low, high = CHURN_RATE_BOUNDS
    rate = float(summary["true_rate"])
    yield result(
        "churn_rate_in_bounds",
        low <= rate <= high,
        WARN,
        numbers(summary) | numbers({"lower_bound": low, "upper_bound": high}),
    )


# features ---------------------------------------------------------------------------------


def features_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "features",
            "active_customers_exactly",
            partitions_def,
            True,
            "Exactly the customers active at the end of D, once each.",
        ),
        spec(
            "features", "finite_values", partitions_def, True, "No NaN or infinity in any feature."
        ),
    ]


def features_results(
    context: dg.AssetExecutionContext, features: pd.DataFrame, active_ids: pd.Series
) -> Iterator[dg.AssetCheckResult]:
    expected = set(active_ids)
    present = set(features["customer_id"])
    duplicates = int(features["customer_id"].duplicated().sum())
    yield result(
        "active_customers_exactly",
        present == expected and duplicates == 0,
        ERROR,
        numbers(
            {
                "rows": len(features),
                "active_customers": len(expected),
                "missing": len(expected - present),
                "not_active": len(present - expected),
                "duplicates": duplicates,
            }
        ),
    )
    values = features[list(FEATURE_COLUMNS)].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    yield result(
        "finite_values",
        not bad.any(),
        ERROR,
        numbers({"non_finite_cells": int(bad.sum())}),
    )
