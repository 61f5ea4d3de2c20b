"""True vs naive churn labels, rebuilt from the dates seen across daily extracts."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn_assets.core.labels import LabelsNotMature, compute_labels, label_summary

D = date(2026, 1, 10)
H, G = 5, 3


def d(offset: int) -> date:
    return D + timedelta(days=offset)


# customer -> (signup offset, [(event offset, "cancel" | "react"), ...])
HISTORY: dict[str, tuple[int, list[tuple[int, str]]]] = {
    "A_STAYS": (-100, []),
    "B_BACK_ON_G": (-100, [(2, "cancel"), (2 + G, "react")]),
    "C_BACK_ON_G_PLUS_1": (-100, [(2, "cancel"), (2 + G + 1, "react")]),
    "E_CANCEL_BACK_CANCEL": (-100, [(1, "cancel"), (2, "react"), (4, "cancel")]),
    "F_AFTER_HORIZON": (-100, [(H + 1, "cancel")]),
    "G_GONE_BEFORE_D": (-100, [(-3, "cancel")]),
    "H_BACK_BEFORE_D": (-100, [(-20, "cancel"), (-15, "react")]),
    "I_SAME_DAY": (-100, [(3, "cancel"), (3, "react")]),
    "J_ON_HORIZON": (-100, [(H, "cancel")]),
    "K_SIGNS_UP_LATER": (2, []),
    "L_CANCELLED_ON_D": (-100, [(0, "cancel")]),
    "M_BACK_AFTER_MATURITY": (-100, [(2, "cancel"), (2 + G + 5, "react")]),
    "N_BACK_ON_THE_LAST_DAY": (-100, [(H, "cancel"), (H + G, "react")]),
}

EXPECTED = {  # customer -> (churned, naive_churned, cancel_date offset or None)
    "A_STAYS": (0, 0, None),
    "B_BACK_ON_G": (0, 1, None),
    "C_BACK_ON_G_PLUS_1": (1, 1, 2),
    "E_CANCEL_BACK_CANCEL": (1, 1, 4),
    "F_AFTER_HORIZON": (0, 0, None),
    "H_BACK_BEFORE_D": (0, 1, None),
    "I_SAME_DAY": (0, 1, None),
    "J_ON_HORIZON": (1, 1, H),
    "M_BACK_AFTER_MATURITY": (1, 1, 2),
    "N_BACK_ON_THE_LAST_DAY": (0, 1, None),
}


def extract(day: date) -> pd.DataFrame:
    """The CRM snapshot of `day`: only the most recent cancel / re-activation dates."""
    rows = []
    for cid, (signup, events) in HISTORY.items():
        if d(signup) > day:
            continue
        cancels = [d(o) for o, kind in events if kind == "cancel" and d(o) <= day]
        reacts = [d(o) for o, kind in events if kind == "react" and d(o) <= day]
        rows.append(
            {
                "customer_id": cid,
                "account_name": f"{cid} Ltd",
                "signup_date": pd.Timestamp(d(signup)),
                "plan": "basic",
                "seats": 1,
                "mrr": 10.0,
                "cancelled_service": bool(cancels),
                "cancelled_at": pd.Timestamp(max(cancels)) if cancels else pd.NaT,
                "new_customer": bool(reacts),
                "reactivated_at": pd.Timestamp(max(reacts)) if reacts else pd.NaT,
                "support_calls": 0,
                "snapshot_date": pd.Timestamp(day),
            }
        )
    df = pd.DataFrame(rows)
    return df.astype({"cancelled_at": "datetime64[ns]", "reactivated_at": "datetime64[ns]"})


def extracts(offsets: range | list[int]) -> pd.DataFrame:
    return pd.concat([extract(d(o)) for o in offsets], ignore_index=True)


def as_expected(labels: pd.DataFrame) -> dict[str, tuple[int, int, int | None]]:
    out = {}
    for r in labels.itertuples(index=False):
        offset = None if pd.isna(r.cancel_date) else (r.cancel_date.date() - D).days
        out[r.customer_id] = (r.churned, r.naive_churned, offset)
    return out


def test_labels_known_answers_and_dtypes() -> None:
    labels = compute_labels(extracts(range(H + G + 1)), D, H, G)
    assert list(labels.columns) == ["customer_id", "churned", "naive_churned", "cancel_date"]
    assert labels["churned"].dtype == np.int64
    assert labels["naive_churned"].dtype == np.int64
    assert labels["cancel_date"].dtype == np.dtype("datetime64[ns]")
    assert labels["customer_id"].tolist() == sorted(EXPECTED)  # sorted; G, K, L excluded
    assert as_expected(labels) == EXPECTED


def test_missing_days_in_between_change_nothing() -> None:
    full = compute_labels(extracts(range(H + G + 1)), D, H, G)
    gappy = compute_labels(extracts([0, 1, 2, 4, 6, 7, 9]), D, H, G)  # 3, 5, 8 missing
    # Naive falls back to D+H-1 (D+4): J's and N's cancellations on D+5 are not visible there.
    on_horizon = full["customer_id"].isin(["J_ON_HORIZON", "N_BACK_ON_THE_LAST_DAY"])
    expected_naive = full["naive_churned"].where(~on_horizon, 0)
    pd.testing.assert_series_equal(gappy["churned"], full["churned"])
    pd.testing.assert_series_equal(gappy["cancel_date"], full["cancel_date"])
    pd.testing.assert_series_equal(gappy["naive_churned"], expected_naive)


def test_extracts_after_maturity_and_before_d_do_not_matter() -> None:
    base = compute_labels(extracts(range(H + G + 1)), D, H, G)
    wider = compute_labels(extracts(range(-5, H + G + 10)), D, H, G)
    pd.testing.assert_frame_equal(base, wider)


@pytest.mark.parametrize("later", [1, 3])
def test_a_missing_final_extract_is_replaced_by_the_next_valid_one(later: int) -> None:
    full = compute_labels(extracts(range(H + G + 1)), D, H, G)
    # D+H+G never landed (or was rejected); N's re-activation on that very day still shows
    # in the next extract, which is what keeps N from churning
    gappy = compute_labels(extracts([*range(H + G), H + G + later, H + G + later + 4]), D, H, G)
    pd.testing.assert_frame_equal(gappy, full)
    assert as_expected(gappy)["N_BACK_ON_THE_LAST_DAY"] == (0, 1, None)


def test_extracts_after_the_first_final_one_are_ignored() -> None:
    full = compute_labels(extracts(range(H + G + 1)), D, H, G)
    restated = extracts(range(H + G + 3))
    late = restated["snapshot_date"] > pd.Timestamp(d(H + G))
    # a producer restating history later (a cancellation backdated into the horizon) does
    # not change a label that was already final
    restated.loc[late & (restated["customer_id"] == "A_STAYS"), "cancelled_at"] = pd.Timestamp(d(1))
    pd.testing.assert_frame_equal(compute_labels(restated, D, H, G), full)


def test_not_mature_until_the_d_plus_h_plus_g_extract() -> None:
    with pytest.raises(LabelsNotMature, match=str(d(H + G))):
        compute_labels(extracts(range(H + G)), D, H, G)
    with pytest.raises(LabelsNotMature, match="missing"):
        compute_labels(extracts(range(1, H + G + 1)), D, H, G)
    with pytest.raises(LabelsNotMature):
        compute_labels(pd.DataFrame(), D, H, G)  # an empty window
    assert issubclass(LabelsNotMature, ValueError)


def test_zero_grace_reactivation_same_day_still_counts() -> None:
    labels = compute_labels(extracts(range(H + 1)), D, H, 0)
    got = as_expected(labels)
    assert got["I_SAME_DAY"][0] == 0  # cancel + re-activation on the same day: active
    assert got["B_BACK_ON_G"][0] == 1  # back 3 days later is too late with G = 0


def test_label_summary() -> None:
    labels = compute_labels(extracts(range(H + G + 1)), D, H, G)
    s = label_summary(labels)
    assert s["n"] == 10
    assert s["true_rate"] == pytest.approx(4 / 10)
    assert s["naive_rate"] == pytest.approx(8 / 10)
    assert s["disagreement"] == pytest.approx(4 / 10)
    assert s["naive_false_positives"] == 4  # B, H, I, N: re-activated customers
    assert s["naive_false_negatives"] == 0
    assert label_summary(labels.iloc[:0])["n"] == 0
