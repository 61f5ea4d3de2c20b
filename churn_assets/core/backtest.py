"""Replay the daily model decision over a history and measure what its scores realised.

What the graph does day by day (train the model of D on the matured window, gate it, score
D+1 with the newest promoted model, join the scores of D with the labels of D once they have
matured) as one loop over tables already derived, so that a long history can be judged in
minutes: realised AUC of the served scores next to the serving model's offline (test)
estimate and the two baselines on the same rows, per matured day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from churn_assets.core.daily_model import ModelArtifact, TrainingConfig, train_daily_model
from churn_assets.core.online import RealisedDay, RealisedRecord, online_metrics
from churn_assets.core.scoring import score_with


@dataclass(frozen=True)
class BacktestWindow:
    """The graph's time logic: H+G, the training window and the feature window."""

    maturity_days: int
    training_window_days: int
    feature_window_days: int
    first_training_day: date  # first day whose features are complete (nothing earlier is used)


@dataclass
class BacktestResult:
    models: list[ModelArtifact]
    realised: pd.DataFrame  # one row per matured day of scores


def _window(day: date, window: BacktestWindow) -> list[str]:
    last = day - timedelta(days=window.maturity_days)
    first = max(last - timedelta(days=window.training_window_days - 1), window.first_training_day)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def backtest(
    features_by_day: Mapping[str, pd.DataFrame],
    labels_by_day: Mapping[str, pd.DataFrame],
    model_days: Sequence[date],
    score_days: Sequence[date],
    window: BacktestWindow,
    config: TrainingConfig,
) -> BacktestResult:
    """Train a model on each of `model_days`, score each of `score_days` with the serving one.

    The gate of each model sees the realised record of the matured days before it, as the
    graph's model asset does. Realised rows: day, model_version, realised_auc,
    realised_heuristic_auc, realised_logistic_auc, offline_auc (the card's test AUC),
    offline_heuristic_auc, offline_logistic_auc, customers_matched, churners.
    """
    models: list[ModelArtifact] = []
    rows: list[dict[str, object]] = []
    pending = sorted(model_days)
    for day in sorted(set(pending) | set(score_days)):
        if day in score_days:
            serving = next((m for m in reversed(models) if m.promoted), None)
            key = day.isoformat()
            if serving is not None and key in labels_by_day:
                rows.append(
                    _realised(day, serving, features_by_day[key], labels_by_day[key], window)
                )
        if day in pending:
            keys = [k for k in _window(day, window) if k in labels_by_day]
            matured = (day - timedelta(days=window.maturity_days)).isoformat()
            record = RealisedRecord.of(
                RealisedDay(
                    str(r["day"]),
                    str(r["model_version"]),
                    float(r["realised_auc"]),  # type: ignore[arg-type]
                    float(r["realised_heuristic_auc"]),  # type: ignore[arg-type]
                    float(r["offline_auc"]),  # type: ignore[arg-type]
                )
                for r in rows
                if str(r["day"]) <= matured
            )
            serving = next((m for m in reversed(models) if m.promoted), None)
            outcome = train_daily_model(
                day,
                {k: features_by_day[k] for k in keys},
                {k: labels_by_day[k] for k in keys},
                serving,
                config,
                {},
                purge_days=window.maturity_days,
                realised=record if record.days else None,
            )
            models.append(outcome.artifact)
    return BacktestResult(models=models, realised=pd.DataFrame(rows))


def _realised(
    day: date,
    serving: ModelArtifact,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    window: BacktestWindow,
) -> dict[str, object]:
    scores = score_with(serving, features, window.feature_window_days)
    logistic = serving.card["baselines"]["logistic_regression"]
    online = online_metrics(scores, labels, features=features, logistic_card=logistic)
    offline = serving.card["offline_estimate"]
    return {
        "day": day.isoformat(),
        "model_version": serving.version,
        "customers_matched": online.metrics["customers_matched"],
        "churners": online.metrics["churners"],
        "realised_auc": online.metrics["realised_auc"],
        "realised_heuristic_auc": online.metrics["realised_heuristic_auc"],
        "realised_logistic_auc": online.metrics["realised_logistic_auc"],
        "offline_auc": offline["auc"],
        "offline_heuristic_auc": offline["heuristic_auc"],
        "offline_logistic_auc": offline["logistic_auc"],
    }
