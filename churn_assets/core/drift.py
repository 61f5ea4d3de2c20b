"""Drift and training/serving skew: is today's population still the one the model learned?

Population stability index (PSI) of each feature and of the score, of one serving day
against a reference stored in the model card at training time. The reference holds bin
edges (quantiles of the training values) and the share of rows per bin, so a serving day is
compared without reloading the training data. Skew compares the features that were served
with the same features recomputed independently from the raw data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

PSI_BINS = 10
PSI_EPSILON = 1e-4  # share given to an empty bin, so that log(0) never happens
DRIFT_WARN = 0.1
DRIFT_FAIL = 0.25


def reference_distribution(values: npt.ArrayLike, bins: int = PSI_BINS) -> dict[str, list[float]]:
    """Bin edges and the share of `values` per bin: the reference a later day is compared to.

    Edges are the distinct reference values at the 1/bins .. (bins-1)/bins quantiles (actual
    values, so a 0/1 or count feature gets edges at its own values, not between them). Bins
    are (-inf, e1], (e1, e2], ..., (ek, +inf): a value above every reference value lands in
    the last bin, which then stands out. Missing values are ignored.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        raise ValueError("a reference distribution needs at least one value")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    qs = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(v, qs, method="inverted_cdf"))
    return {"edges": edges.tolist(), "shares": bin_shares(edges, v).tolist()}


def bin_shares(edges: npt.ArrayLike, values: npt.ArrayLike) -> np.ndarray:
    """Share of `values` in each bin (-inf, e1], (e1, e2], ..., (ek, +inf); sums to 1."""
    e = np.asarray(edges, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    counts = np.bincount(np.searchsorted(e, v, side="left"), minlength=e.size + 1)
    return counts / max(v.size, 1)


def population_stability_index(
    expected: npt.ArrayLike, actual: npt.ArrayLike, epsilon: float = PSI_EPSILON
) -> float:
    """PSI = sum over bins of (actual - expected) * ln(actual / expected).

    Shares below `epsilon` are raised to it (an empty bin would make the index infinite).
    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 a different population.
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    if e.shape != a.shape:
        raise ValueError(f"expected and actual have {e.size} and {a.size} bins")
    return float(np.sum((a - e) * np.log(a / e)))


def psi_against(reference: Mapping[str, Sequence[float]], values: npt.ArrayLike) -> float:
    """PSI of `values` against a reference_distribution(); NaN when there are no values."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(v).all():
        return math.nan
    return population_stability_index(reference["shares"], bin_shares(reference["edges"], v))


TIME_TRENDING_FEATURES = ("tenure_days",)
"""Features that shift by construction: every customer's tenure grows one day per day, so
serving tenure always sits H+G+ days above the training reference and its PSI would flag
every day. Cohort mix is watched by the model's per-tenure-cohort slice metrics instead."""


def drifting_references(
    references: Mapping[str, Mapping[str, Sequence[float]]],
) -> dict[str, Mapping[str, Sequence[float]]]:
    """The references a daily drift check compares with: all but the time-trending ones."""
    return {c: ref for c, ref in references.items() if c not in TIME_TRENDING_FEATURES}


def drift_status(psi: float, warn: float = DRIFT_WARN, fail: float = DRIFT_FAIL) -> str:
    """'ok', 'warn' (above warn) or 'fail' (above fail); 'unknown' for NaN."""
    if math.isnan(psi):
        return "unknown"
    return "fail" if psi > fail else "warn" if psi > warn else "ok"


def feature_references(
    frame: pd.DataFrame, columns: Sequence[str], bins: int = PSI_BINS
) -> dict[str, dict[str, list[float]]]:
    """reference_distribution of each column of `frame` (for the model card)."""
    return {c: reference_distribution(frame[c], bins) for c in columns}


def drift_table(
    references: Mapping[str, Mapping[str, Sequence[float]]],
    frame: pd.DataFrame,
    warn: float = DRIFT_WARN,
    fail: float = DRIFT_FAIL,
) -> pd.DataFrame:
    """PSI and status of every referenced column of `frame`, worst first.

    Columns: column, psi, status. A referenced column missing from `frame` is an error: the
    serving data no longer has what the model was trained on.
    """
    missing = [c for c in references if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} have a reference but are not in the serving data")
    psi = [psi_against(ref, frame[c]) for c, ref in references.items()]
    table = pd.DataFrame(
        {
            "column": pd.Series(list(references), dtype=object),
            "psi": np.asarray(psi, dtype=np.float64),
        }
    )
    table["status"] = pd.Series([drift_status(v, warn, fail) for v in psi], dtype=object)
    return table.sort_values(
        ["psi", "column"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)


# ------------------------------------------------------------------------------ skew


def sample_customers(customer_ids: pd.Series, size: int, seed: int) -> list[str]:
    """A seeded sample of distinct customer ids (all of them when there are fewer), sorted."""
    ids = np.sort(pd.unique(customer_ids.dropna()).astype(str))
    if size >= ids.size:
        return ids.tolist()
    picked = np.random.default_rng(seed).choice(ids.size, size=size, replace=False)
    return np.sort(ids[picked]).tolist()


def compare_features(
    served: pd.DataFrame,
    recomputed: pd.DataFrame,
    columns: Sequence[str],
    customers: Sequence[str],
    tolerance: float = 1e-6,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Served features of a sample of customers against the same features recomputed from raw.

    Both tables have customer_id and `columns`; only the sampled `customers` are compared.
    Two values match when |a - b| <= tolerance * max(1, |a|, |b|) (or both are NaN). A
    sampled customer present in only one table is a mismatch of its own kind. Returns one
    row per column (column, mismatches, max_abs_diff) and a summary: customers_checked,
    customers_compared, missing_from_served, missing_from_recomputed, values_compared,
    mismatches.
    """
    wanted = pd.Index(sorted(set(customers)), dtype=object)
    served_idx = served.loc[served["customer_id"].isin(wanted)].drop_duplicates("customer_id")
    recomputed_idx = recomputed.loc[recomputed["customer_id"].isin(wanted)].drop_duplicates(
        "customer_id"
    )
    served_idx = served_idx.set_index("customer_id")
    recomputed_idx = recomputed_idx.set_index("customer_id")
    common = served_idx.index.intersection(recomputed_idx.index).sort_values()
    a = served_idx.loc[common, list(columns)].to_numpy(dtype=np.float64)
    b = recomputed_idx.loc[common, list(columns)].to_numpy(dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    bad = ~(diff <= tolerance * np.where(both_nan, 1.0, scale))  # NaN against a number: bad
    per_column = pd.DataFrame(
        {
            "column": pd.Series(list(columns), dtype=object),
            "mismatches": bad.sum(axis=0).astype(np.int64),
            "max_abs_diff": np.max(np.where(np.isnan(diff), np.inf, diff), axis=0, initial=0.0),
        }
    )
    summary = {
        "customers_checked": len(wanted),
        "customers_compared": len(common),
        "missing_from_served": len(recomputed_idx.index.difference(common)),
        "missing_from_recomputed": len(served_idx.index.difference(common)),
        "values_compared": int(bad.size),
        "mismatches": int(bad.sum()),
    }
    return per_column, summary
