"""The daily model decision: train a candidate, measure it against the serving model on the
same out-of-time rows, and decide whether it may serve (the champion gate).

The training window (the days of matured labels) is cut into three contiguous blocks of
days, oldest first: train | validation | test. The trees learn on train; early stopping,
the hyperparameter search, the decision threshold and the champion gate use validation;
the figures reported (and promised to the online monitor) come from test, which no choice
has seen. Every model is reported next to three baselines on the same rows: the base rate,
a logistic regression on the same features, and the model serving today.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn_assets.core.drift import PSI_BINS, feature_references, reference_distribution
from churn_assets.core.evaluation import (
    METRIC_NAMES,
    TENURE_COHORTS,
    LogisticBaseline,
    calibration_table,
    evaluate_predictions,
    fit_logistic_baseline,
    slice_metrics,
)
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.model import (
    DecisionCosts,
    TrainedModel,
    load_booster,
    predict_churn,
    train_churn_model,
)
from churn_assets.core.tuning import TuningConfig, TuningResult, tune

MODEL_NAMES = {
    "candidate": "candidate",
    "base_rate": "base rate",
    "logistic": "logistic regression",
    "serving": "serving",
}
BLOCK_NAMES = {"valid": "validation", "test": "test"}
SLICE_METRICS = ("n", "positive_rate", "auc", "pr_auc", "log_loss", "brier", "lift_top_decile")
TUNING_OBJECTIVE = "validation log loss (lower is better)"
DECISION_KEYS = (
    "cost_per_customer",
    "cost_per_customer_no_offers",
    "cost_per_customer_offer_all",
    "flagged_share",
    "flagged_churn_share",
    "flagged_capture",
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
    """A candidate serves when its validation AUC clears the floor and is not below the
    serving model's AUC on the same validation rows by more than the tolerance."""

    auc_floor: float = 0.6
    tolerance: float = 0.02


@dataclass(frozen=True)
class TrainingConfig:
    """How each day's model is trained, measured and gated.

    Blocks are counted in distinct days present in the window. `embargo_days` drops that
    many days between train and validation and between validation and test, so that the
    label horizons of the blocks overlap less (0 keeps every day for training).
    """

    seed: int = 7
    validation_days: int = 7
    test_days: int = 7
    embargo_days: int = 0
    num_boost_round: int = 300
    early_stopping_rounds: int = 30
    costs: DecisionCosts = field(default_factory=DecisionCosts)
    gate: GatePolicy = field(default_factory=GatePolicy)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    logistic_l2: float = 1.0
    tenure_cohorts: tuple[int, ...] = TENURE_COHORTS

    @property
    def days_needed(self) -> int:
        """Fewest distinct training days: one for train plus validation, test and embargoes."""
        return 1 + self.validation_days + self.test_days + 2 * self.embargo_days

    def check_window(self, training_window_days: int) -> None:
        """Raise when a window of `training_window_days` cannot hold the three blocks."""
        if training_window_days < self.days_needed:
            raise ValueError(
                f"training window of {training_window_days} days is too short for validation "
                f"{self.validation_days} + test {self.test_days} + embargo 2 x "
                f"{self.embargo_days} days and at least one training day"
            )


@dataclass
class DailyModelOutcome:
    artifact: ModelArtifact
    metrics: dict[str, float]
    comparison: pd.DataFrame
    gate: dict[str, float]
    decision: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


# ----------------------------------------------------------------------------- data


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


def split_train_valid_test(
    data: pd.DataFrame, validation_days: int, test_days: int, embargo_days: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three contiguous blocks of distinct days, oldest first: train | validation | test.

    Every validation day is later than every training day and every test day later than
    every validation day; `embargo_days` days are dropped between the blocks. Rows are
    sorted by day and customer_id so that the result does not depend on the input order.
    """
    if validation_days < 1 or test_days < 1 or embargo_days < 0:
        raise ValueError(
            f"need validation_days >= 1, test_days >= 1, embargo_days >= 0; got "
            f"{validation_days}, {test_days}, {embargo_days}"
        )
    days = np.sort(pd.unique(data["day"]))
    n_test_start = days.size - test_days
    n_valid_start = n_test_start - embargo_days - validation_days
    n_train_end = n_valid_start - embargo_days
    if n_train_end < 1:
        raise ValueError(
            f"need at least {validation_days + test_days + 2 * embargo_days + 1} distinct days "
            f"(validation {validation_days}, test {test_days}, embargo 2 x {embargo_days}, "
            f"train >= 1), got {days.size}"
        )
    ordered = data.sort_values(["day", "customer_id"], kind="mergesort").reset_index(drop=True)

    def block(chosen: np.ndarray) -> pd.DataFrame:
        return ordered.loc[ordered["day"].isin(chosen)].reset_index(drop=True)

    return (
        block(days[:n_train_end]),
        block(days[n_valid_start : n_valid_start + validation_days]),
        block(days[n_test_start:]),
    )


def _day_list(frame: pd.DataFrame) -> list[str]:
    return [str(pd.Timestamp(d).date()) for d in np.sort(pd.unique(frame["day"]))]


# ----------------------------------------------------------------------------- decision


def decision_outcomes(
    y_true: np.ndarray, y_prob: np.ndarray, threshold: float, costs: DecisionCosts
) -> dict[str, float]:
    """What offering to everyone at or above `threshold` costs and catches on these rows."""
    y = np.asarray(y_true, dtype=np.float64)
    offer = np.asarray(y_prob, dtype=np.float64) >= threshold
    n, churners = y.size, y.sum()
    if n == 0:
        return dict.fromkeys(DECISION_KEYS, math.nan)
    tp = float(y[offer].sum())
    fp = float(offer.sum() - tp)
    fn = float(churners - tp)
    cost = fn * costs.cost_missed_churner + fp * costs.cost_offer + tp * costs.cost_correct_offer
    return {
        "cost_per_customer": cost / n,
        "cost_per_customer_no_offers": float(churners * costs.cost_missed_churner / n),
        "cost_per_customer_offer_all": float(
            (churners * costs.cost_correct_offer + (n - churners) * costs.cost_offer) / n
        ),
        "flagged_share": float(offer.mean()),
        "flagged_churn_share": tp / offer.sum() if offer.any() else math.nan,
        "flagged_capture": tp / churners if churners > 0 else math.nan,
    }


def _gate(
    policy: GatePolicy, candidate_auc: float, incumbent_auc: float, incumbent: str | None
) -> tuple[bool, str]:
    problems = []
    if not candidate_auc >= policy.auc_floor:  # a NaN AUC does not clear the floor
        problems.append(
            f"validation AUC {candidate_auc:.3f} is below the floor {policy.auc_floor:.3f}"
        )
    if not math.isnan(incumbent_auc) and candidate_auc < incumbent_auc - policy.tolerance:
        problems.append(
            f"validation AUC {candidate_auc:.3f} is worse than the serving model's "
            f"{incumbent_auc:.3f} on the same rows by more than {policy.tolerance:.3f}"
        )
    if not problems:
        return True, "promoted: serves from the next day"
    keeps = f"{incumbent} keeps serving" if incumbent else "no model serves until one passes"
    return False, "rejected: " + "; ".join(problems) + f"; {keeps}"


# ----------------------------------------------------------------------------- training


def train_daily_model(
    day: date,
    features_by_day: Mapping[str, pd.DataFrame],
    labels_by_day: Mapping[str, pd.DataFrame],
    incumbent: ModelArtifact | None,
    config: TrainingConfig,
    data_versions: Mapping[str, str],
    code_version: Mapping[str, Any] | None = None,
) -> DailyModelOutcome:
    """Tune and train the candidate of `day`, evaluate it and its baselines, gate it.

    Deterministic: the same tables, config and seed give the same model bytes and the same
    card (provided the tuning stops on max_trials, as its card says). `incumbent` is the
    model serving on `day`; `code_version` comes from code_version() (kept out of here so
    that this function does no I/O).
    """
    data = training_table(features_by_day, labels_by_day)
    train, valid, test = split_train_valid_test(
        data, config.validation_days, config.test_days, config.embargo_days
    )
    tuned = _tune_candidate(pd.concat([train, valid], ignore_index=True), config)
    trained = tuned.best
    threshold = trained.threshold
    blocks = {"valid": valid, "test": test}
    y = {b: f["churned"].to_numpy(dtype=np.float64) for b, f in blocks.items()}
    train_rate = float(train["churned"].mean())
    logistic = fit_logistic_baseline(train, l2=config.logistic_l2)
    predictions, serving_note = _predictions(trained, logistic, train_rate, incumbent, blocks)

    evaluation = {
        b: {m: evaluate_predictions(y[b], p[b]) for m, p in predictions.items()} for b in blocks
    }
    decisions = {
        f"{b}_{m}": decision_outcomes(y[b], predictions[m][b], t, config.costs)
        for b in blocks
        for m, t in (
            ("candidate", threshold),
            ("serving", float(incumbent.card.get("threshold", math.nan)) if incumbent else 0),
        )
        if m in predictions
    }
    p_test = predictions["candidate"]["test"]
    calibration = calibration_table(y["test"], p_test)
    slices = slice_metrics(test, y["test"], p_test, config.tenure_cohorts)

    candidate_auc = evaluation["valid"]["candidate"]["auc"]
    incumbent_auc = evaluation["valid"].get("serving", {}).get("auc", math.nan)
    incumbent_name = incumbent.version if incumbent else None
    promoted, decision = _gate(config.gate, candidate_auc, incumbent_auc, incumbent_name)
    eval_days = set(_day_list(valid)) | set(_day_list(test))
    overlap = len(eval_days & set(incumbent.card.get("train_days", []))) if incumbent else math.nan

    metrics = _flat_metrics(evaluation, decisions, slices)
    metrics |= {
        "threshold": threshold,
        "best_iteration": trained.card["best_iteration"],
        **{f"n_{b}": len(f) for b, f in (("train", train), *blocks.items())},
        **{f"days_{b}": f["day"].nunique() for b, f in (("train", train), *blocks.items())},
        "train_positive_rate": train_rate,
        "valid_positive_rate": float(y["valid"].mean()),
        "test_positive_rate": float(y["test"].mean()),
        "tuning_trials": len(tuned.trials),
        "tuning_best_trial": tuned.best_index,
        "gate_candidate_auc": candidate_auc,
        "gate_serving_auc": incumbent_auc,
        "gate_auc_margin": candidate_auc - incumbent_auc,
        "incumbent_auc": incumbent_auc,
        "serving_trained_on_eval_days": overlap,
    }
    split = {
        name: {
            "first_day": _day_list(f)[0],
            "last_day": _day_list(f)[-1],
            "days": int(f["day"].nunique()),
            "rows": len(f),
        }
        for name, f in (("train", train), ("validation", valid), ("test", test))
    }
    card = trained.card | {
        "split": split
        | {"embargo_days": config.embargo_days, "method": "out of time, contiguous blocks of days"},
        "test_days": _day_list(test),
        "metrics": metrics,
        "evaluation": {
            BLOCK_NAMES[b]: {MODEL_NAMES[m]: v for m, v in e.items()} for b, e in evaluation.items()
        },
        "decisions": decisions,
        "offline_estimate": {
            "rows": "test",
            **{k: evaluation["test"]["candidate"][k] for k in METRIC_NAMES},
            "flagged_churn_share": decisions["test_candidate"]["flagged_churn_share"],
        },
        "calibration_test": calibration.to_dict("records"),
        "slices_test": slices.to_dict("records"),
        "baselines": {
            "base_rate": {"train_positive_rate": train_rate},
            "logistic_regression": logistic.card(),
            "serving": {
                "version": incumbent_name,
                "compared": "serving" in predictions,
                "note": serving_note,
                "trained_on_evaluation_days": overlap,
            },
        },
        "tuning": tuned.card(config.tuning, config.seed, TUNING_OBJECTIVE),
        "training_config": asdict(config),
        "reference": {
            "features": feature_references(data, FEATURE_COLUMNS, PSI_BINS),
            "score": reference_distribution(
                np.r_[predictions["candidate"]["valid"], p_test], PSI_BINS
            ),
            "feature_rows": "every row of the training window",
            "score_rows": "candidate scores of the validation and test rows (out of sample)",
        },
        "code_version": dict(code_version or {}),
        "promoted": promoted,
        "decision": decision,
        "incumbent_version": incumbent_name,
        "incumbent_auc_on_same_validation": incumbent_auc,
        "gate": asdict(config.gate) | {"rows": "validation", "metric": "auc"},
        "data_versions": dict(sorted(data_versions.items())),
        "trained_for": day.isoformat(),
    }
    version = f"{day.isoformat()}-{hashlib.sha256(trained.booster_bytes).hexdigest()[:10]}"
    return DailyModelOutcome(
        artifact=ModelArtifact(day.isoformat(), version, trained.booster_bytes, jsonable(card)),
        metrics=metrics | {"tuning_seconds": tuned.seconds},
        comparison=_comparison(evaluation, incumbent_name),
        gate={
            "candidate_auc": candidate_auc,
            "incumbent_auc": incumbent_auc,
            "auc_margin": candidate_auc - incumbent_auc,
            "auc_floor": config.gate.auc_floor,
            "tolerance": config.gate.tolerance,
            "candidate_test_auc": evaluation["test"]["candidate"]["auc"],
            "incumbent_test_auc": evaluation["test"].get("serving", {}).get("auc", math.nan),
        },
        decision=decision,
        tables={
            "calibration_test": calibration.round(4),
            "slices_test": slices.round(4),
            "tuning_trials": pd.DataFrame(
                [
                    {"trial": t.index, "objective": t.objective, **t.summary, **t.params}
                    for t in tuned.trials
                ]
            ).round(4),
        },
    )


def _tune_candidate(development: pd.DataFrame, config: TrainingConfig) -> TuningResult:
    """The search: each trial trains on train, stops early and sets its threshold on valid."""

    def fit(params: dict[str, Any]) -> tuple[float, TrainedModel, dict[str, Any]]:
        trained = train_churn_model(
            development,
            params=params,
            seed=config.seed,
            validation_days=config.validation_days,  # the last days of `development`
            num_boost_round=config.num_boost_round,
            early_stopping_rounds=config.early_stopping_rounds,
            costs=config.costs,
        )
        summary = {
            "valid_log_loss": trained.metrics["log_loss"],
            "valid_auc": trained.metrics["auc"],
            "best_iteration": trained.card["best_iteration"],
        }
        return trained.metrics["log_loss"], trained, summary

    return tune(fit, config.tuning, seed=config.seed)


def _predictions(
    trained: TrainedModel,
    logistic: LogisticBaseline,
    train_rate: float,
    incumbent: ModelArtifact | None,
    blocks: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, dict[str, np.ndarray]], str | None]:
    """Probabilities of the candidate and of every baseline on the same rows of each block."""
    booster = load_booster(trained.booster_bytes, nthread=1)
    predictions = {
        "candidate": {b: predict_churn(booster, f) for b, f in blocks.items()},
        "base_rate": {b: np.full(len(f), train_rate) for b, f in blocks.items()},
        "logistic": {b: logistic.predict(f) for b, f in blocks.items()},
    }
    if incumbent is None:
        return predictions, None
    try:
        served = load_booster(incumbent.booster_bytes, nthread=1)
        predictions["serving"] = {b: predict_churn(served, f) for b, f in blocks.items()}
    except ValueError as error:  # trained on another feature set: nothing like for like
        return predictions, f"not comparable: {error}"
    return predictions, None


def _flat_metrics(
    evaluation: Mapping[str, Mapping[str, Mapping[str, float]]],
    decisions: Mapping[str, Mapping[str, float]],
    slices: pd.DataFrame,
) -> dict[str, float]:
    """Numeric metadata names: the unprefixed headline figures are the candidate on test.

    `<block>_<metric>` is the candidate, `<block>_<model>_<metric>` a baseline (base_rate,
    logistic, serving), `test_slice_<segment>_<metric>` a segment of the test rows.
    """
    test = evaluation["test"]
    metrics: dict[str, float] = {k: test["candidate"][k] for k in METRIC_NAMES}
    metrics |= {f"baseline_{k}": test["base_rate"][k] for k in METRIC_NAMES}
    for block, models in evaluation.items():
        for model, values in models.items():
            prefix = block if model == "candidate" else f"{block}_{model}"
            metrics |= {f"{prefix}_{k}": values[k] for k in METRIC_NAMES}
    for key, values in decisions.items():
        prefix = key.removesuffix("_candidate")
        metrics |= {f"{prefix}_{k}": v for k, v in values.items()}
    for row in slices.to_dict("records"):
        metrics |= {f"test_slice_{row['segment']}_{k}": row[k] for k in SLICE_METRICS}
    return metrics


def _comparison(
    evaluation: Mapping[str, Mapping[str, Mapping[str, float]]], incumbent: str | None
) -> pd.DataFrame:
    """One row per (rows, model): the table shown on the model page and the gate check."""
    return pd.DataFrame(
        [
            {
                "rows": BLOCK_NAMES[block],
                "model": MODEL_NAMES[model] + (f" {incumbent}" if model == "serving" else ""),
                "n": int(values["n"]),
                **{k: values[k] for k in METRIC_NAMES},
            }
            for block, models in evaluation.items()
            for model, values in models.items()
        ]
    ).round(4)


# ----------------------------------------------------------------------------- helpers


def jsonable(value: Any) -> Any:
    """A copy that json.dumps writes as strict JSON: numpy scalars unwrapped, NaN/inf -> None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (pd.Timestamp, date)):
        return value.isoformat()
    return value


def partition_of_version(version: str) -> str:
    """The model partition (YYYY-MM-DD) a version string "<partition>-<hash>" was trained for."""
    partition = version[:10]
    date.fromisoformat(partition)  # raises ValueError for anything else
    return partition


def code_version(package: str = "churn_assets") -> dict[str, Any]:
    """Package version and, when the code runs from a git checkout, commit and dirty flag.

    For the model card. Never fails: missing git, no repository or no commit give None.
    """
    try:
        version: str | None = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = None
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(here), *args],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "package": package,
        "package_version": version,
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
    }
