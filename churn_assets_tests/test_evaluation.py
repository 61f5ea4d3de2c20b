"""Top decile, calibration, per-slice metrics and the logistic baseline, on hand-built inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from churn_assets.core.evaluation import (
    calibration_error,
    calibration_table,
    evaluate_predictions,
    evaluate_ranking,
    fit_logistic_baseline,
    heuristic_scores,
    logistic_from_card,
    plan_segment,
    slice_metrics,
    tenure_cohort,
    top_decile,
)
from churn_assets.core.features import FEATURE_COLUMNS

# ---------------------------------------------------------------- top decile


def test_top_decile_of_ten_rows_is_the_single_best_score() -> None:
    y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 1])
    p = np.linspace(0.9, 0.0, 10)  # row 0 has the highest score and churned
    m = top_decile(y, p)
    assert m["precision_top_decile"] == 1.0
    assert m["lift_top_decile"] == pytest.approx(1 / 0.3)
    assert m["capture_top_decile"] == pytest.approx(1 / 3)


def test_top_decile_of_twenty_rows_and_row_order_does_not_matter() -> None:
    y = np.array([1, 0] + [0] * 15 + [1, 1, 1])  # 4 churners, one of them in the top two
    p = np.linspace(0.99, 0.01, 20)
    m = top_decile(y, p)
    assert m["precision_top_decile"] == 0.5
    assert m["lift_top_decile"] == pytest.approx(0.5 / 0.2)
    assert m["capture_top_decile"] == pytest.approx(1 / 4)
    order = np.random.default_rng(0).permutation(20)
    assert top_decile(y[order], p[order]) == m


def test_top_decile_shares_places_among_tied_scores() -> None:
    # 20 rows -> 2 places; 0.9 takes one, three rows tied at 0.5 share the other (1/3 each).
    p = np.array([0.9, 0.5, 0.5, 0.5] + [0.1] * 16)
    y = np.array([0, 1, 1, 0] + [0] * 15 + [1])
    m = top_decile(y, p)
    assert m["precision_top_decile"] == pytest.approx((2 / 3) / 2)
    assert m["capture_top_decile"] == pytest.approx((2 / 3) / 3)
    # every score equal: the top is a random draw, lift 1
    flat = top_decile(y, np.full(20, 0.3))
    assert flat["lift_top_decile"] == pytest.approx(1.0)
    assert flat["capture_top_decile"] == pytest.approx(0.1)


def test_top_decile_size_is_not_fooled_by_float_rounding() -> None:
    # 0.1 * 30 = 3.0000000000000004: the top must hold 3 rows, not 4.
    y = np.array([1, 1, 1, 0] + [0] * 26)
    m = top_decile(y, np.linspace(1.0, 0.0, 30))
    assert m["precision_top_decile"] == 1.0


def test_top_decile_without_churners() -> None:
    m = top_decile(np.zeros(10), np.linspace(0, 1, 10))
    assert m["precision_top_decile"] == 0.0
    assert math.isnan(m["lift_top_decile"]) and math.isnan(m["capture_top_decile"])


# ---------------------------------------------------------------- calibration


def test_calibration_table_uniform_bins_by_hand() -> None:
    p = np.array([0.05, 0.15, 0.15, 0.95, 0.5, 1.0])
    y = np.array([0, 0, 1, 1, 1, 1])
    t = calibration_table(y, p, n_bins=10, strategy="uniform")
    assert t["bin"].tolist() == [1, 2, 6, 10]  # empty bins left out; 0.5 opens bin 6
    assert t["n"].tolist() == [1, 2, 1, 2]  # 1.0 falls in the last (closed) bin
    assert t["churners"].tolist() == [0, 1, 1, 2]
    assert t["mean_predicted"].tolist() == pytest.approx([0.05, 0.15, 0.5, 0.975])
    assert t["observed_rate"].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0])
    assert t["lower"].tolist() == pytest.approx([0.0, 0.1, 0.5, 0.9])
    # ECE: (1 * .05 + 2 * .35 + 1 * .5 + 2 * .025) / 6
    assert calibration_error(t) == pytest.approx((0.05 + 0.7 + 0.5 + 0.05) / 6)


def test_calibration_table_quantile_bins_are_equal_sized() -> None:
    p = np.arange(1, 11) / 10
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    t = calibration_table(y, p, n_bins=2)
    assert t["n"].tolist() == [5, 5]
    assert t["observed_rate"].tolist() == [0.2, 0.8]
    assert t["mean_predicted"].tolist() == pytest.approx([0.3, 0.8])
    # identical predictions: one bin
    one = calibration_table(y, np.full(10, 0.4))
    assert one["n"].tolist() == [10]
    assert calibration_error(one) == pytest.approx(abs(0.4 - 0.5))


def test_perfectly_calibrated_bins_have_zero_error() -> None:
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert calibration_error(calibration_table(y, p, strategy="uniform")) == pytest.approx(0.0)


# ---------------------------------------------------------------- all metrics, slices


def test_evaluate_predictions_known_values_and_undefined_ones() -> None:
    y = [0, 0, 1, 1]
    m = evaluate_predictions(y, [0.1, 0.4, 0.35, 0.8])
    assert m["auc"] == 0.75
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["n"] == 4 and m["churners"] == 2
    assert m["positive_rate"] == 0.5 and m["mean_predicted"] == pytest.approx(0.4125)
    single = evaluate_predictions([0, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(single["auc"]) and math.isnan(single["pr_auc"])
    assert single["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)
    empty = evaluate_predictions([], [])
    assert empty["n"] == 0 and math.isnan(empty["log_loss"])


def test_tenure_cohorts_at_their_edges() -> None:
    tenure = pd.Series([0, 90, 91, 365, 366, 2000], dtype=np.float64)
    assert tenure_cohort(tenure).tolist() == [
        "tenure_0_90d",
        "tenure_0_90d",
        "tenure_91_365d",
        "tenure_91_365d",
        "tenure_366d_plus",
        "tenure_366d_plus",
    ]
    assert tenure_cohort(tenure, (30,)).tolist()[:2] == ["tenure_0_30d", "tenure_31d_plus"]
    with pytest.raises(ValueError, match="increasing"):
        tenure_cohort(tenure, (365, 90))


def _frame(plans: list[str], tenure: list[float]) -> pd.DataFrame:
    f = pd.DataFrame(0.0, index=range(len(plans)), columns=list(FEATURE_COLUMNS))
    for plan in ("basic", "plus", "pro"):
        f[f"plan_{plan}"] = [1.0 if p == plan else 0.0 for p in plans]
    f["tenure_days"] = tenure
    return f


def test_slice_metrics_per_plan_and_tenure() -> None:
    plans = ["basic"] * 4 + ["pro"] * 4
    tenure = [10, 20, 400, 500, 30, 40, 600, 700]
    y = np.array([0, 1, 0, 1, 1, 1, 0, 0])
    p = np.array([0.2, 0.6, 0.3, 0.4, 0.9, 0.8, 0.1, 0.7])
    table = slice_metrics(_frame(plans, tenure), y, p)
    assert table["segment"].tolist() == [
        "plan_basic",
        "plan_pro",
        "tenure_0_90d",
        "tenure_366d_plus",
    ]
    rows = table.set_index("segment")
    assert rows.loc["plan_basic", "auc"] == roc_auc_score(y[:4], p[:4]) == 1.0
    assert rows.loc["plan_pro", "auc"] == roc_auc_score(y[4:], p[4:]) == 1.0
    young = np.array([0, 1, 4, 5])
    assert rows.loc["tenure_0_90d", "auc"] == roc_auc_score(y[young], p[young])
    assert rows.loc["tenure_0_90d", "n"] == 4
    assert rows.loc["tenure_366d_plus", "positive_rate"] == 0.25
    assert (table.loc[table["slice"] == "plan", "n"].sum()) == 8
    assert plan_segment(_frame(["plus"], [1])).tolist() == ["plan_plus"]


# ---------------------------------------------------------------- logistic baseline


def test_logistic_baseline_is_sklearn_on_standardised_features_and_its_card_predicts() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 3)) * [1.0, 10.0, 100.0], columns=["a", "b", "c"])
    logit = 0.5 + 1.2 * frame["a"] - 0.08 * frame["b"]
    frame["churned"] = (rng.random(400) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    model = fit_logistic_baseline(frame, features=["a", "b", "c"], l2=2.0)
    x = (frame[["a", "b", "c"]] - frame[["a", "b", "c"]].mean()) / frame[["a", "b", "c"]].std(
        ddof=0
    )
    reference = LogisticRegression(C=1 / 2.0, tol=1e-12, max_iter=10_000).fit(x, frame["churned"])
    assert model.coef == pytest.approx(reference.coef_[0], abs=1e-4)
    assert model.predict(frame) == pytest.approx(reference.predict_proba(x)[:, 1], abs=1e-4)
    card = json.loads(json.dumps(model.card()))  # as stored in the model card
    assert logistic_from_card(card, frame) == pytest.approx(model.predict(frame), abs=1e-12)
    assert card["coefficients"]["a"] > 0 > card["coefficients"]["b"]


def test_heuristic_ranks_by_fewer_sessions_and_reports_ranking_metrics_only() -> None:
    frame = pd.DataFrame({"sessions_28d": [0.0, 2.0, 5.0, 30.0]})
    score = heuristic_scores(frame)
    assert list(np.argsort(-score)) == [0, 1, 2, 3]  # fewest sessions, highest risk
    y = np.array([1, 1, 0, 0])
    out = evaluate_ranking(y, score)
    assert out["auc"] == 1.0 and out["precision_top_decile"] == 1.0
    assert math.isnan(out["log_loss"]) and math.isnan(out["calibration_error"])


def test_logistic_baseline_without_signal_predicts_the_base_rate() -> None:
    frame = pd.DataFrame({"a": np.ones(8), "b": np.full(8, 3.0)})
    frame["churned"] = [1, 0, 0, 0, 1, 0, 0, 0]
    model = fit_logistic_baseline(frame, features=["a", "b"])
    assert model.coef.tolist() == [0.0, 0.0]  # constant features carry nothing
    assert model.intercept == pytest.approx(math.log(0.25 / 0.75))
    assert model.predict(frame) == pytest.approx(np.full(8, 0.25))
    assert model.card()["coefficients"] == {"a": 0.0, "b": 0.0}


def test_logistic_baseline_is_deterministic_and_rejects_bad_penalty() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.poisson(2, size=(300, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    frame["churned"] = (frame["support_calls_28d"] + rng.normal(size=300) > 3).astype(np.int64)
    a, b = fit_logistic_baseline(frame), fit_logistic_baseline(frame)
    assert a.coef.tobytes() == b.coef.tobytes()
    assert a.coef[list(FEATURE_COLUMNS).index("support_calls_28d")] > 1.0
    with pytest.raises(ValueError, match="l2"):
        fit_logistic_baseline(frame, l2=0.0)
