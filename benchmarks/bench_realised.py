"""Realised against offline quality of the daily models over a long generated history.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_realised.py [--days 240] [--customers 2000]
        [--retrain-every 1] [--tables /tmp/tables.pkl] [--out realised.csv]
        [--training-window-days 28] [--with-identity-features] [--max-trials 8]

Generates a landing zone (seed 7), derives features and labels with the core functions the
assets call, then replays the graph's daily decision with the production settings (H = 30,
G = 30, feature window 28, the production TrainingConfig): a model per day, gated, the
newest promoted one scoring the next days. For every day whose labels have matured it prints
the realised AUC of the served scores, the serving model's offline (test) AUC and the two
baselines (sessions heuristic, logistic regression) on the same customers. Figures, not
assertions: CI does not run this (about half an hour on two cores).
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd

from churn_assets.core.backtest import BacktestWindow, backtest
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.generator import GeneratorConfig, generate_landing
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.settings import PipelineSettings
from churn_assets_tests.history_tables import HistoryTables, derive_tables


def tables_for(settings: PipelineSettings, days: int, customers: int, cache: str) -> HistoryTables:
    if cache and Path(cache).exists():
        with open(cache, "rb") as handle:
            return pickle.load(handle)  # a file this script wrote
    with tempfile.TemporaryDirectory() as root:
        config = GeneratorConfig(
            start=settings.history_start,
            days=days,
            customers=customers,
            seed=7,
            horizon_days=settings.horizon_days,
            grace_days=settings.grace_days,
        )
        generate_landing(LocalObjectStore(Path(root)).put, config)
        all_days = [settings.history_start + timedelta(days=i) for i in range(days)]
        tables = derive_tables(Path(root), settings, all_days)
    if cache:
        with open(cache, "wb") as handle:
            pickle.dump(tables, handle)
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--retrain-every", type=int, default=1)
    parser.add_argument("--tables", default="", help="pickle cache of the derived tables")
    parser.add_argument("--out", default="", help="write the per-day table as CSV")
    parser.add_argument(
        "--training-window-days", type=int, default=0, help="instead of the production 90"
    )
    parser.add_argument(
        "--with-identity-features", action="store_true", help="let the model read seats and MRR"
    )
    parser.add_argument("--max-trials", type=int, default=0, help="tuning trials per model")
    args = parser.parse_args()

    settings = PipelineSettings()  # production time settings and training configuration
    training = settings.training
    if args.with_identity_features:
        training = replace(training, features=FEATURE_COLUMNS)
    if args.max_trials:
        training = replace(training, tuning=replace(training.tuning, max_trials=args.max_trials))
    settings = replace(
        settings,
        training=training,
        training_window_days=args.training_window_days or settings.training_window_days,
    )
    started = time.perf_counter()
    tables = tables_for(settings, args.days, args.customers, args.tables)
    derived = time.perf_counter() - started
    last = settings.history_start + timedelta(days=args.days - 1)
    first_model = settings.model_start
    span = (last - first_model).days
    model_days = [first_model + timedelta(days=i) for i in range(0, span + 1, args.retrain_every)]
    score_days = [first_model + timedelta(days=i) for i in range(1, span + 1)]
    window = BacktestWindow(
        maturity_days=settings.label_maturity_days,
        training_window_days=settings.training_window_days,
        feature_window_days=settings.feature_window_days,
        first_training_day=settings.first_complete_features,
    )
    started = time.perf_counter()
    result = backtest(
        tables.features, tables.labels, model_days, score_days, window, settings.training
    )
    replayed = time.perf_counter() - started

    realised = result.realised
    realised["realised_minus_offline"] = realised["realised_auc"] - realised["offline_auc"]
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    print(realised.drop(columns="model_version").round(3).to_string(index=False))
    cards = pd.DataFrame([m.card["metrics"] for m in result.models])
    summary = {
        "models": len(result.models),
        "promoted": sum(m.promoted for m in result.models),
        "matured days": len(realised),
        "median validation AUC": cards["valid_auc"].median(),
        "median test AUC": cards["test_auc"].median(),
        "median test AUC, logistic": cards["test_logistic_auc"].median(),
        "median test AUC, heuristic": cards["test_heuristic_auc"].median(),
        "realised AUC (mean over days)": realised["realised_auc"].mean(),
        "realised AUC, min / max": f"{realised.realised_auc.min():.3f} / "
        f"{realised.realised_auc.max():.3f}",
        "realised heuristic AUC (mean)": realised["realised_heuristic_auc"].mean(),
        "realised logistic AUC (mean)": realised["realised_logistic_auc"].mean(),
        "days |realised - offline| <= 0.03": int(
            (realised["realised_minus_offline"].abs() <= 0.03).sum()
        ),
        "days realised > heuristic": int(
            (realised["realised_auc"] > realised["realised_heuristic_auc"]).sum()
        ),
        "days realised > logistic": int(
            (realised["realised_auc"] > realised["realised_logistic_auc"]).sum()
        ),
        "seconds deriving tables": round(derived),
        "seconds replaying models": round(replayed),
    }
    for key, value in summary.items():
        print(f"{key:>36}: {value:.3f}" if isinstance(value, float) else f"{key:>36}: {value}")
    if args.out:
        realised.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
