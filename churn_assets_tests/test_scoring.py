"""Scores: ranks, tiers, and reasons phrased for a salesperson with the customer's own values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.model import predict_churn
from churn_assets.core.scoring import (
    SCORE_COLUMNS,
    explain_top_reasons,
    reason_phrases,
    score_customers,
    top_risk_markdown,
)


def features(rows: list[dict]) -> pd.DataFrame:
    base = dict.fromkeys(FEATURE_COLUMNS, 0.0) | {
        "tenure_days": 400.0,
        "seats": 3.0,
        "mrr": 49.0,
        "plan_plus": 1.0,
        "sessions_7d": 3.0,
        "sessions_28d": 12.0,
        "active_days_28d": 10.0,
        "days_since_last_session": 1.0,
    }
    f = pd.DataFrame([{**base, **r} for r in rows])
    return f[["customer_id", *FEATURE_COLUMNS]].astype(dict.fromkeys(FEATURE_COLUMNS, np.float64))


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    """Churn driven only by support calls (>= 3) and silent Subscribe hovering (>= 4)."""
    rng = np.random.default_rng(0)
    n = 2000
    x = features([{"customer_id": f"T{i}"} for i in range(n)])
    x["support_calls_28d"] = rng.integers(0, 7, n).astype(float)
    x["subscribe_hovers_without_click_28d"] = rng.integers(0, 8, n).astype(float)
    y = ((x["support_calls_28d"] >= 3) | (x["subscribe_hovers_without_click_28d"] >= 4)).astype(int)
    dm = xgb.DMatrix(
        x[list(FEATURE_COLUMNS)].to_numpy(), label=y, feature_names=list(FEATURE_COLUMNS)
    )
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 0}
    return xgb.train(params, dm, num_boost_round=30)


CUSTOMERS = [
    {"customer_id": "C_CALLS", "support_calls_28d": 5.0},
    {"customer_id": "C_BOTH", "support_calls_28d": 4.0, "subscribe_hovers_without_click_28d": 5.0},
    {"customer_id": "C_HOVER", "subscribe_hovers_without_click_28d": 6.0},
    {"customer_id": "C_QUIET_B"},
    {"customer_id": "C_QUIET_A"},  # same features as C_QUIET_B: a tie
]


def test_reasons_name_the_drivers_with_the_customers_values(booster: xgb.Booster) -> None:
    r = explain_top_reasons(booster, features(CUSTOMERS)).set_index("customer_id")
    assert list(r.columns) == ["reason_1", "reason_2", "reason_3"]
    assert r.loc["C_CALLS", "reason_1"] == "5 support calls in the last 28 days"
    assert r.loc["C_HOVER", "reason_1"] == "hovered Subscribe 6 times without clicking"
    assert set(r.loc["C_BOTH", ["reason_1", "reason_2"]]) == {
        "4 support calls in the last 28 days",
        "hovered Subscribe 5 times without clicking",
    }
    # Quiet customers: nothing pushes their risk up, so no reasons rather than invented ones.
    assert r.loc["C_QUIET_A"].isna().all()
    # Only positive contributions become reasons.
    contribs = booster.predict(
        xgb.DMatrix(
            features(CUSTOMERS)[list(FEATURE_COLUMNS)].to_numpy(),
            feature_names=list(FEATURE_COLUMNS),
        ),
        pred_contribs=True,
    )
    n_positive = (contribs[:, :-1] > 0).sum(axis=1)
    assert (r.notna().sum(axis=1).to_numpy() <= np.minimum(n_positive, 3)).all()


def test_phrases_for_every_feature() -> None:
    f = features(
        [
            {
                "customer_id": "X",
                "tenure_days": 45.0,
                "seats": 1.0,
                "mrr": 1234.5,
                "plan_plus": 0.0,
                "plan_basic": 1.0,
                "support_calls_7d": 1.0,
                "support_calls_28d": 3.0,
                "sessions_7d": 0.0,
                "sessions_28d": 2.0,
                "visit_trend": -0.6,
                "active_days_28d": 2.0,
                "page_views_28d": 7.0,
                "subscribe_hovers_28d": 5.0,
                "subscribe_clicks_28d": 0.0,
                "subscribe_hovers_without_click_28d": 5.0,
                "support_contacts_28d": 1.0,
                "minutes_28d": 12.4,
                "days_since_last_session": 12.0,
                "reactivated_before": 1.0,
            },
            {
                "customer_id": "Y",
                "tenure_days": 800.0,
                "visit_trend": 0.25,
                "days_since_last_session": 29.0,
                "sessions_28d": 20.0,
                "subscribe_clicks_28d": 2.0,
            },
        ]
    )
    p = {k: v.tolist() for k, v in reason_phrases(f, window_days=28).items()}
    assert p["tenure_days"] == ["customer for only 45 days", "customer for 26 months"]
    assert p["seats"] == ["only 1 seat", "3 seats"]
    assert p["mrr"] == ["pays 1234.50 a month", "pays 49.00 a month"]
    assert p["plan"] == ["basic plan", "plus plan"]
    assert p["support_calls_7d"][0] == "1 support call in the last 7 days"
    assert p["support_calls_28d"][0] == "3 support calls in the last 28 days"
    assert p["sessions_7d"][0] == "no visits in the last 7 days"
    assert p["sessions_28d"] == [
        "only 2 visits in the last 28 days",
        "20 visits in the last 28 days",
    ]
    assert p["visit_trend"] == [
        "visits down 60% vs earlier weeks",
        "visits up 25% vs earlier weeks",
    ]
    assert (
        p["subscribe_hovers_without_click_28d"][0] == "hovered Subscribe 5 times without clicking"
    )
    assert p["subscribe_clicks_28d"] == [
        "never clicked Subscribe in the last 28 days",
        "clicked Subscribe 2 times in the last 28 days",
    ]
    assert p["support_contacts_28d"][0] == "contacted support online 1 time in the last 28 days"
    assert p["days_since_last_session"] == ["no visit in 12 days", "no visit in over 28 days"]
    assert p["reactivated_before"] == ["cancelled before and came back", "has never cancelled"]
    assert p["minutes_28d"][0] == "12 minutes on the product in the last 28 days"


def test_scores_ranks_tiers_and_columns(booster: xgb.Booster) -> None:
    f = features(CUSTOMERS)
    prob = predict_churn(booster, f)
    threshold = float(np.sort(prob)[-2])  # the two riskiest are 'high'
    s = score_customers(booster, f, threshold, model_version="2026-03-01-abc123")
    assert list(s.columns) == list(SCORE_COLUMNS)
    assert s["churn_probability"].dtype == np.float64
    assert s["rank"].dtype == np.int64
    assert s["rank"].tolist() == [1, 2, 3, 4, 5]
    assert s["churn_probability"].is_monotonic_decreasing
    assert s["customer_id"].iloc[0] == "C_BOTH"
    # Equal probabilities: ties broken by customer_id.
    assert s["customer_id"].iloc[-2:].tolist() == ["C_QUIET_A", "C_QUIET_B"]
    expected_tier = np.select(
        [s["churn_probability"] >= threshold, s["churn_probability"] >= threshold / 2],
        ["high", "medium"],
        "low",
    )
    assert s["risk_tier"].tolist() == expected_tier.tolist()
    assert (s["risk_tier"] == "high").sum() == 2
    assert s.loc[s["customer_id"].str.startswith("C_QUIET"), "risk_tier"].eq("low").all()
    assert (s["model_version"] == "2026-03-01-abc123").all()
    by_id = s.set_index("customer_id")
    assert by_id.loc["C_CALLS", "reason_1"] == "5 support calls in the last 28 days"


def test_tiers_around_the_threshold(booster: xgb.Booster) -> None:
    f = features(CUSTOMERS)
    prob = predict_churn(booster, f)
    p_calls = prob[0]
    s = score_customers(booster, f, threshold=2 * p_calls, model_version="v").set_index(
        "customer_id"
    )
    assert s.loc["C_CALLS", "risk_tier"] == "medium"  # exactly half the threshold
    s = score_customers(booster, f, threshold=p_calls, model_version="v").set_index("customer_id")
    assert s.loc["C_CALLS", "risk_tier"] == "high"  # exactly at the threshold


def test_empty_features_give_empty_scores(booster: xgb.Booster) -> None:
    s = score_customers(booster, features(CUSTOMERS).iloc[:0], 0.5, "v")
    assert list(s.columns) == list(SCORE_COLUMNS) and s.empty
    assert s["rank"].dtype == np.int64


def test_top_risk_markdown(booster: xgb.Booster) -> None:
    f = features([*CUSTOMERS, {"customer_id": "C|PIPE", "support_calls_28d": 6.0}])
    s = score_customers(booster, f, 0.5, "v1")
    md = top_risk_markdown(s, n=3)
    lines = md.splitlines()
    assert lines[0].startswith("| rank | customer |")
    assert len(lines) == 2 + 3
    assert "C\\|PIPE" in md  # pipes escaped so the table stays a table
    first = s.iloc[0]
    assert lines[2].startswith(f"| 1 | {first['customer_id'].replace('|', chr(92) + '|')} |")
    assert first["reason_1"] in lines[2]
    assert "C_QUIET" not in md
