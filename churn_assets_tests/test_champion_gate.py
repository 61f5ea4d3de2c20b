"""The daily model decision: out-of-time blocks, threshold on validation, byte-identical
models, baselines on the same rows, and the champion gate with a model store on disk."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from churn_assets.core.daily_model import (
    GatePolicy,
    TrainingConfig,
    code_version,
    decision_outcomes,
    jsonable,
    partition_of_version,
    split_purged,
    time_blocks,
    train_daily_model,
    training_table,
)
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.model import DecisionCosts, choose_threshold, load_booster, predict_churn
from churn_assets.core.tuning import TuningConfig
from churn_assets.resources.model_store import ModelStore

START = date(2026, 1, 1)
CONFIG = TrainingConfig(
    seed=7,
    validation_days=3,
    test_days=3,
    num_boost_round=60,
    early_stopping_rounds=10,
    tuning=TuningConfig(max_trials=2),
)


def history(
    n_customers: int = 300,
    n_days: int = 14,
    seed: int = 0,
    shuffle_labels: bool = False,
    scramble: str | None = None,
):
    """{day: features}, {day: labels} of a learnable churn problem (support calls, tenure).

    Degradations touch the training days only (the first n_days - 6 with CONFIG's blocks),
    so validation and test keep the truth: `shuffle_labels` permutes their labels,
    `scramble` permutes one feature column across customers.
    """
    rng = np.random.default_rng(seed)
    features, labels = {}, {}
    for i in range(n_days):
        f = pd.DataFrame(
            rng.poisson(2.0, size=(n_customers, len(FEATURE_COLUMNS))).astype(np.float64),
            columns=list(FEATURE_COLUMNS),
        )
        f["tenure_days"] = rng.integers(10, 900, n_customers).astype(np.float64)
        plan = rng.integers(0, 3, n_customers)
        for k, name in enumerate(("basic", "plus", "pro")):
            f[f"plan_{name}"] = (plan == k).astype(np.float64)
        logit = (
            -3.0
            + 0.9 * f["support_calls_28d"]
            + 0.6 * f["subscribe_hovers_without_click_28d"]
            - 0.004 * f["tenure_days"]
            + 3.0 * (f["tenure_days"] < 60)  # a step: trees see it, a linear model hardly
        )
        churned = (rng.random(n_customers) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        in_train_block = i < n_days - CONFIG.validation_days - CONFIG.test_days
        if shuffle_labels and in_train_block:
            churned = rng.permutation(churned)
        if scramble and in_train_block:
            f[scramble] = rng.permutation(f[scramble].to_numpy())
        ids = [f"C{k:05d}" for k in range(n_customers)]
        f.insert(0, "customer_id", ids)
        key = (START + timedelta(days=i)).isoformat()
        features[key] = f
        labels[key] = pd.DataFrame({"customer_id": ids, "churned": churned})
    return features, labels


def daily_model(*args, **kwargs):
    """train_daily_model on these histories, whose labels are drawn day by day (no label window
    spans two days, so nothing needs purging; the purge is tested on its own below)."""
    return train_daily_model(*args, purge_days=0, **kwargs)


def store(tmp_path, pinned: str = "") -> ModelStore:
    return ModelStore(url=str(tmp_path / "models"), s3=S3Resource(), pinned_version=pinned)


# ---------------------------------------------------------------- out-of-time blocks


@pytest.mark.parametrize(("valid", "test", "embargo"), [(1, 1, 0), (3, 2, 0), (2, 3, 1)])
def test_blocks_are_out_of_time_and_of_customer(valid: int, test: int, embargo: int) -> None:
    features, labels = history(n_customers=40, n_days=10)
    data = training_table(features, labels).sample(frac=1.0, random_state=1)  # shuffled
    split = split_purged(data, valid, test, purge_days=0, seed=3, embargo_days=embargo)
    train, validation, held_out = split.train, split.valid, split.test
    assert validation["day"].nunique() == valid and held_out["day"].nunique() == test
    assert train["day"].max() < validation["day"].min()  # no validation day before a train day
    assert validation["day"].max() < held_out["day"].min()
    assert held_out["day"].max() == data["day"].max()
    assert not set(validation["customer_id"]) & set(held_out["customer_id"])
    days = sorted(data["day"].unique())
    assert train["day"].nunique() == len(days) - valid - test - 2 * embargo
    if embargo:  # the embargo days are in no block
        used = set(train["day"]) | set(validation["day"]) | set(held_out["day"])
        assert len(set(days) - used) == 2 * embargo
    again = split_purged(
        data.sample(frac=1.0, random_state=2), valid, test, 0, 3, 0.25, 0.25, embargo
    )
    pd.testing.assert_frame_equal(again.train, train)  # input row order does not matter
    pd.testing.assert_frame_equal(again.test, held_out)


def test_blocks_need_enough_days() -> None:
    features, labels = history(n_customers=5, n_days=4)
    data = training_table(features, labels)
    with pytest.raises(ValueError, match="at least 5 distinct days"):
        time_blocks(data["day"].unique(), 2, 2)
    with pytest.raises(ValueError, match="test_days >= 1"):
        split_purged(data, 1, 0, purge_days=3, seed=1)
    with pytest.raises(ValueError, match="too short"):
        TrainingConfig(validation_days=7, test_days=7).check_window(14)
    TrainingConfig(validation_days=7, test_days=7).check_window(15)


def test_training_days_precede_evaluation_days_in_the_card() -> None:
    features, labels = history()
    card = daily_model(date(2026, 3, 1), features, labels, None, CONFIG, {}).artifact.card
    assert card["train_days"][-1] < card["valid_days"][0] <= card["valid_days"][-1]
    assert card["valid_days"][-1] < card["test_days"][0]
    assert card["split"]["train"]["days"] == 8 and card["split"]["test"]["days"] == 3


# ---------------------------------------------------------------- threshold and costs


def test_decision_outcomes_by_hand() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.15, 0.1, 0.05, 0.04, 0.03, 0.02])
    costs = DecisionCosts(cost_missed_churner=500, cost_offer=50, cost_correct_offer=20)
    d = decision_outcomes(y, p, 0.3, costs)  # offers to the top 3: 2 churners, 1 stayer
    assert d["cost_per_customer"] == pytest.approx((2 * 20 + 1 * 50) / 10)
    assert d["flagged_share"] == 0.3
    assert d["flagged_churn_share"] == pytest.approx(2 / 3)
    assert d["flagged_capture"] == 1.0
    assert d["cost_per_customer_no_offers"] == pytest.approx(2 * 500 / 10)
    assert d["cost_per_customer_offer_all"] == pytest.approx((2 * 20 + 8 * 50) / 10)
    d = decision_outcomes(y, p, 0.85, costs)  # only the top one: one churner missed
    assert d["cost_per_customer"] == pytest.approx((20 + 500) / 10)


def test_threshold_is_chosen_on_validation_rows_only() -> None:
    features, labels = history()
    outcome = daily_model(date(2026, 3, 1), features, labels, None, CONFIG, {})
    data = training_table(features, labels)
    split = split_purged(data, 3, 3, purge_days=0, seed=CONFIG.seed)
    valid, test = split.valid, split.test
    booster = load_booster(outcome.artifact.booster_bytes)
    expected, _ = choose_threshold(
        valid["churned"].to_numpy(), predict_churn(booster, valid), CONFIG.costs
    )
    assert outcome.artifact.card["threshold"] == expected == outcome.metrics["threshold"]
    on_test, _ = choose_threshold(
        test["churned"].to_numpy(), predict_churn(booster, test), CONFIG.costs
    )
    assert on_test != expected  # the test rows would have picked another one


def test_costs_in_config_move_the_threshold() -> None:
    features, labels = history()
    cheap = TrainingConfig(**{**CONFIG.__dict__, "costs": DecisionCosts(cost_offer=5.0)})
    dear = TrainingConfig(**{**CONFIG.__dict__, "costs": DecisionCosts(cost_offer=300.0)})
    t_cheap = daily_model(date(2026, 3, 1), features, labels, None, cheap, {}).metrics
    t_dear = daily_model(date(2026, 3, 1), features, labels, None, dear, {}).metrics
    assert t_cheap["threshold"] < t_dear["threshold"]
    assert t_cheap["test_flagged_share"] > t_dear["test_flagged_share"]


# ---------------------------------------------------------------- reproducibility


def test_same_inputs_config_and_seed_give_a_byte_identical_model_and_card() -> None:
    features, labels = history()
    versions = {"features[2026-01-01]": "abc", "labels[2026-01-01]": "def"}
    code = {"package_version": "0.1.0", "git_commit": "f00"}
    a = daily_model(date(2026, 3, 1), features, labels, None, CONFIG, versions, code)
    shuffled = {k: v.sample(frac=1.0, random_state=4) for k, v in features.items()}
    b = daily_model(date(2026, 3, 1), shuffled, labels, None, CONFIG, versions, code)
    assert a.artifact.booster_bytes == b.artifact.booster_bytes
    assert a.artifact.version == b.artifact.version
    assert json.dumps(a.artifact.card, sort_keys=True) == json.dumps(
        b.artifact.card, sort_keys=True
    )
    other_seed = TrainingConfig(**{**CONFIG.__dict__, "seed": 8})
    c = daily_model(date(2026, 3, 1), features, labels, None, other_seed, versions, code)
    assert c.artifact.booster_bytes != a.artifact.booster_bytes


def test_card_records_data_code_and_library_versions() -> None:
    features, labels = history()
    versions = {"labels[2026-01-02]": "v2", "features[2026-01-01]": "v1"}
    outcome = daily_model(
        date(2026, 3, 1), features, labels, None, CONFIG, versions, code_version()
    )
    card = outcome.artifact.card
    assert card["data_versions"] == dict(sorted(versions.items()))
    assert set(card["code_version"]) >= {"package_version", "git_commit", "git_dirty"}
    assert set(card["library_versions"]) >= {"xgboost", "numpy", "pandas", "python"}
    assert card["training_config"]["seed"] == 7 and card["seed"] == 7
    assert card["trained_for"] == "2026-03-01"
    assert partition_of_version(outcome.artifact.version) == "2026-03-01"
    json.dumps(card, allow_nan=False)  # strict JSON: NaN became null
    assert card["incumbent_auc_on_same_validation"] is None


def test_code_version_never_fails_outside_a_repository(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no git binary at all
    info = code_version()
    assert info["git_commit"] is None and info["git_dirty"] is None
    assert jsonable({"x": np.float64("nan"), "y": np.int64(3)}) == {"x": None, "y": 3}


# ---------------------------------------------------------------- baselines and metrics


def test_every_baseline_is_measured_on_the_same_rows(tmp_path) -> None:
    features, labels = history()
    first = daily_model(date(2026, 3, 1), features, labels, None, CONFIG, {})
    later_features, later_labels = history(seed=1)
    outcome = daily_model(
        date(2026, 3, 2), later_features, later_labels, first.artifact, CONFIG, {}
    )
    comparison = outcome.comparison
    assert set(comparison["model"]) == {
        "candidate",
        "base rate",
        "heuristic: fewer sessions",
        "logistic regression",
        f"serving {first.artifact.version}",
    }
    m = outcome.metrics
    for rows, n in (("validation", m["n_valid"]), ("test", m["n_test"])):
        assert n > 150 and (comparison.loc[comparison["rows"] == rows, "n"] == n).all()
    assert m["test_base_rate_auc"] == 0.5
    assert m["test_auc"] > m["test_base_rate_auc"] + 0.2
    assert m["test_log_loss"] < m["test_base_rate_log_loss"]
    assert m["auc"] == m["test_auc"] and m["baseline_auc"] == m["test_base_rate_auc"]
    assert 0.5 < m["test_serving_auc"] <= 1.0 and 0.5 < m["test_logistic_auc"] <= 1.0
    for key in ("pr_auc", "log_loss", "brier", "lift_top_decile", "capture_top_decile"):
        for prefix in ("valid", "test", "test_logistic", "test_serving", "valid_serving"):
            assert np.isfinite(m[f"{prefix}_{key}"]), f"{prefix}_{key}"
    for segment in ("plan_basic", "plan_plus", "plan_pro", "tenure_0_90d", "tenure_366d_plus"):
        assert np.isfinite(m[f"test_slice_{segment}_auc"])
    assert sum(m[f"test_slice_plan_{p}_n"] for p in ("basic", "plus", "pro")) == m["n_test"]
    assert all(isinstance(v, (int, float, np.integer, np.floating)) for v in m.values())
    calibration = outcome.tables["calibration_test"]
    assert calibration["n"].sum() == m["n_test"]
    assert outcome.artifact.card["offline_estimate"]["auc"] == pytest.approx(m["test_auc"])
    assert set(outcome.artifact.card["reference"]["features"]) == set(FEATURE_COLUMNS)


# ---------------------------------------------------------------- champion gate


def test_degraded_candidate_is_rejected_and_the_previous_model_keeps_serving(tmp_path) -> None:
    models = store(tmp_path)
    features, labels = history()
    day1, day2, day3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)

    first = daily_model(day1, features, labels, models.serving_model(day1), CONFIG, {})
    assert first.artifact.promoted and first.decision.startswith("promoted")
    models.save(first.artifact)
    assert models.serving_model(day2).version == first.artifact.version

    shuffled_features, shuffled_labels = history(seed=1, shuffle_labels=True)
    incumbent = models.serving_model(day2)
    bad = daily_model(day2, shuffled_features, shuffled_labels, incumbent, CONFIG, {})
    assert not bad.artifact.promoted
    assert bad.gate["candidate_auc"] < CONFIG.gate.auc_floor
    assert bad.gate["incumbent_auc"] > 0.75  # the serving model, on the very same rows
    assert "below the floor" in bad.decision
    assert f"{first.artifact.version} keeps serving" in bad.decision
    models.save(bad.artifact)  # the rejected candidate is stored, for the record

    assert models.partitions() == [day1.isoformat(), day2.isoformat()]
    serving = models.serving_model(day3)
    assert serving.version == first.artifact.version
    assert serving.booster_bytes == first.artifact.booster_bytes
    assert models.load(day2.isoformat()).card["promoted"] is False


def test_candidate_worse_than_the_serving_model_by_more_than_the_tolerance(tmp_path) -> None:
    models = store(tmp_path)
    lenient = TrainingConfig(**{**CONFIG.__dict__, "gate": GatePolicy(auc_floor=0.5)})
    features, labels = history()
    first = daily_model(date(2026, 3, 1), features, labels, None, lenient, {})
    models.save(first.artifact)
    # The strongest signal scrambled in training: above the 0.5 floor, clearly worse.
    noisy_features, noisy_labels = history(seed=1, scramble="support_calls_28d")
    incumbent = models.serving_model(date(2026, 3, 2))
    worse = daily_model(date(2026, 3, 2), noisy_features, noisy_labels, incumbent, lenient, {})
    assert worse.gate["candidate_auc"] >= 0.5
    assert worse.gate["candidate_test_auc"] < worse.gate["serving_test_auc"] - 0.02
    assert not worse.artifact.promoted
    assert "worse than the serving model" in worse.decision
    # the same candidate clears a gate with a generous tolerance
    generous = TrainingConfig(
        **{**lenient.__dict__, "gate": GatePolicy(0.5, tolerance=1.0, beat_baselines=False)}
    )
    again = daily_model(date(2026, 3, 2), noisy_features, noisy_labels, incumbent, generous, {})
    assert again.artifact.promoted


def test_good_candidate_replaces_the_serving_model_and_a_pin_rolls_back(tmp_path) -> None:
    models = store(tmp_path)
    features, labels = history()
    first = daily_model(date(2026, 3, 1), features, labels, None, CONFIG, {})
    models.save(first.artifact)
    features2, labels2 = history(seed=1)
    second = daily_model(
        date(2026, 3, 2), features2, labels2, models.serving_model(date(2026, 3, 2)), CONFIG, {}
    )
    assert second.artifact.promoted
    models.save(second.artifact)
    assert models.serving_model(date(2026, 3, 3)).version == second.artifact.version
    # Rollback: CHURN_SERVING_MODEL=<version> pins the model store to the first model.
    pinned = store(tmp_path, pinned=first.artifact.version)
    assert pinned.serving_model(date(2026, 3, 3)).version == first.artifact.version
    assert pinned.serving_model(date(2026, 3, 1)) is None  # not trained before that day
