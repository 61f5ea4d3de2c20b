"""Checks of the model, the scores and their monitoring (online quality, drift, skew)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import pandas as pd

from churn_assets.checks.common import ERROR, WARN, result, spec
from churn_assets.core.call_list import call_list_discrepancies, holds_exactly_the_scored
from churn_assets.core.online import RealisedRecord
from churn_assets.metadata import markdown_table, numbers

# model ------------------------------------------------------------------------------------

BASELINE_MARGIN = 0.0  # the candidate must beat the heuristic and the logistic regression


def model_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "model",
            "champion_gate",
            partitions_def,
            True,
            "On the honest validation rows (other customers, later days, no shared label "
            "window with training) the candidate serves only if its AUC clears the floor, beats "
            "the sessions heuristic (after the realised shortfall of recent models) and the "
            "logistic regression, and is not worse than the serving model by more than the "
            "tolerance (unless that model lost to the heuristic in production). When it fails, "
            "the previous serving model keeps scoring; `decision` says why.",
        ),
        spec(
            "model",
            "beats_baselines",
            partitions_def,
            False,
            "On the held-out test rows the candidate beats the base rate (AUC and log loss), "
            "the sessions heuristic and the logistic regression (AUC).",
        ),
    ]


def model_results(context: dg.AssetExecutionContext, outcome: Any) -> Iterator[dg.AssetCheckResult]:
    yield result(
        "champion_gate",
        outcome.artifact.promoted,
        ERROR,
        numbers(outcome.gate)
        | {
            "decision": dg.MetadataValue.text(outcome.decision),
            "candidate_version": dg.MetadataValue.text(outcome.artifact.version),
            "serving_version": dg.MetadataValue.text(
                str(outcome.artifact.card.get("incumbent_version") or "none")
            ),
            "comparison": markdown_table(outcome.comparison),
        },
    )
    passed, details = baseline_verdict(outcome.metrics)
    yield result("beats_baselines", passed, WARN, numbers(details))


def baseline_verdict(metrics: Mapping[str, float]) -> tuple[bool, dict[str, float]]:
    """Test-row comparison with the base rate, the heuristic and the logistic regression."""
    details = {
        "test_auc": metrics["test_auc"],
        "test_base_rate_auc": metrics["test_base_rate_auc"],
        "test_heuristic_auc": metrics["test_heuristic_auc"],
        "test_logistic_auc": metrics["test_logistic_auc"],
        "test_log_loss": metrics["test_log_loss"],
        "test_base_rate_log_loss": metrics["test_base_rate_log_loss"],
        "test_logistic_log_loss": metrics["test_logistic_log_loss"],
        "auc_margin_over_heuristic": metrics["test_auc"] - metrics["test_heuristic_auc"],
        "auc_margin_over_logistic": metrics["test_auc"] - metrics["test_logistic_auc"],
    }
    passed = (
        details["test_auc"] > details["test_base_rate_auc"]
        and details["test_log_loss"] < details["test_base_rate_log_loss"]
        and details["auc_margin_over_heuristic"] > BASELINE_MARGIN
        and details["auc_margin_over_logistic"] > BASELINE_MARGIN
    )
    return bool(passed), details  # NaN comparisons are False: an undefined AUC warns


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


# call list ---------------------------------------------------------------------------------


def call_list_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "call_list",
            "holds_exactly_the_scored_customers",
            partitions_def,
            False,
            "The CSV as written (read back from storage) lists every customer scored on D "
            "exactly once and nobody else.",
        ),
    ]


def call_list_results(written: pd.DataFrame, scores: pd.DataFrame) -> Iterator[dg.AssetCheckResult]:
    found = call_list_discrepancies(written, scores)
    missing, extra = list(found["missing"]), list(found["not_scored"])  # type: ignore[call-overload]
    yield result(
        "holds_exactly_the_scored_customers",
        holds_exactly_the_scored(found),
        ERROR,
        numbers(
            {
                "rows": found["rows"],
                "scored_customers": found["scored_customers"],
                "listed_twice": found["listed_twice"],
                "missing": len(missing),
                "not_scored": len(extra),
            }
        )
        | {
            "missing_sample": dg.MetadataValue.text(", ".join(missing[:10])),
            "not_scored_sample": dg.MetadataValue.text(", ".join(extra[:10])),
        },
    )


# online metrics ---------------------------------------------------------------------------


def online_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "online_metrics",
            "realised_quality",
            partitions_def,
            False,
            "Warns when the realised AUC of the day's scores falls below the serving model's "
            "offline (test) estimate by more than the tolerance.",
        ),
        spec(
            "online_metrics",
            "realised_beats_heuristic",
            partitions_def,
            False,
            "Errors when the serving model's realised AUC has been below the one-column "
            "heuristic's (fewer sessions, more risk) on the same matured customers for several "
            "days running: in production the model is worse than no model. The next model's "
            "gate then does not defend it.",
        ),
    ]


def online_results(
    context: dg.AssetExecutionContext, passed: bool, details: Mapping[str, Any]
) -> Iterator[dg.AssetCheckResult]:
    values = {k: v for k, v in details.items() if k != "note"}
    metadata = numbers(values)
    if "note" in details:
        metadata["note"] = dg.MetadataValue.text(str(details["note"]))
    yield result("realised_quality", passed, WARN, metadata)


def heuristic_results(
    record: RealisedRecord, model_version: str, failing_days: int
) -> Iterator[dg.AssetCheckResult]:
    """ERROR once the serving model lost to the heuristic on `failing_days` days running."""
    run = record.days_below_heuristic(model_version)
    today = record.days[-1]
    table = pd.DataFrame(
        [
            {
                "day": d.day,
                "model_version": d.model_version,
                "realised_auc": d.realised_auc,
                "heuristic_auc": d.heuristic_auc,
                "offline_auc": d.offline_auc,
            }
            for d in record.days
        ]
    ).round(4)
    yield result(
        "realised_beats_heuristic",
        run < failing_days,
        ERROR,
        numbers(
            {
                "realised_auc": today.realised_auc,
                "heuristic_auc": today.heuristic_auc,
                "margin_over_heuristic": today.realised_auc - today.heuristic_auc,
                "days_below_heuristic": run,
                "failing_days": failing_days,
            }
        )
        | {"recent_days": markdown_table(table, max_rows=len(table))},
    )


# drift and skew ---------------------------------------------------------------------------


def drift_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "drift",
            "feature_drift",
            partitions_def,
            False,
            "Population stability index of every feature against the serving model's training "
            "reference: warns above the warn level, errors above the fail level.",
        ),
        spec(
            "drift",
            "score_drift",
            partitions_def,
            False,
            "Population stability index of the day's scores against the serving model's "
            "out-of-sample scores at training time: warns / errors like feature_drift.",
        ),
        spec(
            "drift",
            "training_serving_skew",
            partitions_def,
            False,
            "A seeded sample of the served features, recomputed from raw billing and sessions "
            "with the embedded reference code, must match.",
        ),
    ]


def _drift_result(
    name: str, worst: float, warn: float, fail: float, values: dict, extra: dict
) -> dg.AssetCheckResult:
    """Passed at or below `warn`; failed with WARN severity up to `fail`, ERROR above it."""
    metadata = numbers(values | {"warn": warn, "fail": fail}) | extra
    if math.isnan(worst):
        note = "no reference in the serving model's card, or no rows: nothing to compare"
        return result(name, True, WARN, metadata | {"note": dg.MetadataValue.text(note)})
    return result(name, worst <= warn, ERROR if worst > fail else WARN, metadata)


def drift_results(
    context: dg.AssetExecutionContext,
    feature_psi: pd.DataFrame,
    score_psi: float,
    skew_summary: Mapping[str, int],
    skew_columns: pd.DataFrame,
    warn: float,
    fail: float,
) -> Iterator[dg.AssetCheckResult]:
    known = feature_psi.loc[feature_psi["psi"].notna()]
    worst = float(known["psi"].max()) if len(known) else math.nan
    values = {
        "max_psi": worst,
        "features_warn": int((feature_psi["status"] == "warn").sum()),
        "features_fail": int((feature_psi["status"] == "fail").sum()),
    }
    extra = {"psi": markdown_table(feature_psi, max_rows=len(feature_psi))}
    if len(known):
        worst_name = str(known.loc[known["psi"].idxmax(), "column"])
        extra["worst_feature"] = dg.MetadataValue.text(worst_name)
    yield _drift_result("feature_drift", worst, warn, fail, values, extra)
    yield _drift_result("score_drift", score_psi, warn, fail, {"score_psi": score_psi}, {})
    bad = skew_summary["mismatches"] + skew_summary["missing_from_served"]
    bad += skew_summary["missing_from_recomputed"]
    mismatching = skew_columns.loc[skew_columns["mismatches"] > 0]
    yield result(
        "training_serving_skew",
        bad == 0,
        ERROR,
        numbers(dict(skew_summary))
        | {"mismatching_columns": markdown_table(mismatching, max_rows=len(skew_columns))},
    )
