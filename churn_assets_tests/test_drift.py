"""PSI by hand and on shifted distributions, drift status, and the skew comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churn_assets.core.drift import (
    bin_shares,
    compare_features,
    drift_status,
    drift_table,
    feature_references,
    population_stability_index,
    psi_against,
    reference_distribution,
    sample_customers,
)


def test_psi_by_hand() -> None:
    # (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5)
    expected = 0.3 * math.log(1.6) + 0.3 * math.log(2.5)
    assert population_stability_index([0.5, 0.5], [0.8, 0.2]) == pytest.approx(expected)
    assert expected == pytest.approx(0.4159, abs=1e-4)
    assert population_stability_index([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    # symmetric in its two arguments
    assert population_stability_index([0.8, 0.2], [0.5, 0.5]) == pytest.approx(expected)


def test_psi_empty_bin_is_finite() -> None:
    psi = population_stability_index([1.0, 0.0], [0.5, 0.5], epsilon=1e-4)
    assert psi == pytest.approx(-0.5 * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4))


def test_reference_bins_of_a_binary_and_a_constant_feature() -> None:
    binary = np.array([0.0] * 7 + [1.0] * 3)
    ref = reference_distribution(binary, bins=10)
    assert ref["edges"] == [0.0, 1.0]  # bins (-inf, 0], (0, 1], (1, inf)
    assert ref["shares"] == pytest.approx([0.7, 0.3, 0.0])
    constant = reference_distribution(np.zeros(5))
    assert constant == {"edges": [0.0], "shares": [1.0, 0.0]}
    # a value never seen in training lands in the open last bin
    assert bin_shares(constant["edges"], [0.0, 3.0]).tolist() == [0.5, 0.5]
    assert psi_against(constant, np.zeros(100)) == pytest.approx(0.0)
    assert psi_against(ref, binary) == pytest.approx(0.0)


def test_psi_on_shifted_normal_distributions() -> None:
    rng = np.random.default_rng(0)
    ref = reference_distribution(rng.normal(size=50_000))
    same = psi_against(ref, rng.normal(size=50_000))
    small = psi_against(ref, rng.normal(0.4, 1.0, size=50_000))
    large = psi_against(ref, rng.normal(1.0, 1.0, size=50_000))
    assert same < 0.01
    assert 0.1 < small < 0.25  # a mean shift of d standard deviations gives about d^2
    assert large > 0.25
    assert [drift_status(v) for v in (same, small, large)] == ["ok", "warn", "fail"]


def test_drift_status_thresholds_are_configurable() -> None:
    assert drift_status(0.1) == "ok"  # at the threshold: not above it
    assert drift_status(0.25) == "warn"
    assert drift_status(0.2, warn=0.05, fail=0.15) == "fail"
    assert drift_status(math.nan) == "unknown"


def test_drift_table_flags_the_shifted_feature_first() -> None:
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"calls": rng.poisson(1.0, 5000), "seats": rng.integers(1, 50, 5000)})
    refs = feature_references(train, ["calls", "seats"])
    today = pd.DataFrame({"calls": rng.poisson(3.0, 2000), "seats": rng.integers(1, 50, 2000)})
    table = drift_table(refs, today)
    assert table["column"].tolist() == ["calls", "seats"]
    assert table["status"].tolist() == ["fail", "ok"]
    with pytest.raises(ValueError, match="not in the serving data"):
        drift_table(refs, today.drop(columns="seats"))
    assert math.isnan(psi_against(refs["calls"], []))


# ---------------------------------------------------------------- skew


def test_sample_customers_is_seeded_and_sorted() -> None:
    ids = pd.Series([f"C{i:03d}" for i in range(100)])
    a = sample_customers(ids, 10, seed=5)
    assert a == sample_customers(ids.sample(frac=1.0, random_state=2), 10, seed=5)
    assert len(a) == 10 and a == sorted(a) and len(set(a)) == 10
    assert a != sample_customers(ids, 10, seed=6)
    assert sample_customers(ids.head(3), 10, seed=5) == ["C000", "C001", "C002"]


def test_compare_features_counts_each_kind_of_skew() -> None:
    served = pd.DataFrame(
        {"customer_id": ["A", "B", "C", "D"], "x": [1.0, 2.0, 3.0, 4.0], "y": [0.0] * 4}
    )
    same, summary = compare_features(served, served.copy(), ["x", "y"], ["A", "B", "C"])
    assert summary["mismatches"] == 0 and summary["customers_compared"] == 3
    assert summary["values_compared"] == 6
    assert same["mismatches"].tolist() == [0, 0] and same["max_abs_diff"].tolist() == [0, 0]

    recomputed = served.copy()
    recomputed.loc[1, "x"] = 2.5  # B differs
    recomputed.loc[2, "y"] = 1e-9  # C within tolerance
    recomputed = recomputed.loc[recomputed["customer_id"] != "A"]  # A not recomputed
    extra = pd.DataFrame({"customer_id": ["E"], "x": [0.0], "y": [0.0]})  # E never served
    per_column, summary = compare_features(
        served, pd.concat([recomputed, extra]), ["x", "y"], ["A", "B", "C", "E"]
    )
    assert summary == {
        "customers_checked": 4,
        "customers_compared": 2,
        "missing_from_served": 1,
        "missing_from_recomputed": 1,
        "values_compared": 4,
        "mismatches": 1,
    }
    assert per_column.set_index("column")["mismatches"].to_dict() == {"x": 1, "y": 0}
    assert per_column.set_index("column").loc["x", "max_abs_diff"] == pytest.approx(0.5)


def test_tenure_is_left_out_of_the_daily_drift_comparison() -> None:
    from churn_assets.core.drift import TIME_TRENDING_FEATURES, drifting_references

    references = {"tenure_days": {"edges": [0.0]}, "sessions_7d": {"edges": [1.0]}}
    assert TIME_TRENDING_FEATURES == ("tenure_days",)
    assert drifting_references(references) == {"sessions_7d": {"edges": [1.0]}}
