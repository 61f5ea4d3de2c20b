"""The daily model decision: train a candidate, measure it honestly against its baselines and
the serving model on the same rows, and decide whether it may serve (the champion gate).

Rows of one customer on nearby days share most of their label window (a cancel on day c makes
the labels of c-H .. c-1 all 1) and most of their features, so a validation day a week after
the training days rewards a model that memorises accounts. The split is therefore out of time
*and* purged: the window's days are cut into train | validation | test (oldest first), the
customers are dealt (seeded, by id) into three groups, validation holds the validation group
on the validation days, test the test group on the test days, and every training row of a
customer within H+G days before one of its evaluation rows is dropped. No evaluation row then
shares a label window with a training row, as on the days the model serves (60 days or more
after its last label). The trees learn on train; early stopping, the hyperparameter search,
the decision threshold and the champion gate use validation; the figures the model card
promises (and the online monitor holds it to) come from test, which no choice has seen.

A candidate is promoted only if it beats, on the same validation rows, the one-column
heuristic (fewer sessions, more risk) and a logistic regression, clears the AUC floor and is
not clearly worse than the serving model; recent realised quality (online_metrics) lowers
the candidate's claim by the amount served models fell short of theirs, and a serving model
that lost to the heuristic in production loses its incumbency.
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
    evaluate_ranking,
    fit_logistic_baseline,
    heuristic_scores,
    slice_metrics,
)
from churn_assets.core.features import FEATURE_COLUMNS, MODEL_FEATURES
from churn_assets.core.model import (
    DecisionCosts,
    TrainedModel,
    load_booster,
    predict_churn,
    train_churn_model,
)
from churn_assets.core.online import RealisedRecord
from churn_assets.core.tuning import TuningConfig, TuningResult, tune

MODEL_NAMES = {
    "candidate": "candidate",
    "base_rate": "base rate",
    "heuristic": "heuristic: fewer sessions",
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
    """When a candidate may serve; every comparison is on the same honest validation rows.

    It must clear `auc_floor`; beat the heuristic by more than `baseline_margin` once its
    AUC is lowered by the realised shortfall of recent served models (offline minus realised
    AUC, median over the last `realised_lookback_days` matured days, when positive), and the
    logistic regression (fitted and judged like itself) by more than `baseline_margin`; and
    not be worse than the serving model on the test rows (see GateInputs) by more than
    `tolerance`, unless the serving model has lost to the heuristic in production on the
    last `failing_days` matured days. The baseline rule needs `min_validation_churners`
    churned rows in validation: with fewer, AUC differences of a few hundredths are noise
    and the decision says that it was not applied; `beat_baselines=False` drops it.
    """

    auc_floor: float = 0.6
    tolerance: float = 0.02
    beat_baselines: bool = True
    baseline_margin: float = 0.0
    min_validation_churners: int = 50
    realised_lookback_days: int = 7
    failing_days: int = 3


@dataclass(frozen=True)
class TrainingConfig:
    """How each day's model is trained, measured and gated.

    Blocks are counted in distinct days present in the window. Validation rows are the
    customers of the validation group (`validation_customer_share` of them, dealt by a seeded
    hash of the id) on the validation days, test rows the test group on the test days; the
    purge itself follows the pipeline's H+G (train_daily_model's `purge_days`).
    `embargo_days` additionally drops that many whole days between the blocks.
    """

    seed: int = 7
    validation_days: int = 7
    test_days: int = 7
    embargo_days: int = 0
    validation_customer_share: float = 0.25
    test_customer_share: float = 0.25
    features: tuple[str, ...] = MODEL_FEATURES
    num_boost_round: int = 300
    early_stopping_rounds: int = 30
    costs: DecisionCosts = field(default_factory=DecisionCosts)
    gate: GatePolicy = field(default_factory=GatePolicy)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    logistic_l2: float = 1.0
    tenure_cohorts: tuple[int, ...] = TENURE_COHORTS

    def __post_init__(self) -> None:
        shares = (self.validation_customer_share, self.test_customer_share)
        if min(shares) <= 0 or sum(shares) >= 1:
            raise ValueError(
                f"customer shares of validation and test must be > 0 and leave some customers "
                f"only for training, got {shares}"
            )
        unknown = set(self.features) - set(FEATURE_COLUMNS)
        if unknown or not self.features:
            raise ValueError(f"features must be some of FEATURE_COLUMNS; unknown {unknown}")

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


def time_blocks(
    days: np.ndarray, validation_days: int, test_days: int, embargo_days: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three contiguous blocks of the sorted distinct `days`: train | validation | test."""
    if validation_days < 1 or test_days < 1 or embargo_days < 0:
        raise ValueError(
            f"need validation_days >= 1, test_days >= 1, embargo_days >= 0; got "
            f"{validation_days}, {test_days}, {embargo_days}"
        )
    days = np.sort(days)
    n_test_start = days.size - test_days
    n_valid_start = n_test_start - embargo_days - validation_days
    n_train_end = n_valid_start - embargo_days
    if n_train_end < 1:
        raise ValueError(
            f"need at least {validation_days + test_days + 2 * embargo_days + 1} distinct days "
            f"(validation {validation_days}, test {test_days}, embargo 2 x {embargo_days}, "
            f"train >= 1), got {days.size}"
        )
    return (
        days[:n_train_end],
        days[n_valid_start : n_valid_start + validation_days],
        days[n_test_start:],
    )


def customer_groups(
    customer_ids: pd.Series, seed: int, validation_share: float, test_share: float
) -> pd.Series:
    """'train' / 'validation' / 'test' per customer id, from a seeded hash of the id alone.

    The same customer lands in the same group on every day and in every daily model of the
    same seed, whatever the row order or the other customers.
    """

    def unit(customer_id: object) -> float:
        digest = hashlib.sha256(f"{seed}:{customer_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    u = customer_ids.map(unit).to_numpy(dtype=np.float64)
    groups = np.select(
        [u < validation_share, u < validation_share + test_share], ["validation", "test"], "train"
    )
    return pd.Series(groups, index=customer_ids.index, dtype=object)


@dataclass(frozen=True)
class HonestSplit:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    purge_days: int
    purged_rows: int


def split_purged(
    data: pd.DataFrame,
    validation_days: int,
    test_days: int,
    purge_days: int,
    seed: int,
    validation_share: float = 0.25,
    test_share: float = 0.25,
    embargo_days: int = 0,
) -> HonestSplit:
    """Train, validation and test rows such that no evaluation row shares a label window
    with a training row.

    The label of (c, t) is settled by billing of t .. t+H+G, so rows (c, t) and (c, e) share
    information when e - t <= H+G = `purge_days`. Validation is the validation group on the
    validation days, test the test group on the test days (both after every training day);
    a training row (c, t) is dropped when c has an evaluation row (c, e) with
    e - t <= purge_days. Older rows of those customers stay, as on serving days the model
    meets customers whose labels it learnt more than H+G days earlier. Rows are sorted by
    day and customer_id, so the result does not depend on the input order.
    """
    if purge_days < 0:
        raise ValueError(f"purge_days must be >= 0, got {purge_days}")
    train_days, valid_days, test_days_ = time_blocks(
        pd.unique(data["day"]), validation_days, test_days, embargo_days
    )
    ordered = data.sort_values(["day", "customer_id"], kind="mergesort").reset_index(drop=True)
    group = customer_groups(ordered["customer_id"], seed, validation_share, test_share)
    day = ordered["day"]
    valid = ordered.loc[day.isin(valid_days) & (group == "validation")]
    test = ordered.loc[day.isin(test_days_) & (group == "test")]
    pool = ordered.loc[day.isin(train_days)]
    first_eval = pd.concat([valid, test]).groupby("customer_id")["day"].min()
    gap = (pool["customer_id"].map(first_eval) - pool["day"]).dt.days
    purged = gap.notna() & (gap <= purge_days)
    return HonestSplit(
        train=pool.loc[~purged].reset_index(drop=True),
        valid=valid.reset_index(drop=True),
        test=test.reset_index(drop=True),
        purge_days=int(purge_days),
        purged_rows=int(purged.sum()),
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


@dataclass(frozen=True)
class GateInputs:
    """The AUCs the gate compares and the realised record.

    Candidate, heuristic, logistic and serving on the same validation rows; candidate and
    serving also on the same test rows. The serving model was tuned and stopped early on
    the validation customers of the day before (the groups are dealt by id), so it is
    judged against the candidate on the test rows, where neither made a choice.
    """

    candidate: float
    heuristic: float
    logistic: float
    serving: float
    serving_version: str | None
    validation_churners: int = 0
    realised: RealisedRecord | None = None
    candidate_test: float = math.nan
    serving_test: float = math.nan


def gate_decision(policy: GatePolicy, inputs: GateInputs) -> tuple[bool, str, dict[str, float]]:
    """(promoted, the decision in words, the numbers behind it)."""
    realised = inputs.realised
    shortfall = realised.shortfall(policy.realised_lookback_days) if realised else math.nan
    discount = max(shortfall, 0.0) if not math.isnan(shortfall) else 0.0
    failing = realised.days_below_heuristic(inputs.serving_version) if realised else 0
    serving_failing = inputs.serving_version is not None and failing >= policy.failing_days
    claimed = inputs.candidate - discount
    numbers = {
        "candidate_auc": inputs.candidate,
        "realised_shortfall": shortfall,
        "candidate_auc_after_shortfall": claimed,
        "heuristic_auc": inputs.heuristic,
        "logistic_auc": inputs.logistic,
        "serving_auc": inputs.serving,
        "candidate_test_auc": inputs.candidate_test,
        "serving_test_auc": inputs.serving_test,
        "serving_days_below_heuristic": failing,
        "auc_floor": policy.auc_floor,
        "tolerance": policy.tolerance,
        "baseline_margin": policy.baseline_margin,
        "validation_churners": inputs.validation_churners,
    }
    problems, notes = [], []
    enough = inputs.validation_churners >= policy.min_validation_churners
    if not inputs.candidate >= policy.auc_floor:  # a NaN AUC does not clear the floor
        problems.append(
            f"validation AUC {inputs.candidate:.3f} is below the floor {policy.auc_floor:.3f}"
        )
    if policy.beat_baselines and not enough:
        notes.append(
            f"baselines not compared: {inputs.validation_churners} churned rows in validation "
            f"(fewer than {policy.min_validation_churners})"
        )
    if policy.beat_baselines and enough:
        # The heuristic is not fitted, so what it shows on validation is what it realises; a
        # fitted model's claim is lowered by what served models fell short of theirs. The
        # logistic regression is fitted and judged like the candidate: compared as is.
        lowered = f" (lowered by the realised shortfall {discount:.3f})" if discount else ""
        for name, claim, auc, note in (
            ("the sessions heuristic", claimed, inputs.heuristic, lowered),
            ("the logistic regression", inputs.candidate, inputs.logistic, ""),
        ):
            if not claim > auc + policy.baseline_margin:
                problems.append(
                    f"validation AUC {claim:.3f}{note} does not beat {name}'s {auc:.3f} on the "
                    "same rows"
                )
    if serving_failing:
        notes.append(
            f"serving model {inputs.serving_version} lost to the heuristic in production on "
            f"its last {failing} matured days, so it is not defended"
        )
    elif (
        not math.isnan(inputs.serving_test)
        and not inputs.candidate_test >= inputs.serving_test - policy.tolerance
    ):
        problems.append(
            f"test AUC {inputs.candidate_test:.3f} is worse than the serving model's "
            f"{inputs.serving_test:.3f} on the same test rows by more than {policy.tolerance:.3f}"
        )
    suffix = "".join(f"; {n}" for n in notes)
    if not problems:
        return True, "promoted: serves from the next day" + suffix, numbers
    keeps = (
        f"{inputs.serving_version} keeps serving"
        if inputs.serving_version
        else "no model serves until one passes"
    )
    return False, "rejected: " + "; ".join(problems) + suffix + f"; {keeps}", numbers


# ----------------------------------------------------------------------------- training


def train_daily_model(
    day: date,
    features_by_day: Mapping[str, pd.DataFrame],
    labels_by_day: Mapping[str, pd.DataFrame],
    incumbent: ModelArtifact | None,
    config: TrainingConfig,
    data_versions: Mapping[str, str],
    code_version: Mapping[str, Any] | None = None,
    *,
    purge_days: int,
    realised: RealisedRecord | None = None,
) -> DailyModelOutcome:
    """Tune and train the candidate of `day`, evaluate it and its baselines, gate it.

    `purge_days` is the pipeline's H+G (see split_purged). Deterministic: the same tables,
    config, seed and realised record give the same model bytes and the same card (provided
    the tuning stops on max_trials, as its card says). `incumbent` is the model serving on
    `day`; `realised` the recent online_metrics (None: nothing has matured yet);
    `code_version` comes from code_version() (kept out of here so that this does no I/O).
    """
    data = training_table(features_by_day, labels_by_day)
    split = split_purged(
        data,
        config.validation_days,
        config.test_days,
        purge_days,
        config.seed,
        config.validation_customer_share,
        config.test_customer_share,
        config.embargo_days,
    )
    train, valid, test = split.train, split.valid, split.test
    tuned = _tune_candidate(train, valid, config)
    trained = tuned.best
    threshold = trained.threshold
    blocks = {"valid": valid, "test": test}
    y = {b: f["churned"].to_numpy(dtype=np.float64) for b, f in blocks.items()}
    train_rate = float(train["churned"].mean())
    logistic = fit_logistic_baseline(train, features=config.features, l2=config.logistic_l2)
    predictions, serving_note = _predictions(trained, logistic, train_rate, incumbent, blocks)

    evaluation = {
        b: {
            m: (evaluate_ranking if m == "heuristic" else evaluate_predictions)(y[b], p[b])
            for m, p in predictions.items()
        }
        for b in blocks
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

    valid_auc = {m: e["auc"] for m, e in evaluation["valid"].items()}
    incumbent_name = incumbent.version if incumbent else None
    promoted, decision, gate_numbers = gate_decision(
        config.gate,
        GateInputs(
            candidate=valid_auc["candidate"],
            heuristic=valid_auc["heuristic"],
            logistic=valid_auc["logistic"],
            serving=valid_auc.get("serving", math.nan),
            serving_version=incumbent_name,
            validation_churners=int(y["valid"].sum()),
            realised=realised,
            candidate_test=evaluation["test"]["candidate"]["auc"],
            serving_test=evaluation["test"].get("serving", {}).get("auc", math.nan),
        ),
    )
    candidate_auc, incumbent_auc = valid_auc["candidate"], valid_auc.get("serving", math.nan)
    eval_days = set(_day_list(valid)) | set(_day_list(test))
    overlap = len(eval_days & set(incumbent.card.get("train_days", []))) if incumbent else math.nan

    metrics = _flat_metrics(evaluation, decisions, slices)
    metrics |= {
        "threshold": threshold,
        "best_iteration": trained.card["best_iteration"],
        **{f"n_{b}": len(f) for b, f in (("train", train), *blocks.items())},
        **{f"days_{b}": f["day"].nunique() for b, f in (("train", train), *blocks.items())},
        "purge_days": split.purge_days,
        "purged_train_rows": split.purged_rows,
        "train_positive_rate": train_rate,
        "valid_positive_rate": float(y["valid"].mean()),
        "test_positive_rate": float(y["test"].mean()),
        "tuning_trials": len(tuned.trials),
        "tuning_best_trial": tuned.best_index,
        **{f"gate_{k}": v for k, v in gate_numbers.items()},
        "gate_auc_margin": candidate_auc - incumbent_auc,
        "gate_margin_over_heuristic": candidate_auc - valid_auc["heuristic"],
        "gate_margin_over_logistic": candidate_auc - valid_auc["logistic"],
        "incumbent_auc": incumbent_auc,
        "serving_trained_on_eval_days": overlap,
    }
    split_card = {
        name: {
            "first_day": _day_list(f)[0],
            "last_day": _day_list(f)[-1],
            "days": int(f["day"].nunique()),
            "rows": len(f),
            "customers": int(f["customer_id"].nunique()),
        }
        for name, f in (("train", train), ("validation", valid), ("test", test))
    }
    card = trained.card | {
        "split": split_card
        | {
            "embargo_days": config.embargo_days,
            "purge_days": split.purge_days,
            "purged_train_rows": split.purged_rows,
            "validation_customer_share": config.validation_customer_share,
            "test_customer_share": config.test_customer_share,
            "method": (
                "out of time (train | validation | test days) and out of customer (seeded "
                "groups by id); training rows within H+G days before an evaluation row of the "
                "same customer purged: no evaluation row shares a label window with training"
            ),
        },
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
            "heuristic_auc": evaluation["test"]["heuristic"]["auc"],
            "logistic_auc": evaluation["test"]["logistic"]["auc"],
        },
        "calibration_test": calibration.to_dict("records"),
        "slices_test": slices.to_dict("records"),
        "baselines": {
            "base_rate": {"train_positive_rate": train_rate},
            "heuristic": {
                "rule": "risk = 1 / (1 + sessions in the feature window) (sessions_28d)",
            },
            "logistic_regression": logistic.card(),
            "serving": {
                "version": incumbent_name,
                "compared": "serving" in predictions,
                "note": serving_note,
                "trained_on_evaluation_days": overlap,
            },
        },
        "realised_record": realised.card() if realised else None,
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
        "gate": asdict(config.gate) | {"rows": "validation", "metric": "auc"} | gate_numbers,
        "data_versions": dict(sorted(data_versions.items())),
        "trained_for": day.isoformat(),
    }
    version = f"{day.isoformat()}-{hashlib.sha256(trained.booster_bytes).hexdigest()[:10]}"
    return DailyModelOutcome(
        artifact=ModelArtifact(day.isoformat(), version, trained.booster_bytes, jsonable(card)),
        metrics=metrics | {"tuning_seconds": tuned.seconds},
        comparison=_comparison(evaluation, incumbent_name),
        gate=gate_numbers
        | {
            "incumbent_auc": incumbent_auc,
            "auc_margin": candidate_auc - incumbent_auc,
            "candidate_test_auc": evaluation["test"]["candidate"]["auc"],
            "heuristic_test_auc": evaluation["test"]["heuristic"]["auc"],
            "logistic_test_auc": evaluation["test"]["logistic"]["auc"],
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


def _tune_candidate(
    train: pd.DataFrame, valid: pd.DataFrame, config: TrainingConfig
) -> TuningResult:
    """The search: each trial trains on train, stops early and sets its threshold on valid."""

    def fit(params: dict[str, Any]) -> tuple[float, TrainedModel, dict[str, Any]]:
        trained = train_churn_model(
            train,
            valid,
            params=params,
            seed=config.seed,
            num_boost_round=config.num_boost_round,
            early_stopping_rounds=config.early_stopping_rounds,
            costs=config.costs,
            features=config.features,
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
        "heuristic": {b: heuristic_scores(f) for b, f in blocks.items()},
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
