"""Online metrics: how the scores issued on day D did, once the labels of D have matured.

The scores of D were issued with no knowledge of the outcome; the label of D (churn in
(D, D+H], not undone within the grace period) is final H+G days later. Joining the two
gives the realised quality of what sales actually received, to set next to the offline
estimate the model card promised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from churn_assets.core.drift import DRIFT_FAIL, DRIFT_WARN
from churn_assets.core.evaluation import (
    calibration_table,
    evaluate_predictions,
    heuristic_scores,
    logistic_from_card,
)


@dataclass(frozen=True)
class MonitoringConfig:
    """Thresholds of the monitoring checks (drift, skew, realised quality).

    PSI bins are fixed when the model is trained (its card holds the reference bins).
    """

    psi_warn: float = DRIFT_WARN
    psi_fail: float = DRIFT_FAIL
    skew_sample_size: int = 200
    skew_tolerance: float = 1e-6
    online_auc_tolerance: float = 0.05
    realised_failing_days: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.psi_warn <= self.psi_fail:
            raise ValueError(
                f"need 0 <= psi_warn <= psi_fail, got {self.psi_warn}, {self.psi_fail}"
            )
        if self.skew_sample_size < 1 or self.online_auc_tolerance < 0:
            raise ValueError("skew_sample_size must be >= 1 and online_auc_tolerance >= 0")
        if self.realised_failing_days < 1:
            raise ValueError("realised_failing_days must be >= 1")


@dataclass
class OnlineResult:
    metrics: dict[str, float]
    calibration: pd.DataFrame
    joined: pd.DataFrame  # customer_id, churn_probability, risk_tier, model_version, churned


def join_outcomes(
    scores: pd.DataFrame, labels: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Scores of D with the matured label of D, matched on customer_id (inner join).

    Both tables cover the customers active at the end of D, so they should match one to
    one; the counts of customers on one side only say whether they did.
    """
    left = scores[["customer_id", "churn_probability", "risk_tier", "model_version"]]
    right = labels[["customer_id", "churned"]].drop_duplicates()  # conflicting labels: error
    joined = left.merge(right, on="customer_id", how="inner", validate="many_to_one")
    joined = joined.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    counts = {
        "customers_scored": int(scores["customer_id"].nunique()),
        "customers_labelled": int(right["customer_id"].nunique()),
        "customers_matched": int(joined["customer_id"].nunique()),
    }
    counts["scored_without_label"] = counts["customers_scored"] - counts["customers_matched"]
    counts["labelled_not_scored"] = counts["customers_labelled"] - counts["customers_matched"]
    return joined, counts


def online_metrics(
    scores: pd.DataFrame,
    labels: pd.DataFrame,
    flagged_tier: str = "high",
    features: pd.DataFrame | None = None,
    logistic_card: Mapping[str, Any] | None = None,
) -> OnlineResult:
    """Realised quality of one day of scores.

    metrics: the counts of join_outcomes; realised_auc, realised_pr_auc, realised_log_loss,
    realised_brier, precision/lift/capture_top_decile, calibration_error, churn_rate,
    mean_predicted; flagged (customers in `flagged_tier`, the ones sales was told to act
    on), flagged_churn_share (share of them who churned) and flagged_capture (share of the
    churners who were flagged). NaN where a figure is undefined (e.g. AUC with no churner).
    With the features of D: realised_heuristic_auc (the one-column sessions heuristic) and,
    with the serving model's logistic baseline card, realised_logistic_auc, on the same rows.
    """
    joined, counts = join_outcomes(scores, labels)
    y = joined["churned"].to_numpy(dtype=np.float64)
    p = joined["churn_probability"].to_numpy(dtype=np.float64)
    m = evaluate_predictions(y, p)
    baselines = {"realised_heuristic_auc": math.nan, "realised_logistic_auc": math.nan}
    if features is not None:
        rows = joined[["customer_id"]].merge(features, on="customer_id", how="left")
        if rows.drop(columns="customer_id").isna().any(axis=None):
            raise ValueError("features of the day lack customers that were scored")
        baselines["realised_heuristic_auc"] = evaluate_predictions(y, heuristic_scores(rows))["auc"]
        if logistic_card is not None:
            logistic = logistic_from_card(logistic_card, rows)
            baselines["realised_logistic_auc"] = evaluate_predictions(y, logistic)["auc"]
    flagged = (joined["risk_tier"] == flagged_tier).to_numpy()
    n_flagged = int(flagged.sum())
    metrics: dict[str, float] = {
        **counts,
        "realised_auc": m["auc"],
        **baselines,
        "realised_pr_auc": m["pr_auc"],
        "realised_log_loss": m["log_loss"],
        "realised_brier": m["brier"],
        "precision_top_decile": m["precision_top_decile"],
        "lift_top_decile": m["lift_top_decile"],
        "capture_top_decile": m["capture_top_decile"],
        "calibration_error": m["calibration_error"],
        "churners": m["churners"],
        "churn_rate": m["positive_rate"],
        "mean_predicted": m["mean_predicted"],
        "flagged": n_flagged,
        "flagged_churn_share": float(y[flagged].mean()) if n_flagged else math.nan,
        "flagged_capture": float(y[flagged].sum() / y.sum()) if y.sum() > 0 else math.nan,
    }
    return OnlineResult(metrics=metrics, calibration=calibration_table(y, p), joined=joined)


def realised_quality(
    realised_auc: float, offline_auc: float | None, tolerance: float
) -> tuple[bool, dict[str, Any]]:
    """(passed, details): fails when realised AUC < offline estimate - tolerance.

    An undefined realised AUC (a day without churners) or a missing offline estimate cannot
    show a drop, so it passes; the details say why.
    """
    offline = math.nan if offline_auc is None else float(offline_auc)
    details: dict[str, Any] = {
        "realised_auc": realised_auc,
        "offline_auc": offline,
        "tolerance": tolerance,
        "auc_shortfall": offline - realised_auc,
    }
    if math.isnan(realised_auc) or math.isnan(offline):
        details["note"] = "realised or offline AUC undefined: nothing to compare"
        return True, details
    return bool(realised_auc >= offline - tolerance), details


@dataclass(frozen=True)
class RealisedDay:
    """What online_metrics measured on one matured day of scores."""

    day: str
    model_version: str
    realised_auc: float
    heuristic_auc: float
    offline_auc: float


@dataclass(frozen=True)
class RealisedRecord:
    """Recent matured days of realised quality, oldest first (the loop back into the gate)."""

    days: tuple[RealisedDay, ...]

    @classmethod
    def of(cls, days: Sequence[RealisedDay]) -> RealisedRecord:
        return cls(tuple(sorted(days, key=lambda d: d.day)))

    def shortfall(self, lookback_days: int) -> float:
        """Median of offline - realised AUC over the last `lookback_days` days (NaN: none)."""
        gaps = [d.offline_auc - d.realised_auc for d in self.days[-lookback_days:]]
        gaps = [g for g in gaps if not math.isnan(g)]
        return float(np.median(gaps)) if gaps else math.nan

    def days_below_heuristic(self, model_version: str | None = None) -> int:
        """Consecutive latest days (of `model_version`, when given) whose realised AUC is below
        the heuristic's on the same rows; a calendar gap or an undefined AUC ends the run."""
        run, previous = 0, None
        for d in reversed(self.days):
            if model_version is not None and d.model_version != model_version:
                break
            day = date.fromisoformat(d.day)
            if previous is not None and (previous - day).days != 1:
                break
            if not d.realised_auc < d.heuristic_auc:  # NaN ends the run
                break
            run, previous = run + 1, day
        return run

    def card(self) -> list[dict[str, Any]]:
        return [asdict(d) for d in self.days]
