"""Seeded search: order, bounds, the budget of trials and of time, and the card."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churn_assets.core.daily_model import TrainingConfig, train_daily_model
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.tuning import SEARCH_SPACE, TuningConfig, candidate_params, tune


def test_candidates_start_with_the_defaults_and_follow_the_seed() -> None:
    a = candidate_params(6, seed=3)
    assert a[0] == {}
    assert len(a) == 6
    assert a == candidate_params(6, seed=3)
    assert a[:4] == candidate_params(4, seed=3)  # a smaller budget is a prefix
    assert a != candidate_params(6, seed=4)
    for params in a[1:]:
        assert set(params) == set(SEARCH_SPACE)
        for name, (kind, low, high) in SEARCH_SPACE.items():
            assert low * 0.999 <= params[name] <= high * 1.001
            if kind == "int":
                assert isinstance(params[name], int)


class FakeClock:
    """Time that passes only when a trial runs (`spend`)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _objective(values: list[float], clock: FakeClock | None = None, seconds: float = 0.0):
    calls: list[dict[str, Any]] = []

    def evaluate(params: dict[str, Any]) -> tuple[float, str, dict[str, Any]]:
        calls.append(params)
        if clock is not None:
            clock.now += seconds
        i = len(calls) - 1
        return values[i], f"model-{i}", {"i": i}

    return evaluate, calls


def test_best_trial_wins_ties_go_to_the_earlier_and_nan_never_wins() -> None:
    evaluate, calls = _objective([0.5, math.nan, 0.3, 0.3, 0.4])
    result = tune(evaluate, TuningConfig(max_trials=5), seed=1, clock=FakeClock())
    assert len(calls) == 5
    assert result.best_index == 2 and result.best == "model-2"
    assert result.stopped_by == "max_trials"
    assert result.trials[2].params == candidate_params(5, seed=1)[2]
    evaluate, _ = _objective([math.nan, 0.9])
    assert tune(evaluate, TuningConfig(max_trials=2), seed=1, clock=FakeClock()).best_index == 1


def test_time_budget_stops_the_search_but_the_first_trial_always_runs() -> None:
    clock = FakeClock()
    evaluate, calls = _objective([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], clock, seconds=1.0)
    config = TuningConfig(max_trials=6, time_budget_s=2.5)
    # trials take 1 s: they start at 0, 1 and 2 s; none starts once 2.5 s have passed
    result = tune(evaluate, config, seed=0, clock=clock)
    assert len(calls) == 3
    assert result.stopped_by == "time_budget"
    assert result.best_index == 2 and result.seconds == 3.0
    card = result.card(config, 0, "x")
    assert card["trials_run"] == 3 and card["reproducible"] is False
    assert card["max_trials"] == 6 and card["time_budget_s"] == 2.5
    clock = FakeClock()
    evaluate, calls = _objective([0.9, 0.1], clock, seconds=10.0)
    tiny = tune(evaluate, TuningConfig(max_trials=2, time_budget_s=1.0), seed=0, clock=clock)
    assert len(calls) == 1 and tiny.best == "model-0"


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="max_trials"):
        TuningConfig(max_trials=0)
    with pytest.raises(ValueError, match="time_budget_s"):
        TuningConfig(time_budget_s=0)


def _days(n_customers: int = 200, n_days: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    features, labels = {}, {}
    for i in range(n_days):
        f = pd.DataFrame(
            rng.poisson(2.0, size=(n_customers, len(FEATURE_COLUMNS))).astype(np.float64),
            columns=list(FEATURE_COLUMNS),
        )
        f["tenure_days"] = rng.integers(10, 900, n_customers).astype(np.float64)
        logit = -2.5 + 0.8 * f["support_calls_28d"] - 0.003 * f["tenure_days"]
        churned = (rng.random(n_customers) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        ids = [f"C{k:04d}" for k in range(n_customers)]
        f.insert(0, "customer_id", ids)
        key = (date(2026, 1, 1) + pd.Timedelta(days=i)).isoformat()
        features[key] = f
        labels[key] = pd.DataFrame({"customer_id": ids, "churned": churned})
    return features, labels


def test_tuning_is_recorded_in_the_model_card() -> None:
    features, labels = _days()
    config = TrainingConfig(
        validation_days=2,
        test_days=2,
        num_boost_round=40,
        early_stopping_rounds=8,
        tuning=TuningConfig(max_trials=3),
    )
    outcome = train_daily_model(  # labels drawn day by day: no label window to purge
        date(2026, 3, 1), features, labels, None, config, {}, purge_days=0
    )
    tuning = outcome.artifact.card["tuning"]
    assert tuning["trials_run"] == 3 and tuning["stopped_by"] == "max_trials"
    assert tuning["reproducible"] is True
    objectives = [t["objective"] for t in tuning["trials"]]
    assert tuning["best_trial"] == int(np.argmin(objectives))
    best = tuning["trials"][tuning["best_trial"]]
    assert tuning["best_params"] == best["params"]
    for name, value in best["params"].items():  # the served model uses the chosen params
        assert outcome.artifact.card["params"][name] == value
    # the chosen trial's validation log loss is the model's validation log loss
    assert outcome.metrics["valid_log_loss"] == pytest.approx(min(objectives))
    assert outcome.metrics["tuning_trials"] == 3
    assert "seconds" not in str(tuning)  # timings stay out of the (reproducible) card
    assert len(outcome.tables["tuning_trials"]) == 3
