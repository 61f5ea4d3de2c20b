"""Offline evaluation of churn probabilities: the figures reported next to every model.

Sales acts on the top of the list, so besides the ranking and probability metrics of
``core.metrics`` this module measures the top decile (precision, lift, capture), how well
the probabilities are calibrated, and the same metrics per segment (plan, tenure cohort) so
that a weak segment is not hidden by a good average. It also holds the simple baseline every
model is compared with: an L2 logistic regression on the same features, in plain numpy.

Metrics that are undefined on a set of rows (AUC of a single class, no rows at all) are NaN
here rather than errors: a small segment or a quiet day must not break the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from churn_assets.core.billing import PLANS
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.metrics import brier, log_loss, pr_auc, roc_auc

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
        "auc": roc_auc(y, p) if both_classes else math.nan,
        "pr_auc": pr_auc(y, p) if y.sum() > 0 else math.nan,
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
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


# ----------------------------------------------------------------------- logistic baseline


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


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
        x = (frame[list(self.features)].to_numpy(dtype=np.float64) - self.mean) / self.scale
        return _sigmoid(x @ self.coef + self.intercept)

    def card(self) -> dict[str, Any]:
        """Coefficients per standardised feature (the sign says which way it pushes churn)."""
        return {
            "model": "L2 logistic regression on standardised features (numpy, Newton)",
            "l2": self.l2,
            "iterations": self.iterations,
            "intercept": float(self.intercept),
            "coefficients": {f: float(c) for f, c in zip(self.features, self.coef, strict=True)},
        }


def fit_logistic_baseline(
    frame: pd.DataFrame,
    features: Sequence[str] = FEATURE_COLUMNS,
    label: str = "churned",
    l2: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> LogisticBaseline:
    """Minimise sum(log loss) + l2/2 * |w|^2 (intercept not penalised) by damped Newton steps.

    Same objective as scikit-learn's LogisticRegression(C=1/l2) on the standardised features.
    Deterministic: no random start, no sampling. Constant features get weight 0.
    """
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0 (it keeps the problem strictly convex), got {l2}")
    x_raw = frame[list(features)].to_numpy(dtype=np.float64)
    y = frame[label].to_numpy(dtype=np.float64)
    if y.size == 0:
        raise ValueError("the logistic baseline needs at least one row")
    mean = x_raw.mean(axis=0)
    scale = x_raw.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    x = np.column_stack([(x_raw - mean) / scale, np.ones(y.size)])
    penalty = np.full(x.shape[1], float(l2))
    penalty[-1] = 0.0

    def objective(w: np.ndarray) -> float:
        z = x @ w
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * w * w))

    w = np.zeros(x.shape[1])
    rate = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    w[-1] = math.log(rate / (1 - rate))  # start at the base rate
    current = objective(w)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        prob = _sigmoid(x @ w)
        grad = x.T @ (prob - y) + penalty * w
        hess = (x * (prob * (1 - prob))[:, None]).T @ x + np.diag(penalty)
        hess[-1, -1] += 1e-12  # all-one-class data: keep the intercept solvable
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-8:
            trial = w - size * step
            value = objective(trial)
            if value <= current:
                break
            size /= 2
        else:
            break
        converged = abs(current - value) <= tol * max(1.0, abs(current))
        w, current = trial, value
        if converged or np.max(np.abs(size * step)) < tol:
            break
    return LogisticBaseline(
        features=tuple(features),
        mean=mean,
        scale=scale,
        coef=w[:-1],
        intercept=float(w[-1]),
        l2=float(l2),
        iterations=iterations,
    )
