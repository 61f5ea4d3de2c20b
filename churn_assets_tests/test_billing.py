"""Billing extract parsing, typing, contract violations and the active-customer rule."""

from __future__ import annotations

import gzip
from datetime import date

import numpy as np
import pandas as pd
import pytest

from churn_assets.core.billing import (
    BILLING_COLUMNS,
    VIOLATION_NAMES,
    BillingRejected,
    active_at_end_of_day,
    billing_contract_violations,
    parse_billing_day,
)

DAY = date(2026, 3, 10)
HEADER = ",".join(BILLING_COLUMNS)


def part(text: str, name: str = "part-00000.csv.gz") -> tuple[str, bytes]:
    return name, gzip.compress(text.encode("utf-8"))


def row(
    cid: str = "C0000001",
    name: str = "Acme",
    signup: str = "2025-01-01",
    plan: str = "basic",
    seats: str = "3",
    mrr: str = "49.00",
    cancelled: str = "0",
    cancelled_at: str = "",
    new: str = "0",
    reactivated_at: str = "",
    calls: str = "0",
    snap: str = "2026-03-10",
) -> str:
    fields = [cid, name, signup, plan, seats, mrr, cancelled, cancelled_at, new, reactivated_at]
    return ",".join([*fields, calls, snap])


def test_typed_columns_and_dtypes() -> None:
    df = parse_billing_day([part(HEADER + "\n" + row() + "\n")], DAY)
    assert list(df.columns) == list(BILLING_COLUMNS)
    assert df.dtypes.to_dict() == {
        "customer_id": np.dtype(object),
        "account_name": np.dtype(object),
        "signup_date": np.dtype("datetime64[ns]"),
        "plan": np.dtype(object),
        "seats": np.dtype(np.int64),
        "mrr": np.dtype(np.float64),
        "cancelled_service": np.dtype(bool),
        "cancelled_at": np.dtype("datetime64[ns]"),
        "new_customer": np.dtype(bool),
        "reactivated_at": np.dtype("datetime64[ns]"),
        "support_calls": np.dtype(np.int64),
        "snapshot_date": np.dtype("datetime64[ns]"),
    }
    r = df.iloc[0]
    assert r["seats"] == 3 and r["mrr"] == 49.0 and r["plan"] == "basic"
    assert r["signup_date"] == pd.Timestamp("2025-01-01")
    assert pd.isna(r["cancelled_at"]) and pd.isna(r["reactivated_at"])


def test_reordered_upper_case_header_with_unknown_extra_column() -> None:
    cols = list(reversed(BILLING_COLUMNS))
    header = ",".join(f" {c.upper()} " for c in cols) + ",Region"
    values = dict(
        zip(BILLING_COLUMNS, row(cid=" c0000042\u00a0", plan="PRO").split(","), strict=True)
    )
    line = ",".join(values[c] for c in cols) + ",EMEA"
    df = parse_billing_day([part(header + "\n" + line + "\n")], DAY)
    assert list(df.columns) == list(BILLING_COLUMNS)
    assert df["customer_id"].tolist() == ["C0000042"]  # Unicode whitespace trimmed, upper-cased
    assert df["plan"].tolist() == ["pro"]
    assert "region" not in df.columns and "Region" not in df.columns


def test_every_boolean_spelling() -> None:
    spellings = ["0", "1", "true", "false", "TRUE", "False"]
    lines = [row(cid=f"C{i:07d}", cancelled=s, new=s) for i, s in enumerate(spellings, start=1)]
    df = parse_billing_day([part(HEADER + "\n" + "\n".join(lines) + "\n")], DAY)
    expected = [False, True, True, False, True, False]
    assert df["cancelled_service"].tolist() == expected
    assert df["new_customer"].tolist() == expected


def test_quoted_names_across_two_parts() -> None:
    p0 = HEADER + "\n" + row(cid="C0000001", name='"Smith, Jones & Co"') + "\n"
    p1 = (
        HEADER
        + "\r\n"
        + row(cid="C0000002", name='"The ""Best"" GmbH"')
        + "\r\n"
        + row(cid="C0000003", name='"Müller Søn, Ærø"')
        + "\r\n"
        + row(cid="C0000004", name='"two\nlines"')
        + "\r\n"
    )
    parts = [part(p1, "part-00001.csv.gz"), part(p0, "part-00000.csv.gz")]
    df = parse_billing_day(parts, DAY)
    assert df["customer_id"].tolist() == ["C0000001", "C0000002", "C0000003", "C0000004"]
    assert df["account_name"].tolist() == [
        "Smith, Jones & Co",
        'The "Best" GmbH',
        "Müller Søn, Ærø",
        "two\nlines",
    ]


def test_missing_column_rejected_with_its_name() -> None:
    cols = [c for c in BILLING_COLUMNS if c != "reactivated_at"]
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([part(",".join(cols) + "\n")], DAY)
    assert info.value.reason == "missing_columns"
    assert "reactivated_at" in info.value.details


def test_missing_column_in_second_part_rejects_the_day() -> None:
    cols = [c for c in BILLING_COLUMNS if c != "plan"]
    good = part(HEADER + "\n" + row() + "\n", "part-00000.csv.gz")
    bad = part(",".join(cols) + "\n", "part-00001.csv.gz")
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([good, bad], DAY)
    assert info.value.reason == "missing_columns"
    assert "part-00001" in info.value.details and "plan" in info.value.details


def test_untypeable_seats_rejected_with_column_and_sample() -> None:
    text = HEADER + "\n" + row(cid="C1") + "\n" + row(cid="C2", seats="three") + "\n"
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([part(text)], DAY)
    assert info.value.reason == "untypeable_values"
    assert "seats" in info.value.details and "'three'" in info.value.details
    assert "row 3" in info.value.details  # file line of the offending row


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("plan", "gold"),
        ("mrr", '"12,50"'),
        ("mrr", "1e3"),
        ("signup_date", "2026/03/01"),
        ("signup_date", ""),
        ("cancelled_at", "2026-02-30"),
        ("cancelled_service", "yes"),
        ("support_calls", "1.5"),
        ("snapshot_date", ""),
    ],
)
def test_other_untypeable_values(field: str, value: str) -> None:
    text = HEADER + "\n" + row(**{_ARG[field]: value}) + "\n"
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([part(text)], DAY)
    assert info.value.reason == "untypeable_values"
    assert field in info.value.details


_ARG = {
    "plan": "plan",
    "mrr": "mrr",
    "signup_date": "signup",
    "cancelled_at": "cancelled_at",
    "cancelled_service": "cancelled",
    "support_calls": "calls",
    "snapshot_date": "snap",
}


def test_row_with_missing_field_is_malformed() -> None:
    short = row().rsplit(",", 1)[0]
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([part(HEADER + "\n" + short + "\n")], DAY)
    assert info.value.reason == "malformed_csv"


def test_decode_errors_and_empty_day() -> None:
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([("part-00000.csv.gz", b"not gzip")], DAY)
    assert info.value.reason == "decode_error"
    latin1 = (
        "part-00000.csv.gz",
        gzip.compress((HEADER + "\n" + row(name="Müller")).encode("latin-1")),
    )
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([latin1], DAY)
    assert info.value.reason == "decode_error"
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([part(HEADER + "\n")], DAY)
    assert info.value.reason == "empty_day"
    with pytest.raises(BillingRejected) as info:
        parse_billing_day([], DAY)
    assert info.value.reason == "empty_day"


def test_range_problems_are_kept_and_reported_as_violations() -> None:
    lines = [
        row(cid="C1"),
        row(cid="c1 "),  # duplicate after normalisation
        row(cid="  "),  # null id
        row(cid="C3", mrr="-5.00"),
        row(cid="C4", seats="0"),
        row(cid="C5", snap="2026-03-09"),
        row(cid="C6", calls="-1"),
        row(cid="C7"),
    ]
    df = parse_billing_day([part(HEADER + "\n" + "\n".join(lines) + "\n")], DAY)
    assert len(df) == 8  # nothing dropped
    v = billing_contract_violations(df, DAY)
    assert set(v) == set(VIOLATION_NAMES)
    assert v["duplicate_customer_id"]["customer_id"].tolist() == ["C1", "C1"]
    assert v["null_customer_id"].index.tolist() == [2]
    assert v["negative_mrr"]["customer_id"].tolist() == ["C3"]
    assert v["seats_below_one"]["customer_id"].tolist() == ["C4"]
    assert v["snapshot_date_mismatch"]["customer_id"].tolist() == ["C5"]
    assert v["negative_support_calls"]["customer_id"].tolist() == ["C6"]


def test_no_violations_on_a_clean_day() -> None:
    df = parse_billing_day([part(HEADER + "\n" + row() + "\n")], DAY)
    assert all(frame.empty for frame in billing_contract_violations(df, DAY).values())


def test_active_at_end_of_day() -> None:
    lines = [
        row(cid="A_NEVER"),
        row(cid="B_CANCELLED", cancelled="1", cancelled_at="2026-03-05"),
        row(
            cid="C_BACK",
            cancelled="1",
            cancelled_at="2026-03-01",
            new="1",
            reactivated_at="2026-03-04",
        ),
        row(
            cid="D_SAME_DAY",
            cancelled="1",
            cancelled_at="2026-03-10",
            new="1",
            reactivated_at="2026-03-10",
        ),
        row(
            cid="E_AGAIN",
            cancelled="1",
            cancelled_at="2026-03-08",
            new="1",
            reactivated_at="2026-03-04",
        ),
        row(cid="F_FUTURE_SIGNUP", signup="2026-03-11"),
        row(cid="G_SIGNUP_TODAY", signup="2026-03-10"),
    ]
    df = parse_billing_day([part(HEADER + "\n" + "\n".join(lines) + "\n")], DAY)
    active = active_at_end_of_day(df, DAY)
    assert active.dtype == bool
    assert dict(zip(df["customer_id"], active, strict=True)) == {
        "A_NEVER": True,
        "B_CANCELLED": False,
        "C_BACK": True,
        "D_SAME_DAY": True,
        "E_AGAIN": False,
        "F_FUTURE_SIGNUP": False,
        "G_SIGNUP_TODAY": True,
    }
