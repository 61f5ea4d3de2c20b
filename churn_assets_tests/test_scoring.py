"""Scores: ranks, tiers, and reasons phrased for a salesperson with the customer's own values."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.model import predict_churn
from churn_assets.core.scoring import (
    REASON_GROUPS,
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


# A customer whose every value shows the absence of risk (the defaults of `features` are too).
HEALTHY = {
    "tenure_days": 304.0,
    "seats": 3.0,
    "mrr": 149.0,
    "plan_plus": 1.0,
    "sessions_7d": 4.0,
    "sessions_28d": 16.0,
    "visit_trend": 0.25,
    "active_days_28d": 12.0,
    "page_views_28d": 40.0,
    "subscribe_hovers_28d": 0.0,
    "subscribe_clicks_28d": 1.0,
    "minutes_28d": 180.0,
    "days_since_last_session": 1.0,
    "reactivated_before": 0.0,
}


def phrases(rows: list[dict], window_days: int = 28) -> dict[str, list]:
    f = features([{"customer_id": f"X{i}", **r} for i, r in enumerate(rows)])
    return {k: v.tolist() for k, v in reason_phrases(f, window_days=window_days).items()}


def test_phrases_of_risk_signals_for_every_feature() -> None:
    risky = {
        "tenure_days": 45.0,
        "seats": 1.0,
        "mrr": 24.0,
        "plan_plus": 0.0,
        "plan_basic": 1.0,
        "support_calls_7d": 1.0,
        "support_calls_28d": 3.0,
        "sessions_7d": 0.0,
        "sessions_28d": 2.0,
        "visit_trend": -0.6,
        "active_days_28d": 2.0,
        "page_views_28d": 3.0,
        "subscribe_hovers_28d": 5.0,
        "subscribe_clicks_28d": 0.0,
        "subscribe_hovers_without_click_28d": 5.0,
        "support_contacts_28d": 1.0,
        "minutes_28d": 12.4,
        "days_since_last_session": 12.0,
        "reactivated_before": 1.0,
    }
    p = {k: v[0] for k, v in phrases([risky]).items()}
    assert p == {
        "tenure_days": "new customer: 45 days",
        "seats": "only 1 seat",
        "mrr": "small account: $24/month",
        "plan": "basic plan",
        "support_calls_7d": "1 support call in the last 7 days",
        "support_calls_28d": "3 support calls in the last 28 days",
        "sessions_7d": "no visits in the last 7 days",
        "sessions_28d": "only 2 visits in the last 28 days",
        "visit_trend": "visits down 60% vs earlier weeks",
        "active_days_28d": "active on only 2 days of the last 28",
        "page_views_28d": "only 3 page views in the last 28 days",
        "subscribe_hovers_28d": "hovered Subscribe 5 times in the last 28 days",
        "subscribe_clicks_28d": "hovered but never clicked Subscribe in the last 28 days",
        "subscribe_hovers_without_click_28d": "hovered Subscribe 5 times without clicking",
        "support_contacts_28d": "contacted support online 1 time in the last 28 days",
        "minutes_28d": "only 12 minutes on the product in the last 28 days",
        "days_since_last_session": "no visit in 12 days",
        "reactivated_before": "cancelled before and came back",
    }
    assert set(p) == set(REASON_GROUPS)


def test_values_that_show_no_risk_are_never_phrased() -> None:
    p = phrases([HEALTHY, {**HEALTHY, "visit_trend": 0.0, "plan_plus": 0.0, "plan_pro": 1.0}])
    assert {k: v for k, v in p.items() if any(x is not None for x in v)} == {}


def test_never_cancelled_is_not_a_reason() -> None:
    p = phrases([{"reactivated_before": 0.0}, {"reactivated_before": 1.0}])
    assert p["reactivated_before"] == [None, "cancelled before and came back"]


def test_zero_counts_are_never_phrased() -> None:
    zero = dict.fromkeys(
        [
            "support_calls_7d",
            "support_calls_28d",
            "subscribe_hovers_28d",
            "subscribe_clicks_28d",
            "subscribe_hovers_without_click_28d",
            "support_contacts_28d",
            "sessions_7d",
            "sessions_28d",
            "active_days_28d",
            "page_views_28d",
            "minutes_28d",
            "days_since_last_session",
            "tenure_days",
        ],
        0.0,
    )
    p = phrases([zero, {**zero, "subscribe_hovers_28d": 1.0, "minutes_28d": 0.3}])
    for group in ("support_calls_7d", "support_calls_28d", "support_contacts_28d"):
        assert p[group] == [None, None]
    assert p["subscribe_hovers_28d"] == [None, "hovered Subscribe 1 time in the last 28 days"]
    assert p["subscribe_hovers_without_click_28d"] == [None, None]
    # No click is a signal only after hovering over the button.
    assert p["subscribe_clicks_28d"] == [
        None,
        "hovered but never clicked Subscribe in the last 28 days",
    ]
    # Scarcity is a risk, but it is said in words, not as "0 visits".
    assert p["sessions_7d"] == ["no visits in the last 7 days"] * 2
    assert p["sessions_28d"] == ["no visits in the last 28 days"] * 2
    assert p["active_days_28d"] == ["not active in the last 28 days"] * 2
    assert p["page_views_28d"] == ["no page views in the last 28 days"] * 2
    assert p["minutes_28d"] == [
        "no time on the product in the last 28 days",
        "under a minute on the product in the last 28 days",
    ]
    assert p["tenure_days"] == ["new customer: signed up today"] * 2
    assert p["days_since_last_session"] == [None, None]  # visited today
    every = [x for v in p.values() for x in v if x is not None]
    assert not [x for x in every if re.search(r"(^|\D)0 ", x)]


def test_only_visits_down_is_a_reason() -> None:
    p = phrases([{"visit_trend": t} for t in (-1.0, -0.6, -0.1, -0.05, 0.0, 0.25, 1.0)])
    assert p["visit_trend"] == [
        "visits down 100% vs earlier weeks",
        "visits down 60% vs earlier weeks",
        "visits down 10% vs earlier weeks",
        None,  # a 5% dip is noise
        None,  # flat
        None,  # up
        None,
    ]


def test_plan_seats_and_mrr_only_when_they_indicate_risk() -> None:
    p = phrases(
        [
            {"plan_plus": 0.0, "plan_basic": 1.0, "seats": 1.0, "mrr": 12.0},
            {"plan_plus": 0.0, "plan_basic": 1.0, "seats": 4.0, "mrr": 49.5},
            {"seats": 3.0, "mrr": 49.0},
            {"plan_plus": 0.0, "plan_pro": 1.0, "seats": 8.0, "mrr": 50.0},
            {"seats": 20.0, "mrr": 1234.5},
        ]
    )
    assert p["plan"] == ["basic plan", "basic plan", None, None, None]
    assert p["seats"] == ["only 1 seat", None, None, None, None]
    assert p["mrr"] == [
        "small account: $12/month",
        "small account: $49.50/month",
        "small account: $49/month",
        None,
        None,
    ]
    assert not any("pays" in x for x in p["mrr"] if x is not None)


def test_tenure_and_low_activity_use_fixed_thresholds() -> None:
    rows = [
        {"tenure_days": 1.0, "sessions_28d": 3.0, "active_days_28d": 3.0, "minutes_28d": 39.0},
        {"tenure_days": 89.0, "sessions_28d": 4.0, "active_days_28d": 4.0, "minutes_28d": 40.0},
        {"tenure_days": 90.0, "sessions_28d": 1.0, "active_days_28d": 1.0, "minutes_28d": 1.0},
        {"tenure_days": 304.0},
        {"tenure_days": 2000.0},
    ]
    p = phrases(rows)
    assert p["tenure_days"] == ["new customer: 1 day", "new customer: 89 days", None, None, None]
    # Fewer than one visit / active day a week, fewer than ten minutes a week.
    assert p["sessions_28d"] == [
        "only 3 visits in the last 28 days",
        None,
        "only 1 visit in the last 28 days",
        None,
        None,
    ]
    assert p["active_days_28d"][:3] == [
        "active on only 3 days of the last 28",
        None,
        "active on only 1 day of the last 28",
    ]
    assert p["minutes_28d"][:3] == [
        "only 39 minutes on the product in the last 28 days",
        None,
        "only 1 minute on the product in the last 28 days",
    ]
    # A customer's phrases do not depend on who else is in the day's batch.
    alone = phrases(rows[2:3])
    assert all(alone[k] == [v[2]] for k, v in p.items())


def test_recent_visit_is_not_a_reason() -> None:
    since = [0.0, 1.0, 6.0, 7.0, 12.0, 28.0, 29.0]
    p = phrases([{"days_since_last_session": d} for d in since])
    assert p["days_since_last_session"] == [
        None,
        None,
        None,
        "no visit in 7 days",
        "no visit in 12 days",
        "no visit in 28 days",
        "no visit in over 28 days",
    ]
    # Small windows (as in tests of the pipeline): the cap is "over the window".
    p = phrases([{"days_since_last_session": d} for d in (2.0, 4.0)], window_days=3)
    assert p["days_since_last_session"] == [None, "no visit in over 3 days"]
    assert p["support_calls_7d"] == [None, None]


@pytest.fixture(scope="module")
def contrary_booster() -> xgb.Booster:
    """A model that learned risk from values that show no risk, plus one real signal.

    Churn when never cancelled, no Subscribe hovers, visits not down and a recent visit (all
    absence-of-risk values), or when there are >= 2 support calls in the last 7 days, or
    (a weak signal) sometimes after an online support contact.
    """
    rng = np.random.default_rng(1)
    n = 3000
    x = features([{"customer_id": f"T{i}"} for i in range(n)])
    x["reactivated_before"] = rng.integers(0, 2, n).astype(float)
    x["subscribe_hovers_28d"] = rng.integers(0, 3, n).astype(float)
    x["visit_trend"] = rng.choice([-0.5, 0.0, 0.5], n)
    x["days_since_last_session"] = rng.choice([1.0, 12.0], n)
    x["support_calls_7d"] = rng.integers(0, 4, n).astype(float)
    x["support_contacts_28d"] = rng.integers(0, 3, n).astype(float)
    absent = (
        (x["reactivated_before"] == 0)
        & (x["subscribe_hovers_28d"] == 0)
        & (x["visit_trend"] >= 0)
        & (x["days_since_last_session"] == 1)
    )
    weak = (x["support_contacts_28d"] >= 1) & (rng.random(n) < 0.3)
    y = (absent | (x["support_calls_7d"] >= 2) | weak).astype(int)
    dm = xgb.DMatrix(
        x[list(FEATURE_COLUMNS)].to_numpy(), label=y, feature_names=list(FEATURE_COLUMNS)
    )
    params = {"objective": "binary:logistic", "max_depth": 4, "nthread": 1, "seed": 0}
    return xgb.train(params, dm, num_boost_round=40)


def test_contributions_of_no_risk_values_are_skipped(contrary_booster: xgb.Booster) -> None:
    absent = {
        "reactivated_before": 0.0,
        "subscribe_hovers_28d": 0.0,
        "visit_trend": 0.0,
        "days_since_last_session": 1.0,
    }
    f = features(
        [
            {"customer_id": "ABSENT", **absent},
            {"customer_id": "CALLS", **absent, "support_calls_7d": 3.0},
            {"customer_id": "CONTACT", **absent, "support_contacts_28d": 2.0},
        ]
    )
    contribs = contrary_booster.predict(
        xgb.DMatrix(f[list(FEATURE_COLUMNS)].to_numpy(), feature_names=list(FEATURE_COLUMNS)),
        pred_contribs=True,
    )
    by_feature = dict(zip(FEATURE_COLUMNS, contribs[0, :-1], strict=True))
    # The model does push these customers' risk up through values that show no risk ...
    for col in absent:
        assert by_feature[col] > 0, col
    r = explain_top_reasons(contrary_booster, f).set_index("customer_id")
    # ... yet none of them is phrased: the slots stay empty rather than contradict themselves.
    assert r.loc["ABSENT"].isna().all()
    # A real signal is kept, and the no-risk contributions do not fill the other slots.
    calls = dict(zip(FEATURE_COLUMNS, contribs[1, :-1], strict=True))
    assert calls["support_calls_7d"] > 0 and calls["reactivated_before"] > 0
    assert r.loc["CALLS"].tolist() == ["3 support calls in the last 7 days", None, None]
    # A real signal smaller than every no-risk contribution still becomes reason_1.
    contact = dict(zip(FEATURE_COLUMNS, contribs[2, :-1], strict=True))
    assert 0 < contact["support_contacts_28d"] < min(contact[col] for col in absent)
    assert r.loc["CONTACT"].tolist() == [
        "contacted support online 2 times in the last 28 days",
        None,
        None,
    ]


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
