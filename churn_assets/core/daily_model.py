"""The daily model decision: train a candidate, measure it against the serving model on the
same out-of-time validation rows, and decide whether it may serve (the champion gate).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from churn_assets.core.metrics import classification_metrics
from churn_assets.core.model import (
    DecisionCosts,
    load_booster,
    predict_churn,
    split_out_of_time,
    train_churn_model,
)


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model as stored: its bytes and the card that says how it was made."""

    partition: str
    version: str
    booster_bytes: bytes
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        return bool(self.card.get("promoted", False))


@dataclass(frozen=True)
class GatePolicy:
    """A candidate serves when its AUC clears the floor and is within tolerance of the incumbent."""

    auc_floor: float = 0.6
    tolerance: float = 0.02


@dataclass(frozen=True)
class TrainingConfig:
    seed: int = 7
    validation_days: int = 7
    num_boost_round: int = 300
    early_stopping_rounds: int = 30
    costs: DecisionCosts = DecisionCosts()
    gate: GatePolicy = GatePolicy()


@dataclass
class DailyModelOutcome:
    artifact: ModelArtifact
    metrics: dict[str, float]
    comparison: pd.DataFrame
    gate: dict[str, float]
    decision: str


def training_table(
    features_by_day: Mapping[str, pd.DataFrame], labels_by_day: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """Features of each day joined with that day's matured labels (days with both only)."""
    frames = [
        features_by_day[key]
        .merge(labels_by_day[key][["customer_id", "churned"]], on="customer_id", how="inner")
        .assign(day=pd.Timestamp(key))
        for key in sorted(set(features_by_day) & set(labels_by_day))
    ]
    if not frames:
        raise ValueError("no day has both features and matured labels")
    return pd.concat(frames, ignore_index=True)


def train_daily_model(
    day: date,
    features_by_day: Mapping[str, pd.DataFrame],
    labels_by_day: Mapping[str, pd.DataFrame],
    incumbent: ModelArtifact | None,
    config: TrainingConfig,
    data_versions: Mapping[str, str],
) -> DailyModelOutcome:
    data = training_table(features_by_day, labels_by_day)
    trained = train_churn_model(
        data,
        seed=config.seed,
        validation_days=config.validation_days,
        num_boost_round=config.num_boost_round,
        early_stopping_rounds=config.early_stopping_rounds,
        costs=config.costs,
    )
    _, valid = split_out_of_time(data, config.validation_days)
    y_valid = valid["churned"].to_numpy(dtype=np.float64)
    candidate = {k: trained.metrics[k] for k in ("auc", "pr_auc", "log_loss", "brier")}
    rows = [{"model": "candidate", **candidate}]
    rows.append({"model": "base rate", **{k: trained.metrics[f"baseline_{k}"] for k in candidate}})
    incumbent_auc = float("nan")
    if incumbent is not None:
        try:
            p_incumbent = predict_churn(load_booster(incumbent.booster_bytes), valid)
        except ValueError:
            p_incumbent = None  # trained on another feature set: no like-for-like comparison
        if p_incumbent is not None:
            served = classification_metrics(y_valid, p_incumbent)
            incumbent_auc = served["auc"]
            rows.append({"model": f"serving {incumbent.version}", **served})
    policy = config.gate
    clears_floor = candidate["auc"] >= policy.auc_floor
    keeps_up = np.isnan(incumbent_auc) or candidate["auc"] >= incumbent_auc - policy.tolerance
    promoted = bool(clears_floor and keeps_up)
    if promoted:
        decision = "promoted: serves from the next day"
    elif not clears_floor:
        decision = f"rejected: AUC {candidate['auc']:.3f} below the floor {policy.auc_floor:.3f}"
    else:
        decision = (
            f"rejected: AUC {candidate['auc']:.3f} worse than serving {incumbent_auc:.3f} "
            f"by more than {policy.tolerance:.3f}; {incumbent.version if incumbent else ''} "
            "keeps serving"
        )
    version = f"{day.isoformat()}-{hashlib.sha256(trained.booster_bytes).hexdigest()[:10]}"
    card = trained.card | {
        "promoted": promoted,
        "decision": decision,
        "incumbent_version": incumbent.version if incumbent else None,
        "incumbent_auc_on_same_validation": None if np.isnan(incumbent_auc) else incumbent_auc,
        "gate": {"auc_floor": policy.auc_floor, "tolerance": policy.tolerance},
        "data_versions": dict(sorted(data_versions.items())),
        "trained_for": day.isoformat(),
    }
    return DailyModelOutcome(
        artifact=ModelArtifact(day.isoformat(), version, trained.booster_bytes, card),
        metrics=trained.metrics | {"incumbent_auc": incumbent_auc},
        comparison=pd.DataFrame(rows).round(4),
        gate={
            "candidate_auc": candidate["auc"],
            "incumbent_auc": incumbent_auc,
            "auc_floor": policy.auc_floor,
            "tolerance": policy.tolerance,
        },
        decision=decision,
    )
