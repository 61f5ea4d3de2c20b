"""Checks of sessions, labels and features.

The features contract is blocking: features feed the model and the scores, so a day whose
feature table is not exactly the active customers, not in the serving model's schema, or
not finite must stop there. The others warn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from churn_assets.checks.common import (
    DEFAULT_CONTRACTS,
    ERROR,
    WARN,
    ContractSettings,
    result,
    samples,
    spec,
)
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.metadata import numbers

# sessions ---------------------------------------------------------------------------------

SESSION_COUNTS = {
    "n_page_views": "page_view",
    "n_hovers": "hover",
    "n_clicks": "click",
    "n_support_contacts": "support_contact",
}


def sessions_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "sessions",
            "well_formed",
            partitions_def,
            False,
            "No negative duration, no session ending before it starts or crossing midnight, "
            "every session starts on the partition day.",
        ),
        spec(
            "sessions",
            "event_counts_match",
            partitions_def,
            False,
            "Per customer and event type, the sessions hold exactly raw_clickstream's "
            "attributed events of the day.",
        ),
    ]


def malformed_sessions(sessions: pd.DataFrame, day: Any) -> dict[str, pd.DataFrame]:
    """Offending sessions per rule."""
    start, end = sessions["session_start"], sessions["session_end"]
    partition = pd.Timestamp(str(day), tz="UTC")
    masks = {
        "negative_duration": sessions["duration_s"] < 0,
        "ends_before_start": end < start,
        "crosses_midnight": start.dt.floor("D") != end.dt.floor("D"),
        "starts_on_other_day": start.dt.floor("D") != partition,
    }
    shown = ["customer_id", "session_id", "session_start", "session_end", "duration_s"]
    return {k: sessions.loc[m, shown] for k, m in masks.items()}


def event_count_mismatches(sessions: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Customers whose session counts differ from their attributed events (per type)."""
    attributed = events.loc[events["customer_id"].notna()]
    from_events = (
        pd.crosstab(attributed["customer_id"], attributed["event_type"])
        .reindex(columns=list(SESSION_COUNTS.values()), fill_value=0)
        .rename(columns={v: k for k, v in SESSION_COUNTS.items()})
    )
    from_events["n_events"] = from_events.sum(axis=1)
    columns = ["n_events", *SESSION_COUNTS]
    from_sessions = sessions.groupby("customer_id")[columns].sum()
    joined = from_events[columns].join(
        from_sessions, how="outer", lsuffix="_events", rsuffix="_sessions"
    )
    joined = joined.fillna(0).astype(np.int64)
    differs = np.zeros(len(joined), dtype=bool)
    for c in columns:
        differs |= (joined[f"{c}_events"] != joined[f"{c}_sessions"]).to_numpy()
    return joined.loc[differs].reset_index().rename(columns={"index": "customer_id"})


def sessions_results(
    context: dg.AssetExecutionContext,
    sessions: pd.DataFrame,
    events: pd.DataFrame,
    contracts: ContractSettings = DEFAULT_CONTRACTS,
) -> list[dg.AssetCheckResult]:
    n = contracts.sample_rows
    day = context.partition_key
    bad = malformed_sessions(sessions, day)
    mismatches = event_count_mismatches(sessions, events)
    return [
        result(
            "well_formed",
            all(v.empty for v in bad.values()),
            WARN,
            numbers({k: len(v) for k, v in bad.items()} | {"sessions": len(sessions)})
            | samples(bad, n),
        ),
        result(
            "event_counts_match",
            mismatches.empty,
            WARN,
            numbers(
                {
                    "events_sessionised": int(sessions["n_events"].sum()),
                    "attributed_events": int(events["customer_id"].notna().sum()),
                    "customers_mismatched": len(mismatches),
                }
            )
            | samples({"mismatched_customers": mismatches}, n),
        ),
    ]


# labels -----------------------------------------------------------------------------------


def labels_specs(
    partitions_def: Any, contracts: ContractSettings = DEFAULT_CONTRACTS
) -> list[dg.AssetCheckSpec]:
    low, high = contracts.monthly_churn_rate_bounds
    return [
        spec(
            "labels",
            "churn_rate_in_bounds",
            partitions_def,
            False,
            f"True churn rate consistent with a monthly churn rate in [{low:.1%}, {high:.0%}] "
            f"scaled to the horizon (binomial test at p={contracts.churn_rate_p_value}); the "
            "naive label's gap from the true one is reported.",
        ),
    ]


def horizon_bounds(monthly: tuple[float, float], horizon_days: int) -> tuple[float, float]:
    """Monthly (30-day) churn-rate bounds as bounds over ``horizon_days``."""
    scale = horizon_days / 30.0
    return tuple(1.0 - (1.0 - b) ** scale for b in monthly)  # type: ignore[return-value]


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), computed in log space (no scipy)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    j = np.arange(1, k + 1, dtype=np.float64)
    log_pmf0 = n * math.log1p(-p)
    steps = np.log((n - j + 1) / j) + math.log(p) - math.log1p(-p)
    log_pmf = np.concatenate([[log_pmf0], log_pmf0 + np.cumsum(steps)])
    top = log_pmf.max()
    return float(min(1.0, math.exp(top) * np.exp(log_pmf - top).sum()))


def churn_rate_verdict(
    n: int, churned: int, horizon_days: int, contracts: ContractSettings
) -> tuple[bool, dict[str, float]]:
    """Fails only when the observed count is implausible under both bounds' binomials."""
    low, high = horizon_bounds(contracts.monthly_churn_rate_bounds, horizon_days)
    p_low = binomial_cdf(churned, n, low)  # P(as few as observed | rate = low)
    p_high = 1.0 - binomial_cdf(churned - 1, n, high)  # P(as many as observed | rate = high)
    alpha = contracts.churn_rate_p_value
    passed = n == 0 or (p_low >= alpha and p_high >= alpha)
    return passed, {
        "horizon_lower_bound": low,
        "horizon_upper_bound": high,
        "p_too_low": p_low,
        "p_too_high": p_high,
        "p_value_threshold": alpha,
    }


def labels_results(
    context: dg.AssetExecutionContext,
    labels: pd.DataFrame,
    summary: Mapping[str, Any],
    horizon_days: int = 30,
    contracts: ContractSettings = DEFAULT_CONTRACTS,
) -> list[dg.AssetCheckResult]:
    n = len(labels)
    churned = int(labels["churned"].sum()) if n else 0
    passed, details = churn_rate_verdict(n, churned, horizon_days, contracts)
    disagree = labels.loc[labels["churned"] != labels["naive_churned"]] if n else labels
    return [
        result(
            "churn_rate_in_bounds",
            passed,
            WARN,
            numbers(dict(summary))
            | numbers(details)
            | numbers({"churned": churned, "naive_disagreements": len(disagree)})
            | samples({"naive_disagrees": disagree}, contracts.sample_rows),
            description=f"The naive label (cancelled_service of D+H) disagrees with the true "
            f"label for {len(disagree)} of {n} customers.",
        )
    ]


# features ---------------------------------------------------------------------------------

COUNT_FEATURES = (
    "support_calls_7d",
    "support_calls_28d",
    "sessions_7d",
    "sessions_28d",
    "active_days_28d",
    "page_views_28d",
    "subscribe_hovers_28d",
    "subscribe_clicks_28d",
    "subscribe_hovers_without_click_28d",
    "support_contacts_28d",
    "minutes_28d",
)
ONE_HOT_PLANS = ("plan_basic", "plan_plus", "plan_pro")


def features_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "features",
            "active_customers_exactly",
            partitions_def,
            True,
            "Exactly the customers active at the end of D in raw_billing[D], once each.",
        ),
        spec(
            "features",
            "schema_matches_serving_model",
            partitions_def,
            False,
            "Feature columns, in order and as float64, identical to the features the serving "
            "model was trained on (its model card); the code's feature list before any model. "
            "ERROR but not blocking: a deliberate feature change is a migration (backfill "
            "features over the training window, then model), which blocking would deadlock; "
            "until a matching model serves, scoring refuses the mismatch loudly.",
        ),
        spec(
            "features",
            "finite_values",
            partitions_def,
            True,
            "No NaN or infinity in any feature.",
        ),
        spec(
            "features",
            "inputs_complete",
            partitions_def,
            True,
            "The day's own inputs were there: raw_billing[D] and sessions[D] (a day whose "
            "clickstream was blocked must not be scored as if nobody had visited).",
        ),
        spec(
            "features",
            "window_complete",
            partitions_def,
            False,
            "Every day of the feature window has its billing extract and sessions; missing "
            "days are listed (their activity counts as zero).",
        ),
        spec(
            "features",
            "value_ranges",
            partitions_def,
            False,
            "Counts >= 0, 7-day counts <= window counts, seats >= 1, tenure >= 0, one plan "
            "per customer, visit_trend >= -1, days_since_last_session within the window + 1.",
        ),
    ]


def active_customer_differences(
    features: pd.DataFrame, active_ids: pd.Series
) -> dict[str, pd.DataFrame]:
    expected = pd.Index(active_ids.dropna().unique())
    present = features["customer_id"]
    return {
        "missing": pd.DataFrame({"customer_id": expected.difference(pd.Index(present))}),
        "not_active": pd.DataFrame(
            {"customer_id": pd.Index(present.unique()).difference(expected)}
        ),
        "duplicates": features.loc[present.duplicated(keep=False), ["customer_id"]],
    }


def schema_verdict(
    features: pd.DataFrame, expected_features: Sequence[str]
) -> tuple[bool, dict[str, Any]]:
    actual = [c for c in features.columns if c != "customer_id"]
    expected = list(expected_features)
    not_float = [c for c in actual if str(features[c].dtype) != "float64"]
    details = {
        "missing": [c for c in expected if c not in actual],
        "unexpected": [c for c in actual if c not in expected],
        "order_differs": actual != expected and sorted(actual) == sorted(expected),
        "not_float64": not_float,
        "customer_id_first": bool(len(features.columns) and features.columns[0] == "customer_id"),
    }
    passed = actual == expected and not not_float and details["customer_id_first"]
    return passed, details


def non_finite_rows(features: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    columns = [c for c in features.columns if c != "customer_id"]
    values = features[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    rows = bad.any(axis=1)
    shown = features.loc[rows, ["customer_id"]].copy()
    shown["columns"] = [
        ", ".join(np.asarray(columns)[mask]) for mask in bad[rows]
    ]  # only the offending rows
    return int(bad.sum()), shown


def range_violations(features: pd.DataFrame, window_days: int) -> dict[str, pd.DataFrame]:
    """Offending rows per value-range rule (rules on absent columns are skipped)."""
    f = features
    has = set(f.columns)
    masks: dict[str, pd.Series] = {}
    for c in COUNT_FEATURES:
        if c in has:
            masks[f"{c}_negative"] = f[c] < 0
    for short, long in (("sessions_7d", "sessions_28d"), ("support_calls_7d", "support_calls_28d")):
        if {short, long} <= has:
            masks[f"{short}_above_window"] = f[short] > f[long]
    if "active_days_28d" in has:
        masks["active_days_above_window"] = f["active_days_28d"] > window_days
    if "seats" in has:
        masks["seats_below_one"] = f["seats"] < 1
    if "mrr" in has:
        masks["mrr_negative"] = f["mrr"] < 0
    if "tenure_days" in has:
        masks["tenure_negative"] = f["tenure_days"] < 0
    if set(ONE_HOT_PLANS) <= has:
        plans = f[list(ONE_HOT_PLANS)]
        masks["not_one_plan"] = ~plans.isin([0.0, 1.0]).all(axis=1) | (plans.sum(axis=1) != 1)
    if "visit_trend" in has:
        masks["visit_trend_below_minus_one"] = f["visit_trend"] < -1
    if "days_since_last_session" in has:
        d = f["days_since_last_session"]
        masks["days_since_last_session_out_of_range"] = (d < 0) | (d > window_days + 1)
    if "reactivated_before" in has:
        masks["reactivated_before_not_boolean"] = ~f["reactivated_before"].isin([0.0, 1.0])
    return {k: f.loc[m.fillna(False).astype(bool)] for k, m in masks.items()}


def window_gaps(
    inputs: Mapping[str, set[str]], day: date, window_days: int, first_day: date
) -> dict[str, list[str]]:
    """Days of the window (not before the first day of history) missing from each input."""
    window = [day - timedelta(days=i) for i in range(window_days - 1, -1, -1)]
    expected = [d.isoformat() for d in window if d >= first_day]
    return {name: [k for k in expected if k not in loaded] for name, loaded in inputs.items()}


def features_results(
    context: dg.AssetExecutionContext,
    features: pd.DataFrame,
    active_ids: pd.Series,
    serving_card: Mapping[str, Any] | None = None,
    window_days: int = 28,
    contracts: ContractSettings = DEFAULT_CONTRACTS,
    *,
    inputs: Mapping[str, set[str]] | None = None,
    first_day: date | None = None,
) -> list[dg.AssetCheckResult]:
    """Every features check (a list: the asset looks for blocking failures).

    ``inputs``: the partition keys of each upstream window that were actually loaded.
    """
    n = contracts.sample_rows
    differences = active_customer_differences(features, active_ids)
    out = [
        result(
            "active_customers_exactly",
            all(v.empty for v in differences.values()),
            ERROR,
            numbers(
                {"rows": len(features), "active_customers": int(active_ids.dropna().nunique())}
                | {k: len(v) for k, v in differences.items()}
            )
            | samples(differences, n),
        )
    ]

    if serving_card is not None and "features" in serving_card:
        expected, source = list(serving_card["features"]), str(serving_card.get("version", "?"))
    else:
        expected, source = list(FEATURE_COLUMNS), "none yet: the code's FEATURE_COLUMNS"
    passed, details = schema_verdict(features, expected)
    out.append(
        result(
            "schema_matches_serving_model",
            passed,
            ERROR,
            {
                "serving_model": dg.MetadataValue.text(source),
                "expected_features": dg.MetadataValue.json(expected),
                "differences": dg.MetadataValue.json(details),
            },
        )
    )

    cells, rows = non_finite_rows(features)
    out.append(
        result(
            "finite_values",
            cells == 0,
            ERROR,
            numbers({"non_finite_cells": cells, "rows_affected": len(rows)})
            | samples({"non_finite": rows}, n),
        )
    )

    day = date.fromisoformat(context.partition_key)
    missing = window_gaps(inputs or {}, day, window_days, first_day or day)
    own = [name for name, days in missing.items() if day.isoformat() in days]
    out.append(
        result(
            "inputs_complete",
            inputs is None or not own,
            ERROR,
            {"missing_inputs_of_the_day": dg.MetadataValue.json(own)},
        )
    )
    out.append(
        result(
            "window_complete",
            not any(missing.values()),
            WARN,
            numbers({f"{name}_days_missing": len(days) for name, days in missing.items()})
            | {"missing_days": dg.MetadataValue.json(missing)},
        )
    )

    ranges = range_violations(features, window_days)
    out.append(
        result(
            "value_ranges",
            all(v.empty for v in ranges.values()),
            WARN,
            numbers({k: len(v) for k, v in ranges.items() if len(v)} | {"rules": len(ranges)})
            | samples(ranges, n),
        )
    )
    return out
