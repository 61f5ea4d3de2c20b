"""Threshold choice and the XGBoost model: deterministic, better than the base rate, its card."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from churn_assets.core.features import FEATURE_COLUMNS, MODEL_FEATURES
from churn_assets.core.model import (
    DecisionCosts,
    choose_threshold,
    load_booster,
    predict_churn,
    train_churn_model,
)

# ---------------------------------------------------------------- data


def synthetic(n_customers: int = 300, n_days: int = 12, seed: int = 0) -> pd.DataFrame:
    """A learnable churn problem: support calls, silent hovering and short tenure drive it."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_days):
        f = pd.DataFrame(
            rng.poisson(2.0, size=(n_customers, len(FEATURE_COLUMNS))).astype(np.float64),
            columns=list(FEATURE_COLUMNS),
        )
        f["tenure_days"] = rng.integers(10, 900, n_customers).astype(np.float64)
        logit = (
            -3.0
            + 0.9 * f["support_calls_28d"]
            + 0.6 * f["subscribe_hovers_without_click_28d"]
            - 0.004 * f["tenure_days"]
        )
        f["churned"] = (rng.random(n_customers) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        f.insert(0, "customer_id", [f"C{k:05d}" for k in range(n_customers)])
        f.insert(1, "day", pd.Timestamp("2026-01-01") + pd.Timedelta(days=i))
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def last_days(data: pd.DataFrame, days: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, valid): the synthetic rows have no label windows, a time cut is enough here."""
    is_valid = data["day"] > data["day"].max() - pd.Timedelta(days=days)
    return data.loc[~is_valid], data.loc[is_valid]


# ---------------------------------------------------------------- threshold


def test_threshold_known_cost_case() -> None:
    # Offer when p >= t. Costs: missed churner 500, offer 50 (to a churner or not).
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.15, 0.1, 0.05, 0.04, 0.03, 0.02])
    t, cost = choose_threshold(y, p, DecisionCosts())
    # Offering to the top 3 catches both churners for 3 offers: 150, the cheapest option
    # (top 1: 50 + 500; top 4+: one more offer each; nobody: 1000).
    assert t == 0.3
    assert cost == pytest.approx(150 / 10)


def test_threshold_offer_nobody_when_offers_are_too_expensive() -> None:
    y = np.array([1, 0, 0, 0])
    p = np.array([0.4, 0.3, 0.2, 0.1])
    t, cost = choose_threshold(y, p, DecisionCosts(cost_missed_churner=10, cost_offer=100))
    assert t > p.max()
    assert cost == pytest.approx(10 / 4)


def test_threshold_ties_move_together() -> None:
    y = np.array([1, 0, 0])
    p = np.array([0.5, 0.5, 0.1])
    t, cost = choose_threshold(y, p, DecisionCosts())
    assert t == 0.5  # both tied customers get the offer: 100 < missing the churner (500)
    assert cost == pytest.approx(100 / 3)


# ---------------------------------------------------------------- training

KW = {
    "seed": 7,
    "num_boost_round": 60,
    "early_stopping_rounds": 10,
    "features": FEATURE_COLUMNS,
}


def test_same_inputs_and_seed_give_identical_booster_bytes() -> None:
    data = synthetic()
    a = train_churn_model(*last_days(data), **KW)
    b = train_churn_model(*last_days(data.sample(frac=1.0, random_state=3)), **KW)  # row order
    assert a.booster_bytes == b.booster_bytes
    assert a.threshold == b.threshold
    c = train_churn_model(*last_days(data), **{**KW, "seed": 8})
    assert c.booster_bytes != a.booster_bytes  # the seed does matter (subsampling)


def test_model_beats_base_rate_baseline() -> None:
    model = train_churn_model(*last_days(synthetic()), **KW)
    m = model.metrics
    assert m["auc"] > m["baseline_auc"] + 0.15
    assert m["log_loss"] < m["baseline_log_loss"]
    assert m["brier"] < m["baseline_brier"]
    assert m["pr_auc"] > m["valid_positive_rate"]
    assert m["n_train"] == 300 * 9 and m["n_valid"] == 300 * 3
    assert 0 < m["train_positive_rate"] < 1 and 0 < m["valid_positive_rate"] < 1
    assert m["cost_per_customer"] <= min(
        m["cost_per_customer_no_offers"], m["cost_per_customer_offer_all"]
    )
    assert 0.0 < model.threshold < 1.0


def test_booster_round_trip_and_card() -> None:
    data = synthetic()
    model = train_churn_model(*last_days(data), **KW)
    json.loads(model.booster_bytes)  # XGBoost's own JSON format, not a pickle
    booster = load_booster(model.booster_bytes)
    assert isinstance(booster, xgb.Booster)
    assert booster.num_boosted_rounds() == model.card["best_iteration"] + 1
    valid = data.loc[data["day"] >= data["day"].max() - pd.Timedelta(days=2)]
    p = predict_churn(booster, valid)
    assert p.dtype == np.float64 and ((p > 0) & (p < 1)).all()
    card = model.card
    assert card["train_days"][-1] < card["valid_days"][0]
    assert len(card["valid_days"]) == 3
    assert card["features"] == list(FEATURE_COLUMNS)
    assert card["seed"] == 7 and card["params"]["seed"] == 7
    assert card["params"]["tree_method"] == "hist"
    assert card["library_versions"]["xgboost"] == xgb.__version__
    assert card["metrics"] == model.metrics
    json.dumps(card)  # serialisable as asset metadata


def test_custom_params_are_used() -> None:
    model = train_churn_model(*last_days(synthetic()), params={"max_depth": 2, "eta": 0.3}, **KW)
    assert model.card["params"]["max_depth"] == 2
    tree = json.loads(model.booster_bytes)["learner"]["gradient_booster"]["model"]["trees"][0]
    depth = {0: 0}
    for parent, (left, right) in enumerate(
        zip(tree["left_children"], tree["right_children"], strict=True)
    ):
        if left != -1:
            depth[left] = depth[right] = depth[parent] + 1
    assert max(depth.values()) <= 2


def test_too_few_rows_or_single_class_is_a_clear_error() -> None:
    data = synthetic()
    with pytest.raises(ValueError, match="single class"):
        train_churn_model(*last_days(data.assign(churned=0)), **KW)
    with pytest.raises(ValueError, match="too few train rows"):
        train_churn_model(*last_days(synthetic(n_customers=2, n_days=6)), **KW)
    with pytest.raises(ValueError, match="lacks columns"):
        train_churn_model(*last_days(data.drop(columns="sessions_28d")), **KW)


def test_feature_mismatch_is_refused() -> None:
    model = train_churn_model(*last_days(synthetic()), **KW)
    booster = load_booster(model.booster_bytes)
    x = np.zeros((2, 3))
    other = xgb.train(
        {"nthread": 1}, xgb.DMatrix(x, label=[0, 1], feature_names=["a", "b", "c"]), 1
    )
    with pytest.raises(ValueError, match="trained on features"):
        predict_churn(other, synthetic(n_customers=2, n_days=1))
    assert predict_churn(booster, synthetic(n_customers=2, n_days=1)).shape == (2,)


def test_a_model_on_fewer_columns_reads_only_them() -> None:
    data = synthetic()
    model = train_churn_model(*last_days(data), **{**KW, "features": MODEL_FEATURES})
    booster = load_booster(model.booster_bytes)
    assert model.card["model_features"] == list(MODEL_FEATURES) == booster.feature_names
    assert model.card["features"] == list(FEATURE_COLUMNS)  # the table it was trained from
    assert "mrr" not in MODEL_FEATURES and "seats" not in MODEL_FEATURES
    rows = synthetic(n_customers=3, n_days=1)
    scrambled = rows.assign(mrr=-1.0, seats=1e6)  # columns the model does not read
    np.testing.assert_array_equal(predict_churn(booster, rows), predict_churn(booster, scrambled))
