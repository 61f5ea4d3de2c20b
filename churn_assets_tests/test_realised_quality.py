"""What the model card claims is what the served scores realise, on a generated history long
enough for scores to mature (small time settings; production settings: benchmarks/).

The history is replayed through the core functions every asset calls (core.backtest): a
model every few days, gated, the newest promoted one scoring each day, and each day of scores
joined with its labels once they have matured. About a minute and a half on two cores.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from churn_assets.core.backtest import BacktestResult, BacktestWindow, backtest
from churn_assets.core.daily_model import TrainingConfig
from churn_assets.core.generator import GeneratorConfig, generate_landing
from churn_assets.core.tuning import TuningConfig
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.settings import PipelineSettings
from churn_assets_tests.history_tables import derive_tables

START = date(2026, 1, 1)
DAYS = 90
SETTINGS = PipelineSettings(
    history_start=START,
    horizon_days=10,
    grace_days=3,
    feature_window_days=14,
    training_window_days=60,
    min_training_days=28,
    training=TrainingConfig(
        validation_days=5,
        test_days=10,
        test_customer_share=0.35,
        num_boost_round=200,
        tuning=TuningConfig(max_trials=2, time_budget_s=60),
    ),
)
RETRAIN_EVERY = 4
# At this size a day has about 1,300 customers and 75 churners: one day's realised AUC has a
# standard error near 0.025 and swings by 0.1 within a week, as does the card's test AUC
# (about 450 customers over 10 days). The card must hold within 0.03 on average over the
# matured days; a single day may stray by two such standard errors of the difference more.
# (On the production settings the per-day figures are in the README.)
MEAN_GAP = 0.03
DAY_GAP = 0.03 + 2 * 0.03


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> BacktestResult:
    landing = Path(tmp_path_factory.mktemp("realised")) / "landing"
    config = GeneratorConfig(
        start=START,
        days=DAYS,
        customers=2000,
        seed=7,
        horizon_days=SETTINGS.horizon_days,
        grace_days=SETTINGS.grace_days,
    )
    generate_landing(LocalObjectStore(landing).put, config)
    tables = derive_tables(landing, SETTINGS, [START + timedelta(days=i) for i in range(DAYS)])
    last = START + timedelta(days=DAYS - 1)
    span = (last - SETTINGS.model_start).days
    return backtest(
        tables.features,
        tables.labels,
        [SETTINGS.model_start + timedelta(days=i) for i in range(0, span + 1, RETRAIN_EVERY)],
        [SETTINGS.model_start + timedelta(days=i) for i in range(1, span + 1)],
        BacktestWindow(
            SETTINGS.label_maturity_days,
            SETTINGS.training_window_days,
            SETTINGS.feature_window_days,
            SETTINGS.first_complete_features,
        ),
        SETTINGS.training,
    )


def test_realised_auc_of_every_matured_day_is_what_the_card_claimed(replay) -> None:
    days = replay.realised
    assert len(days) >= 15  # enough matured days of scores to judge
    assert days["churners"].min() >= 50 and days["customers_matched"].min() >= 1000
    gap = days["realised_auc"] - days["offline_auc"]
    assert abs(gap.mean()) <= MEAN_GAP, days.round(3).to_string()
    assert (gap.abs() <= DAY_GAP).all(), days.round(3).to_string()


def test_served_scores_beat_the_sessions_heuristic_every_matured_day(replay) -> None:
    days = replay.realised
    margin = days["realised_auc"] - days["realised_heuristic_auc"]
    assert (margin > 0.05).all(), days.round(3).to_string()


def test_every_served_model_passed_the_gate_on_honest_validation(replay) -> None:
    served = set(replay.realised["model_version"])
    cards = {m.version: m.card for m in replay.models}
    assert served and all(cards[v]["promoted"] for v in served)
    for version in served:
        metrics = cards[version]["metrics"]
        assert metrics["valid_auc"] > metrics["valid_heuristic_auc"]
        assert metrics["valid_auc"] > metrics["valid_logistic_auc"]
        assert metrics["purged_train_rows"] > 0
    rejected = [m for m in replay.models if not m.promoted]
    assert all(m.card["decision"].startswith("rejected: ") for m in rejected)
