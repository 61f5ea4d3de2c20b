"""Offline classification metrics in plain numpy (production code does not depend on sklearn).

Each function matches scikit-learn's definition (roc_auc_score, average_precision_score,
log_loss, brier_score_loss); the tests cross-check them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

EPS = 1e-15


def _arrays(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true and y_score differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("metrics need at least one row")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must be 0/1")
    return y, s


def _both_classes(y: np.ndarray, name: str) -> None:
    if y.min() == y.max():
        raise ValueError(f"{name} is undefined when y_true has a single class")


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], sorted_v.size]  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0  # mean of starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    y, s = _arrays(y_true, y_score)
    _both_classes(y, "roc_auc")
    ranks = _average_ranks(s)
    n_pos = y.sum()
    n_neg = y.size - n_pos
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pr_auc(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """Average precision: sum over distinct thresholds of (recall step) x precision."""
    y, s = _arrays(y_true, y_score)
    if y.sum() == 0:
        raise ValueError("pr_auc is undefined without positives")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = np.cumsum(y_sorted)[last_of_tie]
    n_flagged = (np.arange(y.size) + 1.0)[last_of_tie]
    precision = tp / n_flagged
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(y_true: npt.ArrayLike, y_prob: npt.ArrayLike, eps: float = EPS) -> float:
    """Mean binary cross-entropy with probabilities clipped to [eps, 1 - eps]."""
    y, p = _arrays(y_true, y_prob)
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def brier(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> float:
    """Mean squared difference between probability and outcome."""
    y, p = _arrays(y_true, y_prob)
    return float(np.mean((p - y) ** 2))


def classification_metrics(y_true: npt.ArrayLike, y_prob: npt.ArrayLike) -> dict[str, float]:
    """auc, pr_auc, log_loss and brier of probabilities against 0/1 outcomes."""
    return {
        "auc": roc_auc(y_true, y_prob),
        "pr_auc": pr_auc(y_true, y_prob),
        "log_loss": log_loss(y_true, y_prob),
        "brier": brier(y_true, y_prob),
    }


def base_rate_metrics(y_true: npt.ArrayLike, base_rate: float) -> dict[str, float]:
    """The same metrics for a model that predicts `base_rate` (the training churn rate) for all.

    This is the bar a model must clear: AUC 0.5, PR AUC equal to the observed positive rate.
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    return classification_metrics(y, np.full(y.shape, float(base_rate)))
