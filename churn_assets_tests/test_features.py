"""Point-in-time features from a tiny hand-made billing window and activity table."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn_assets.core.features import FEATURE_COLUMNS, build_features

D = date(2026, 3, 28)
WINDOW = 10  # 7-day sums cover D-6 .. D, window sums D-9 .. D


def snap(offset: int, rows: list[dict]) -> pd.DataFrame:
    day = pd.Timestamp(D + timedelta(days=offset))
    base = {
        "account_name": "Name, with PII",
        "signup_date": pd.Timestamp("2026-01-01"),
        "plan": "basic",
        "seats": 2,
        "mrr": 20.0,
        "cancelled_service": False,
        "cancelled_at": pd.NaT,
        "new_customer": False,
        "reactivated_at": pd.NaT,
        "support_calls": 0,
    }
    df = pd.DataFrame([{**base, **r, "snapshot_date": day} for r in rows])
    return df.astype({"cancelled_at": "datetime64[ns]", "reactivated_at": "datetime64[ns]"})


def window(extra_future: list[dict] | None = None) -> pd.DataFrame:
    frames = [
        # Outside the window (D-10): must not count.
        snap(-10, [{"customer_id": "C1", "support_calls": 100}]),
        # D-9 (window only), D-7 missing, D-6 (recent), D-1, D.
        snap(-9, [{"customer_id": "C1", "support_calls": 2}]),
        snap(-6, [{"customer_id": "C1", "support_calls": 1}, {"customer_id": "C2"}]),
        snap(-1, [{"customer_id": "C1", "support_calls": 3}, {"customer_id": "C2"}]),
        snap(
            0,
            [
                {
                    "customer_id": "C1",
                    "plan": "plus",
                    "seats": 5,
                    "mrr": 99.5,
                    "signup_date": pd.Timestamp("2026-02-11"),  # 45 days before D
                    "new_customer": True,
                    "cancelled_service": True,
                    "cancelled_at": pd.Timestamp("2026-02-20"),
                    "reactivated_at": pd.Timestamp("2026-02-25"),
                },
                {"customer_id": "C2", "plan": "pro", "support_calls": 4},
                {
                    "customer_id": "C0_CANCELLED",
                    "cancelled_service": True,
                    "cancelled_at": pd.Timestamp("2026-03-20"),
                },
            ],
        ),
    ]
    if extra_future:
        frames.append(snap(1, extra_future))
    return pd.concat(frames, ignore_index=True)


ACTIVITY = pd.DataFrame(
    {
        "customer_id": ["C1", "C9_NOT_A_CUSTOMER"],
        "sessions_7d": [2, 1],
        "sessions_28d": [5, 1],
        "active_days_28d": [4, 1],
        "page_views_28d": [30, 2],
        "hovers_28d": [9, 0],
        "clicks_28d": [4, 0],
        "subscribe_hovers_28d": [6, 0],
        "subscribe_clicks_28d": [1, 0],
        "support_contacts_28d": [2, 0],
        "minutes_28d": [75.5, 1.0],
        "days_since_last_session": [3, 0],
        "visit_trend": [-0.6, 0.0],
    }
)


def test_known_values_from_a_tiny_window() -> None:
    f = build_features(window(), ACTIVITY, D, WINDOW)
    assert list(f.columns) == ["customer_id", *FEATURE_COLUMNS]
    assert f["customer_id"].tolist() == ["C1", "C2"]  # sorted, active only, no stray activity
    assert (f.dtypes[list(FEATURE_COLUMNS)] == np.float64).all()
    c1 = f.set_index("customer_id").loc["C1"]
    assert c1["tenure_days"] == 45
    assert (c1["seats"], c1["mrr"]) == (5, 99.5)
    assert (c1["plan_basic"], c1["plan_plus"], c1["plan_pro"]) == (0, 1, 0)
    assert c1["support_calls_7d"] == 1 + 3 + 0  # D-6, D-1, D
    assert c1["support_calls_28d"] == 2 + 1 + 3 + 0  # D-9 .. D, not the 100 of D-10
    assert c1["sessions_7d"] == 2 and c1["sessions_28d"] == 5
    assert c1["visit_trend"] == -0.6
    assert c1["subscribe_hovers_28d"] == 6 and c1["subscribe_clicks_28d"] == 1
    assert c1["subscribe_hovers_without_click_28d"] == 5
    assert c1["minutes_28d"] == 75.5 and c1["days_since_last_session"] == 3
    assert c1["reactivated_before"] == 1
    c2 = f.set_index("customer_id").loc["C2"]
    assert c2["support_calls_7d"] == 4 and c2["support_calls_28d"] == 4
    assert (c2["plan_basic"], c2["plan_plus"], c2["plan_pro"]) == (0, 0, 1)


def test_customer_without_activity_gets_zeros() -> None:
    f = build_features(window(), ACTIVITY, D, WINDOW).set_index("customer_id")
    c2 = f.loc["C2"]
    for col in ("sessions_7d", "sessions_28d", "visit_trend", "active_days_28d", "minutes_28d"):
        assert c2[col] == 0.0
    assert c2["subscribe_hovers_without_click_28d"] == 0.0
    assert c2["days_since_last_session"] == WINDOW + 1
    empty = build_features(window(), ACTIVITY.iloc[:0], D, WINDOW)
    assert (empty["sessions_28d"] == 0).all()
    assert (empty["days_since_last_session"] == WINDOW + 1).all()
    bare = build_features(window(), pd.DataFrame(), D, WINDOW)
    pd.testing.assert_frame_equal(bare, empty)


def test_hovers_without_click_never_negative() -> None:
    activity = ACTIVITY.assign(subscribe_hovers_28d=[1, 0], subscribe_clicks_28d=[3, 0])
    f = build_features(window(), activity, D, WINDOW)
    assert f.loc[f["customer_id"] == "C1", "subscribe_hovers_without_click_28d"].item() == 0


def test_an_extract_dated_after_d_changes_nothing() -> None:
    base = build_features(window(), ACTIVITY, D, WINDOW)
    future = [
        {"customer_id": "C1", "support_calls": 50, "seats": 1, "plan": "pro"},
        {"customer_id": "C3_NEW", "signup_date": pd.Timestamp(D)},
    ]
    leaked = build_features(window(future), ACTIVITY, D, WINDOW)
    pd.testing.assert_frame_equal(base, leaked)


def test_missing_extract_of_d_is_an_error() -> None:
    w = window()
    w = w.loc[w["snapshot_date"] != pd.Timestamp(D)]
    with pytest.raises(ValueError, match="missing"):
        build_features(w, ACTIVITY, D, WINDOW)
    with pytest.raises(ValueError, match="missing"):
        build_features(pd.DataFrame(), ACTIVITY, D, WINDOW)


def test_personal_data_is_never_a_feature() -> None:
    assert "account_name" not in FEATURE_COLUMNS
    assert "customer_id" not in FEATURE_COLUMNS
