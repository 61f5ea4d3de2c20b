"""Offline evaluation of churn probabilities: the figures reported next to every model.

Sales acts on the top of the list, so besides the ranking and probability metrics of
scikit-learn this module measures the top decile (precision, lift, capture), how well
the probabilities are calibrated, and the same metrics per segment (plan, tenure cohort) so
that a weak segment is not hidden by a good average. It also holds the two baselines every
model must beat: the one-column heuristic (fewer sessions, more risk) and an L2 logistic
regression (scikit-learn). Metrics are scikit-learn's.

Metrics that are undefined on a set of rows (AUC of a single class, no rows at all) are NaN
here rather than errors: a small segment or a quiet day must not break the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.preprocessing import StandardScaler

from churn_assets.core.billing import PLANS
from churn_assets.core.features import FEATURE_COLUMNS

TOP_DECILE = 0.1
CALIBRATION_BINS = 10
# Upper bounds (days, inclusive) of the tenure cohorts; the last cohort is open-ended.
TENURE_COHORTS: tuple[int, ...] = (90, 365)

METRIC_NAMES: tuple[str, ...] = (
    "auc",
    "pr_auc",
    "log_loss",
    "brier",
    "precision_top_decile",
    "lift_top_decile",
    "capture_top_decile",
    "calibration_error",
)


def _arrays(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_prob differ in length: {y.size} vs {p.size}")
    return y, p


def top_decile(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike, fraction: float = TOP_DECILE
) -> dict[str, float]:
    """Precision, lift and capture of the `fraction` of customers with the highest scores.

    The top holds k = ceil(fraction * n) customers. Customers tied with the k-th score share
    the remaining places fractionally, so the answer never depends on row order.
    lift = precision / overall churn rate; capture = share of all churners in the top.
    """
    y, p = _arrays(y_true, y_prob)
    nan = {"precision_top_decile": math.nan, "lift_top_decile": math.nan}
    if y.size == 0:
        return nan | {"capture_top_decile": math.nan}
    k = max(1, math.ceil(round(fraction * y.size, 9)))
    cutoff = np.partition(p, y.size - k)[y.size - k]  # the k-th highest score
    above, tied = p > cutoff, p == cutoff
    share_of_tied = (k - above.sum()) / tied.sum()
    churners_in_top = y[above].sum() + share_of_tied * y[tied].sum()
    precision = churners_in_top / k
    positives, rate = y.sum(), y.mean()
    return {
        "precision_top_decile": float(precision),
        "lift_top_decile": float(precision / rate) if rate > 0 else math.nan,
        "capture_top_decile": float(churners_in_top / positives) if positives > 0 else math.nan,
    }


def calibration_table(
    y_true: npt.ArrayLike,
    y_prob: npt.ArrayLike,
    n_bins: int = CALIBRATION_BINS,
    strategy: str = "quantile",
) -> pd.DataFrame:
    """Predicted against observed churn rate per probability bin (empty bins are left out).

    strategy 'quantile': bins of (about) equal size, edges at quantiles of the predictions
    (churn scores crowd near zero, so equal-width bins would put most rows in the first);
    'uniform': n_bins equal-width bins over [0, 1]. Bins are [lower, upper), the last one
    closed. Columns: bin (1-based), lower, upper, n, churners, mean_predicted, observed_rate.
    """
    y, p = _arrays(y_true, y_prob)
    columns = ["bin", "lower", "upper", "n", "churners", "mean_predicted", "observed_rate"]
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if y.size == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in columns})
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', not {strategy!r}")
    if edges.size == 1:  # every prediction is the same value: one bin
        edges = np.array([edges[0], edges[0]])
    idx = np.searchsorted(edges[1:-1], p, side="right")
    size = edges.size - 1
    n = np.bincount(idx, minlength=size)
    sum_p = np.bincount(idx, weights=p, minlength=size)
    sum_y = np.bincount(idx, weights=y, minlength=size)
    keep = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "bin": np.arange(1, size + 1, dtype=np.int64),
                "lower": edges[:-1],
                "upper": edges[1:],
                "n": n.astype(np.int64),
                "churners": sum_y.round().astype(np.int64),
                "mean_predicted": sum_p / n,
                "observed_rate": sum_y / n,
            }
        )
    return table.loc[keep].reset_index(drop=True)


def calibration_error(table: pd.DataFrame) -> float:
    """Expected calibration error: the row-weighted mean |mean predicted - observed rate|."""
    if table.empty:
        return math.nan
    gap = (table["mean_predicted"] - table["observed_rate"]).abs()
    return float((gap * table["n"]).sum() / table["n"].sum())


def evaluate_predictions(
    y_true: npt.ArrayLike, y_prob: npt.ArrayLike, n_bins: int = CALIBRATION_BINS
) -> dict[str, float]:
    """Every metric of METRIC_NAMES plus n, churners, positive_rate and mean_predicted."""
    y, p = _arrays(y_true, y_prob)
    out: dict[str, float] = dict.fromkeys(METRIC_NAMES, math.nan)
    out |= {"n": int(y.size), "churners": int(np.rint(y.sum()))}
    out |= {"positive_rate": math.nan, "mean_predicted": math.nan}
    if y.size == 0:
        return out
    both_classes = 0 < y.sum() < y.size
    out |= {
        "auc": float(roc_auc_score(y, p)) if both_classes else math.nan,
        "pr_auc": float(average_precision_score(y, p)) if y.sum() > 0 else math.nan,
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)) if y.size else math.nan,
        **top_decile(y, p),
        "calibration_error": calibration_error(calibration_table(y, p, n_bins)),
        "positive_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
    }
    return out


def tenure_cohort_names(edges: Sequence[int] = TENURE_COHORTS) -> list[str]:
    """Cohort names, youngest first: 'tenure_0_90d', 'tenure_91_365d', 'tenure_366d_plus'."""
    bounds = [int(e) for e in edges]
    if bounds != sorted(set(bounds)) or (bounds and bounds[0] < 0):
        raise ValueError(f"tenure cohort edges must be increasing and >= 0, got {edges}")
    lows = [0, *(b + 1 for b in bounds)]
    names = [f"tenure_{lo}_{hi}d" for lo, hi in zip(lows, bounds, strict=False)]
    return [*names, f"tenure_{lows[-1]}d_plus"]


def tenure_cohort(tenure_days: pd.Series, edges: Sequence[int] = TENURE_COHORTS) -> pd.Series:
    """Cohort name per row (see tenure_cohort_names); tenure_days <= edge falls in its cohort."""
    names = tenure_cohort_names(edges)
    bounds = [int(e) for e in edges]
    idx = np.searchsorted(np.asarray(bounds, dtype=np.float64), tenure_days.to_numpy(), "left")
    return pd.Series(np.asarray(names, dtype=object)[idx], index=tenure_days.index, dtype=object)


def plan_segment(frame: pd.DataFrame) -> pd.Series:
    """'plan_basic' / 'plan_plus' / 'plan_pro' from the one-hot feature columns."""
    cols = [f"plan_{p}" for p in PLANS]
    out = np.select([frame[c].to_numpy() == 1 for c in cols], cols, "plan_unknown")
    return pd.Series(out, index=frame.index, dtype=object)


def slice_metrics(
    frame: pd.DataFrame,
    y_true: npt.ArrayLike,
    y_prob: npt.ArrayLike,
    tenure_edges: Sequence[int] = TENURE_COHORTS,
) -> pd.DataFrame:
    """evaluate_predictions per plan and per tenure cohort (rows of `frame` align with y/p).

    Columns: slice ('plan' | 'tenure'), segment (e.g. 'plan_basic'), then the metrics.
    Segments with no rows in `frame` are left out.
    """
    y, p = _arrays(y_true, y_prob)
    if len(frame) != y.size:
        raise ValueError(f"frame has {len(frame)} rows, predictions {y.size}")
    frame = frame.reset_index(drop=True)
    rows: list[dict[str, Any]] = []
    plans = [f"plan_{p}" for p in PLANS] + ["plan_unknown"]
    for name, segments, order in (
        ("plan", plan_segment(frame), plans),
        (
            "tenure",
            tenure_cohort(frame["tenure_days"], tenure_edges),
            tenure_cohort_names(tenure_edges),
        ),
    ):
        codes = segments.to_numpy()
        present = set(codes.tolist())
        for segment in (s for s in order if s in present):
            mask = codes == segment
            rows.append(
                {"slice": name, "segment": segment, **evaluate_predictions(y[mask], p[mask])}
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- baselines

# The one-column heuristic every model must beat: fewer sessions in the feature window,
# higher risk. No fitting; it only ranks, so only ranking metrics are reported for it.
HEURISTIC_COLUMN = "sessions_28d"
RANKING_METRICS: tuple[str, ...] = (
    "auc",
    "pr_auc",
    "precision_top_decile",
    "lift_top_decile",
    "capture_top_decile",
)


def heuristic_scores(frame: pd.DataFrame) -> np.ndarray:
    """1 / (1 + sessions in the feature window): a rank of risk in (0, 1], not a probability."""
    return 1.0 / (1.0 + frame[HEURISTIC_COLUMN].to_numpy(dtype=np.float64).clip(min=0.0))


def evaluate_ranking(y_true: npt.ArrayLike, score: npt.ArrayLike) -> dict[str, float]:
    """evaluate_predictions for a score that only ranks: probability metrics are NaN."""
    out = evaluate_predictions(y_true, score)
    ranking = set(RANKING_METRICS) | {"n", "churners", "positive_rate"}
    return {k: (v if k in ranking else math.nan) for k, v in out.items()}


@dataclass(frozen=True)
class LogisticBaseline:
    """An L2-penalised logistic regression on standardised features: the simple model to beat."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    l2: float
    iterations: int

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return logistic_from_card(self.card(), frame)

    def card(self) -> dict[str, Any]:
        """Everything needed to predict again (monitoring scores the same rows with it)."""
        return {
            "model": "L2 logistic regression on standardised features (scikit-learn)",
            "l2": self.l2,
            "iterations": self.iterations,
            "intercept": float(self.intercept),
            "coefficients": {f: float(c) for f, c in zip(self.features, self.coef, strict=True)},
            "mean": {f: float(m) for f, m in zip(self.features, self.mean, strict=True)},
            "scale": {f: float(v) for f, v in zip(self.features, self.scale, strict=True)},
        }


def logistic_from_card(card: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Probabilities of a logistic baseline stored in a model card (LogisticBaseline.card)."""
    names = list(card["coefficients"])
    x = frame[names].to_numpy(dtype=np.float64)
    mean = np.array([card["mean"][n] for n in names])
    scale = np.array([card["scale"][n] for n in names])
    coef = np.array([card["coefficients"][n] for n in names])
    z = (x - mean) / scale @ coef + float(card["intercept"])
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, no overflow for large |z|


def fit_logistic_baseline(
    frame: pd.DataFrame,
    features: Sequence[str] = FEATURE_COLUMNS,
    label: str = "churned",
    l2: float = 1.0,
    max_iter: int = 1000,
) -> LogisticBaseline:
    """scikit-learn's LogisticRegression(C=1/l2, lbfgs) on standardised features.

    Deterministic (no random start). Constant features get scale 1 and weight 0.
    """
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0 (it keeps the problem strictly convex), got {l2}")
    x_raw = frame[list(features)].to_numpy(dtype=np.float64)
    y = frame[label].to_numpy(dtype=np.int64)
    if y.size == 0:
        raise ValueError("the logistic baseline needs at least one row")
    if np.unique(y).size < 2:
        raise ValueError("the logistic baseline needs rows of both classes")
    scaler = StandardScaler().fit(x_raw)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=1.0 / l2, max_iter=max_iter, tol=1e-8)
    model.fit((x_raw - scaler.mean_) / scale, y)
    return LogisticBaseline(
        features=tuple(features),
        mean=scaler.mean_.copy(),
        scale=scale,
        coef=model.coef_[0].copy(),
        intercept=float(model.intercept_[0]),
        l2=float(l2),
        iterations=int(model.n_iter_[0]),
    )
