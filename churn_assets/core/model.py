"""Train, evaluate and serialise the churn model (XGBoost).

The caller hands over the training and the validation rows (an honest split that shares no
label window, see core.daily_model.split_purged); this module fits, stops early and picks
the decision threshold on them.
The booster is stored in XGBoost's own JSON format (no pickle), byte-identical for the same
inputs and seed.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from churn_assets.core.evaluation import evaluate_predictions
from churn_assets.core.features import FEATURE_COLUMNS, MODEL_FEATURES

# TrainingData: a DataFrame with customer_id, day (datetime64[ns]), FEATURE_COLUMNS, churned.
TrainingData = pd.DataFrame

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.1,
    "min_child_weight": 1.0,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "lambda": 1.0,
    "nthread": 1,
}
MIN_TRAIN_ROWS = 20
MIN_VALID_ROWS = 10


@dataclass(frozen=True)
class DecisionCosts:
    """Cost of each outcome of the retention decision (offer when p >= threshold).

    A churner who gets no offer is lost (cost_missed_churner); an offer costs cost_offer
    when the customer would have stayed anyway and cost_correct_offer when it goes to a
    churner. Not offering to a customer who stays costs nothing.
    """

    cost_missed_churner: float = 500.0
    cost_offer: float = 50.0
    cost_correct_offer: float = 50.0


@dataclass
class TrainedModel:
    booster_bytes: bytes
    metrics: dict[str, float]
    threshold: float
    card: dict[str, Any] = field(default_factory=dict)


def _check_training_data(data: pd.DataFrame, features: Sequence[str]) -> None:
    missing = [c for c in ("customer_id", "day", *features, "churned") if c not in data]
    if missing:
        raise ValueError(f"training data lacks columns {missing}")


def _matrix(frame: pd.DataFrame, features: Sequence[str], label: bool) -> xgb.DMatrix:
    x = frame[list(features)].to_numpy(dtype=np.float64)
    y = frame["churned"].to_numpy(dtype=np.float64) if label else None
    return xgb.DMatrix(x, label=y, feature_names=list(features), nthread=1)


def model_features(booster: xgb.Booster) -> list[str]:
    """The feature columns a booster reads; refuses one that this code does not compute."""
    names = list(booster.feature_names or [])
    unknown = [n for n in names if n not in FEATURE_COLUMNS]
    if not names or unknown:
        raise ValueError(
            f"model was trained on features {names}, this code computes {list(FEATURE_COLUMNS)}"
        )
    return names


def feature_matrix(booster: xgb.Booster, features: pd.DataFrame) -> xgb.DMatrix:
    """The rows of a features table as the booster's input (its own columns, its order)."""
    return _matrix(features, model_features(booster), label=False)


def predict_churn(booster: xgb.Booster, features: pd.DataFrame) -> np.ndarray:
    """Churn probabilities (float64) for a features table; refuses a feature-set mismatch."""
    return booster.predict(feature_matrix(booster, features)).astype(np.float64)


def choose_threshold(
    y_true: np.ndarray, y_prob: np.ndarray, costs: DecisionCosts
) -> tuple[float, float]:
    """(threshold, cost per customer) minimising the realised cost of offering when p >= t.

    Candidates are the distinct predicted probabilities (offer to everyone at or above) and
    "offer to nobody" (a threshold just above the highest probability). Ties in cost go to
    the higher threshold: fewer offers for the same money.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_prob, dtype=np.float64)
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    last_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    tp = np.r_[0.0, np.cumsum(y_sorted)[last_of_tie]]
    flagged = np.r_[0.0, (np.arange(p.size) + 1.0)[last_of_tie]]
    fp = flagged - tp
    fn = y.sum() - tp
    cost = fn * costs.cost_missed_churner + fp * costs.cost_offer + tp * costs.cost_correct_offer
    thresholds = np.r_[np.nextafter(p_sorted[0], np.inf), p_sorted[last_of_tie]]
    best = int(np.argmin(cost))  # first minimum = highest threshold
    return float(thresholds[best]), float(cost[best] / p.size)


def train_churn_model(
    train: TrainingData,
    valid: TrainingData,
    params: dict[str, Any] | None = None,
    seed: int = 42,
    num_boost_round: int = 300,
    early_stopping_rounds: int = 30,
    costs: DecisionCosts | None = None,
    features: Sequence[str] = MODEL_FEATURES,
    min_train_rows: int = MIN_TRAIN_ROWS,
    min_valid_rows: int = MIN_VALID_ROWS,
) -> TrainedModel:
    """Fit on `train`; stop early and pick the decision threshold on `valid`.

    `valid` must share no label window with `train` (core.daily_model.split_purged makes
    such a split): early stopping on rows the trees could memorise would keep growing trees
    that recognise accounts instead of behaviour. Its metrics are slightly optimistic
    (validation also chose the number of trees); the held-out test rows are not.
    """
    _check_training_data(train, features)
    _check_training_data(valid, features)
    costs = costs or DecisionCosts()
    for name, part, minimum in (("train", train, min_train_rows), ("valid", valid, min_valid_rows)):
        if len(part) < minimum:
            raise ValueError(f"too few {name} rows: {len(part)} < {minimum}")
        if part["churned"].nunique() < 2:
            raise ValueError(
                f"{name} rows have a single class (churned={part['churned'].iloc[0]}): "
                "the model cannot be trained or evaluated"
            )
    full_params = {**DEFAULT_PARAMS, **(params or {}), "seed": int(seed)}
    train = train.sort_values(["day", "customer_id"], kind="mergesort")
    valid = valid.sort_values(["day", "customer_id"], kind="mergesort")
    dtrain, dvalid = _matrix(train, features, label=True), _matrix(valid, features, label=True)
    booster = xgb.train(
        full_params,
        dtrain,
        num_boost_round=num_boost_round,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=early_stopping_rounds,
        verbose_eval=False,
    )
    best_iteration = int(booster.best_iteration)
    booster = booster[: best_iteration + 1]  # keep only the trees that are used

    y_valid = valid["churned"].to_numpy(dtype=np.float64)
    p_valid = booster.predict(dvalid).astype(np.float64)
    train_rate = float(train["churned"].mean())
    threshold, cost = choose_threshold(y_valid, p_valid, costs)
    metrics: dict[str, float] = {
        **evaluate_predictions(y_valid, p_valid),
        **{
            f"baseline_{k}": v
            for k, v in evaluate_predictions(y_valid, np.full(y_valid.size, train_rate)).items()
            if k in ("auc", "log_loss", "brier")
        },
        "n_train": len(train),
        "n_valid": len(valid),
        "train_positive_rate": train_rate,
        "valid_positive_rate": float(y_valid.mean()),
        "cost_per_customer": cost,
        "cost_per_customer_no_offers": float(y_valid.mean() * costs.cost_missed_churner),
        "cost_per_customer_offer_all": float(
            y_valid.mean() * costs.cost_correct_offer + (1 - y_valid.mean()) * costs.cost_offer
        ),
    }

    def _days(frame: pd.DataFrame) -> list[str]:
        return [str(pd.Timestamp(d).date()) for d in np.sort(pd.unique(frame["day"]))]

    card = {
        "model": "xgboost binary:logistic churn classifier",
        "label": "true churn label (cancellation not followed by re-activation within grace)",
        "train_days": _days(train),
        "valid_days": _days(valid),
        "features": list(FEATURE_COLUMNS),  # the features table the model was trained from
        "model_features": list(features),  # the columns the trees read
        "params": full_params,
        "seed": int(seed),
        "num_boost_round": int(num_boost_round),
        "early_stopping_rounds": int(early_stopping_rounds),
        "best_iteration": best_iteration,
        "threshold": threshold,
        "decision_costs": asdict(costs),
        "metrics": metrics,
        "library_versions": {
            "xgboost": xgb.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "python": platform.python_version(),
        },
    }
    raw = bytes(booster.save_raw("json"))
    return TrainedModel(booster_bytes=raw, metrics=metrics, threshold=threshold, card=card)


def load_booster(raw: bytes, nthread: int | None = None) -> xgb.Booster:
    """A booster from bytes written by train_churn_model (XGBoost JSON, no pickle).

    Prediction and contributions are computed row by row, so the thread count changes
    speed only; None leaves XGBoost's default (all cores) for scoring many customers.
    """
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    if nthread is not None:
        booster.set_param({"nthread": int(nthread)})
    return booster
