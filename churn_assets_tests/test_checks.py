"""Asset-check verdicts on hand-made inputs with known answers (no graph run)."""

from __future__ import annotations

import gzip
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from churn_assets.checks.common import (
    ERROR,
    WARN,
    ContractSettings,
    contract_settings,
    failed_blocking,
    materialized_numbers,
    result,
    spec,
    trailing_days,
)
from churn_assets.checks.derived import (
    active_customer_differences,
    binomial_cdf,
    churn_rate_verdict,
    event_count_mismatches,
    features_results,
    horizon_bounds,
    malformed_sessions,
    non_finite_rows,
    range_violations,
)
from churn_assets.checks.derived import (
    schema_verdict as features_schema_verdict,
)
from churn_assets.checks.raw import (
    accounting_verdict,
    billing_row_verdicts,
    disappeared_accounts,
    header_summary,
    previous_billing,
    raw_billing_results,
    raw_clickstream_results,
    rejected_billing_results,
    schema_verdict,
)
from churn_assets.core.billing import BILLING_COLUMNS, BillingRejected, parse_billing_day
from churn_assets.core.clickstream import (
    ACCOUNTING_KEYS,
    ClickstreamResult,
    empty_events,
    empty_quarantine,
)
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.landing_layout import UNRECOGNISED_NAME, UnreadKey
from churn_assets.resources.contracts import RawContracts
from churn_assets.resources.warehouse import ParquetWarehouse

DAY = date(2026, 3, 11)  # a Wednesday


def by_name(results: list[dg.AssetCheckResult]) -> dict[str, dg.AssetCheckResult]:
    return {r.check_name or "": r for r in results}


def meta(r: dg.AssetCheckResult, key: str) -> object:
    return r.metadata[key].value


# common -----------------------------------------------------------------------------------


def test_trailing_days_stop_at_the_start_of_history() -> None:
    assert trailing_days(DAY, 3) == [
        DAY - timedelta(days=3),
        DAY - timedelta(2),
        DAY - timedelta(1),
    ]
    assert trailing_days(DAY, 7, first_day=DAY - timedelta(days=2)) == [
        DAY - timedelta(days=2),
        DAY - timedelta(days=1),
    ]


def test_failed_blocking_only_counts_blocking_error_failures() -> None:
    specs = [spec("a", "x", None, True, ""), spec("a", "y", None, False, "")]
    results = [result("x", False, ERROR, {}), result("y", False, ERROR, {})]
    assert failed_blocking(results, specs) == ["x"]
    assert failed_blocking([result("x", True, ERROR, {})], specs) == []
    assert failed_blocking([result("x", False, WARN, {})], specs) == []


def test_contract_settings_come_from_the_pipeline_settings() -> None:
    from churn_assets.settings import PipelineSettings

    custom = ContractSettings(sample_rows=3)
    assert contract_settings(PipelineSettings()) == ContractSettings()
    assert contract_settings(PipelineSettings(contracts=custom)) is custom


def test_materialized_numbers_take_the_latest_materialization_of_each_day() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        for day, accounts in ((DAY - timedelta(days=2), 100), (DAY - timedelta(days=1), 90)):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    "raw_billing", partition=day.isoformat(), metadata={"accounts": accounts}
                )
            )
        instance.report_runless_asset_event(  # the day delivered again
            dg.AssetMaterialization(
                "raw_billing",
                partition=(DAY - timedelta(days=1)).isoformat(),
                metadata={"accounts": 110},
            )
        )
        found = materialized_numbers(instance, "raw_billing", trailing_days(DAY, 3), ["accounts"])
    assert found == {
        DAY - timedelta(days=2): {"accounts": 100.0},
        DAY - timedelta(days=1): {"accounts": 110.0},
    }


# raw_billing ------------------------------------------------------------------------------


def csv_part(
    rows: list[str], header: str | None = None, name: str = "part-00000.csv.gz"
) -> tuple[str, bytes]:
    text = (header or ",".join(BILLING_COLUMNS)) + "\n" + "\n".join(rows) + "\n"
    return name, gzip.compress(text.encode("utf-8"))


def billing_row(cid: str, mrr: str = "49.00", seats: str = "3", snap: str = DAY.isoformat()) -> str:
    return f'{cid},"Acme, Inc.",2025-01-01,basic,{seats},{mrr},0,,0,,1,{snap}'


def test_billing_row_rules_report_the_offending_rows() -> None:
    billing = parse_billing_day(
        [
            csv_part(
                [
                    billing_row("C1"),
                    billing_row("C2", mrr="-5.00"),
                    billing_row("C2"),
                    billing_row(" ", seats="0"),
                    billing_row("C4", snap="2026-03-10"),
                ]
            )
        ],
        DAY,
    )
    rules = billing_row_verdicts(billing, DAY)
    assert list(rules["customer_id_unique"]["duplicate_customer_id"]["customer_id"]) == ["C2", "C2"]
    assert len(rules["customer_id_unique"]["null_customer_id"]) == 1
    assert list(rules["values_in_range"]["negative_mrr"]["mrr"]) == [-5.0]
    assert len(rules["values_in_range"]["seats_below_one"]) == 1
    assert list(rules["snapshot_date_is_partition"]["snapshot_date_mismatch"]["customer_id"]) == [
        "C4"
    ]
    assert schema_verdict(billing)[0]
    assert not schema_verdict(billing.astype({"seats": "float64"}))[0]
    assert schema_verdict(billing.assign(extra=1))[1]["unexpected_columns"] == ["extra"]


def test_headers_list_ignored_and_missing_columns() -> None:
    shuffled = ",".join(c.upper() for c in reversed(BILLING_COLUMNS)) + ",Loyalty_Tier"
    renamed = ",".join("monthly_revenue" if c == "mrr" else c for c in BILLING_COLUMNS)
    summary = header_summary(
        [csv_part([], "\ufeff" + shuffled), csv_part([], renamed, "part-00001.csv.gz")]
    )
    assert summary["ignored_columns"] == ["loyalty_tier", "monthly_revenue"]
    assert summary["missing_columns"] == ["mrr"]
    assert summary["headers"]["part-00000.csv.gz"][0] == "snapshot_date"


def test_a_rejected_day_fails_the_schema_check_with_its_reason() -> None:
    renamed = ",".join("monthly_revenue" if c == "mrr" else c for c in BILLING_COLUMNS)
    parts = [csv_part([billing_row("C1")], renamed)]
    with pytest.raises(BillingRejected) as caught:
        parse_billing_day(parts, DAY)
    (check,) = rejected_billing_results(caught.value, parts)
    assert check.check_name == "schema" and not check.passed and check.severity == ERROR
    assert meta(check, "reason") == "missing_columns"
    assert meta(check, "missing_columns") == ["mrr"]


def test_disappeared_accounts_are_the_previous_ids_missing_today() -> None:
    previous = pd.DataFrame({"customer_id": ["C1", "C2", "C3"], "plan": ["basic"] * 3})
    current = pd.DataFrame({"customer_id": ["C1", "C3", "C4"]})
    assert list(disappeared_accounts(previous, current)["customer_id"]) == ["C2"]
    assert disappeared_accounts(previous.iloc[:1], current).empty


def test_previous_billing_skips_missing_days_within_the_lookback(tmp_path) -> None:
    warehouse = ParquetWarehouse(url=str(tmp_path), s3=S3Resource())
    older = DAY - timedelta(days=3)
    frame = pd.DataFrame({"customer_id": ["C1"]})
    warehouse.write_tables(
        warehouse.partition_prefix(["raw_billing"], older.isoformat()), "v1", frame
    )
    found = previous_billing(warehouse, DAY, date(2026, 1, 1), lookback_days=7)
    assert found is not None and found[0] == older
    assert previous_billing(warehouse, DAY, date(2026, 1, 1), lookback_days=2) is None
    assert previous_billing(warehouse, DAY, DAY - timedelta(days=2), lookback_days=7) is None


def test_raw_billing_results_on_a_clean_and_a_truncated_day(tmp_path) -> None:
    warehouse = ParquetWarehouse(url=str(tmp_path), s3=S3Resource())
    ids = [f"C{i:07d}" for i in range(20)]
    yesterday = DAY - timedelta(days=1)
    previous = parse_billing_day(
        [csv_part([billing_row(c, snap=yesterday.isoformat()) for c in ids])], yesterday
    )
    warehouse.write_tables(
        warehouse.partition_prefix(["raw_billing"], yesterday.isoformat()), "v1", previous
    )
    with dg.DagsterInstance.ephemeral() as instance:
        for back in range(1, 6):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    "raw_billing",
                    partition=(DAY - timedelta(days=back)).isoformat(),
                    metadata={"accounts": 20},
                )
            )
        context = dg.build_asset_context(instance=instance, partition_key=DAY.isoformat())
        clean_parts = [csv_part([billing_row(c) for c in ids])]
        clean = by_name(
            raw_billing_results(
                context,
                parse_billing_day(clean_parts, DAY),
                DAY,
                parts=clean_parts,
                warehouse=warehouse,
                first_day=date(2026, 1, 1),
            )
        )
        assert all(r.passed for r in clean.values()), {k: r.passed for k, r in clean.items()}
        volume = clean["volume_vs_trailing_median"]
        assert meta(volume, "accounts_baseline") == 20.0
        assert meta(volume, "accounts_history_days") == 5
        assert meta(volume, "accounts_settings") == RawContracts().in_force("billing_accounts")
        # A truncated extract: half the accounts.
        half_parts = [csv_part([billing_row(c) for c in ids[:10]])]
        half = by_name(
            raw_billing_results(
                context,
                parse_billing_day(half_parts, DAY),
                DAY,
                parts=half_parts,
                warehouse=warehouse,
                first_day=date(2026, 1, 1),
            )
        )
    assert not half["volume_vs_trailing_median"].passed
    assert half["volume_vs_trailing_median"].severity == ERROR
    assert meta(half["volume_vs_trailing_median"], "accounts_ratio") == pytest.approx(0.5)
    assert not half["no_account_disappears"].passed
    assert meta(half["no_account_disappears"], "disappeared") == 10
    assert "C0000010" in str(meta(half["no_account_disappears"], "disappeared_sample"))


# raw_clickstream --------------------------------------------------------------------------


def clickstream_result(valid: int, anonymous: int, reasons: dict[str, int]) -> ClickstreamResult:
    t = pd.Timestamp(DAY, tz="UTC")
    events = pd.concat(
        [
            empty_events(),
            pd.DataFrame(
                {
                    "event_id": [f"w-{i}" for i in range(valid + anonymous)],
                    "customer_id": [f"C{i % 5}" for i in range(valid)] + [None] * anonymous,
                    "event_type": "page_view",
                    "event_time": t,
                }
            ),
        ],
        ignore_index=True,
    )
    rows = [r for r, k in reasons.items() for _ in range(k)]
    quarantine = pd.concat(
        [
            empty_quarantine(),
            pd.DataFrame(
                {
                    "object_key": "clickstream/x.gz",
                    "line_no": np.arange(1, len(rows) + 1, dtype=np.int64),
                    "reason": rows,
                    "event_id": None,
                    "event_time": t - pd.Timedelta(days=2),
                    "raw_line": [b'{"oops' for _ in rows],
                }
            ),
        ],
        ignore_index=True,
    )
    accounting = dict.fromkeys(ACCOUNTING_KEYS, 0)
    accounting |= {"valid": valid, "anonymous": anonymous, "duplicate": 2, "other_date": 3}
    accounting |= {f"quarantined_{r}": k for r, k in reasons.items()}
    accounting["lines_read"] = valid + anonymous + 5 + len(rows)
    return ClickstreamResult(events, quarantine, accounting)


def test_accounting_adds_up_and_matches_the_stored_tables() -> None:
    good = clickstream_result(100, 10, {"invalid_json": 1, "late": 2})
    assert accounting_verdict(good)[0]
    miscounted = clickstream_result(100, 10, {"invalid_json": 1})
    miscounted.accounting["lines_read"] += 1  # a line nobody accounted for
    passed, details = accounting_verdict(miscounted)
    assert not passed and details["lines_read"] == details["sum_of_categories"] + 1
    lost_row = clickstream_result(100, 10, {"invalid_json": 1})
    lost_row.quarantine = lost_row.quarantine.iloc[:0]  # counted but not stored
    assert not accounting_verdict(lost_row)[0]


class Listing:
    unrecognised_keys = ("clickstream/2026/03/11/00/notes.txt",)
    unread = (UnreadKey(unrecognised_keys[0], UNRECOGNISED_NAME, "not read"),)


def record_clickstream_days(instance: dg.DagsterInstance, days: int, bad: int) -> None:
    """``days`` materialized days before DAY, each with ``bad`` invalid lines of ~1,100."""
    for back in range(1, days + 1):
        counts = clickstream_result(1000, 100, {"invalid_json": bad}).accounting
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                "raw_clickstream",
                partition=(DAY - timedelta(days=back)).isoformat(),
                metadata={**counts, "attributed_customers": 5},
            )
        )


def clickstream_checks(
    instance: dg.DagsterInstance, outcome: ClickstreamResult
) -> dict[str, dg.AssetCheckResult]:
    context = dg.build_asset_context(instance=instance, partition_key=DAY.isoformat())
    return by_name(raw_clickstream_results(context, outcome, Listing(), first_day=date(2026, 1, 1)))


def test_clickstream_checks_separate_bad_records_from_late_ones() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        record_clickstream_days(instance, 7, bad=2)
        late = clickstream_checks(instance, clickstream_result(1000, 100, {"late": 300}))
        bad = clickstream_checks(
            instance, clickstream_result(1000, 100, {"invalid_json": 30, "bad_timestamp": 1})
        )
    # 300 late lines: a warning with their event date, the day itself is not blocked.
    assert late["quarantine_share"].passed
    assert not late["late_events"].passed and late["late_events"].severity == WARN
    assert "2026-03-09" in str(meta(late["late_events"], "late_by_event_date"))
    # 31 bad records of 1,136 lines against ~0.2% on the 7 days before: blocking; the
    # metadata explains the verdict and the sample shows the raw line.
    share = bad["quarantine_share"]
    assert not share.passed and share.severity == ERROR
    assert meta(share, "bad_records") == 31
    assert meta(share, "quarantine_share") == pytest.approx(31 / 1136)
    assert meta(share, "quarantine_share_baseline") == pytest.approx(2 / 1107)
    assert meta(share, "quarantine_share_margin") == pytest.approx(0.01)  # the minimum margin
    assert meta(share, "quarantine_share_ceiling") == 0.25
    assert meta(share, "quarantine_share_history_days") == 7
    assert meta(share, "quarantine_share_settings") == RawContracts().in_force("quarantine_share")
    assert "2026-03-10" in str(meta(share, "history"))
    assert "beyond the margin" in (share.description or "")
    assert '{"oops' in str(meta(share, "quarantined_sample"))
    assert bad["row_accounting"].passed and bad["late_events"].passed
    assert bad["anonymous_share"].passed and bad["volume_vs_trailing_median"].passed
    assert not bad["unread_landing_files"].passed
    assert meta(bad["duplicate_share"], "duplicates") == 2


def test_a_steady_share_passes_whatever_its_level() -> None:
    """Another producer's steady 3% of bad lines is its normal state: it passes."""
    with dg.DagsterInstance.ephemeral() as instance:
        record_clickstream_days(instance, 7, bad=34)
        same = clickstream_checks(instance, clickstream_result(1000, 100, {"invalid_json": 36}))
        burst = clickstream_checks(instance, clickstream_result(1000, 100, {"invalid_json": 90}))
    assert same["quarantine_share"].passed
    assert meta(same["quarantine_share"], "quarantine_share_baseline") == pytest.approx(34 / 1139)
    assert not burst["quarantine_share"].passed


def test_without_history_only_the_ceiling_applies() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        record_clickstream_days(instance, 2, bad=2)
        high = clickstream_checks(instance, clickstream_result(1000, 100, {"invalid_json": 150}))
        broken = clickstream_checks(instance, clickstream_result(1000, 100, {"invalid_json": 500}))
    assert high["quarantine_share"].passed  # 12%: too little history to call it a change
    assert "too few for a baseline" in (high["quarantine_share"].description or "")
    assert meta(high["quarantine_share"], "quarantine_share_history_days") == 2
    assert not broken["quarantine_share"].passed  # 31%: above the 25% ceiling
    assert "ceiling" in (broken["quarantine_share"].description or "")


def test_a_jump_of_anonymous_records_blocks_and_a_lost_day_blocks_on_volume() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        record_clickstream_days(instance, 7, bad=2)
        lost_ids = clickstream_checks(instance, clickstream_result(500, 600, {}))
        quiet = clickstream_checks(instance, clickstream_result(200, 20, {}))
    anonymous = lost_ids["anonymous_share"]
    assert not anonymous.passed and anonymous.severity == ERROR
    assert meta(anonymous, "anonymous_share_baseline") == pytest.approx(100 / 1102)
    volume = quiet["volume_vs_trailing_median"]
    assert not volume.passed and volume.severity == ERROR
    assert meta(volume, "events_ratio") == pytest.approx(0.2)
    assert meta(volume, "events_baseline") == 1000 and meta(volume, "customers_baseline") == 5
    assert quiet["anonymous_share"].passed


# sessions ---------------------------------------------------------------------------------


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_malformed_sessions_are_found_per_rule() -> None:
    sessions = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "session_id": ["a", "b", "c"],
            "session_start": [
                ts("2026-03-11 10:00"),
                ts("2026-03-11 23:50"),
                ts("2026-03-10 12:00"),
            ],
            "session_end": [ts("2026-03-11 10:30"), ts("2026-03-12 00:10"), ts("2026-03-10 11:00")],
            "duration_s": [1800.0, 1200.0, -3600.0],
        }
    )
    bad = malformed_sessions(sessions, DAY.isoformat())
    assert list(bad["crosses_midnight"]["customer_id"]) == ["C2"]
    assert list(bad["negative_duration"]["customer_id"]) == ["C3"]
    assert list(bad["ends_before_start"]["customer_id"]) == ["C3"]
    assert list(bad["starts_on_other_day"]["customer_id"]) == ["C3"]


def test_event_counts_are_compared_per_customer_and_type() -> None:
    events = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C2", None],
            "event_type": ["page_view", "click", "hover", "page_view"],
        }
    )
    base = {
        "n_page_views": [1, 0],
        "n_hovers": [0, 1],
        "n_clicks": [1, 0],
        "n_support_contacts": [0, 0],
    }
    sessions = pd.DataFrame({"customer_id": ["C1", "C2"], "n_events": [2, 1], **base})
    assert event_count_mismatches(sessions, events).empty
    wrong = sessions.assign(n_clicks=[0, 0], n_page_views=[2, 0])  # a click counted as a view
    mismatched = event_count_mismatches(wrong, events)
    assert list(mismatched["customer_id"]) == ["C1"]
    assert event_count_mismatches(sessions.iloc[:1], events)["customer_id"].tolist() == ["C2"]


# labels -----------------------------------------------------------------------------------


def test_binomial_cdf_matches_known_values() -> None:
    assert binomial_cdf(5, 10, 0.5) == pytest.approx(638 / 1024)
    assert binomial_cdf(0, 10, 0.1) == pytest.approx(0.9**10)
    assert binomial_cdf(-1, 10, 0.1) == 0.0 and binomial_cdf(10, 10, 0.3) == 1.0


def test_churn_rate_bounds_scale_with_the_horizon_and_allow_sampling_noise() -> None:
    low, high = horizon_bounds((0.005, 0.5), 30)
    assert (low, high) == pytest.approx((0.005, 0.5))
    assert horizon_bounds((0.005, 0.5), 60)[1] == pytest.approx(0.75)
    contracts = ContractSettings()
    assert churn_rate_verdict(200, 0, 2, contracts)[0]  # nobody churning in two days: plausible
    assert not churn_rate_verdict(2000, 0, 30, contracts)[0]  # nobody in a month: broken labels
    assert churn_rate_verdict(2000, 100, 30, contracts)[0]
    assert not churn_rate_verdict(2000, 1500, 30, contracts)[0]  # 75% in a month


# features ---------------------------------------------------------------------------------


def features_frame(ids: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": pd.Series(ids, dtype=object)})
    for c in FEATURE_COLUMNS:
        frame[c] = 0.0
    frame["seats"] = 3.0
    frame["plan_basic"] = 1.0
    frame["tenure_days"] = 100.0
    return frame


def test_active_customers_exactly() -> None:
    diff = active_customer_differences(
        features_frame(["C1", "C2", "C2", "C9"]), pd.Series(["C1", "C2", "C3"])
    )
    assert list(diff["missing"]["customer_id"]) == ["C3"]
    assert list(diff["not_active"]["customer_id"]) == ["C9"]
    assert len(diff["duplicates"]) == 2


def test_feature_schema_must_equal_the_serving_models() -> None:
    frame = features_frame(["C1"])
    assert features_schema_verdict(frame, FEATURE_COLUMNS)[0]
    trained_on = [c for c in FEATURE_COLUMNS if c != "visit_trend"]
    passed, details = features_schema_verdict(frame, trained_on)
    assert not passed and details["unexpected"] == ["visit_trend"]
    reordered = frame[["customer_id", *reversed(FEATURE_COLUMNS)]]
    passed, details = features_schema_verdict(reordered, FEATURE_COLUMNS)
    assert not passed and details["order_differs"]
    assert not features_schema_verdict(frame.astype({"seats": "int64"}), FEATURE_COLUMNS)[0]


def test_non_finite_and_out_of_range_values_are_located() -> None:
    frame = features_frame(["C1", "C2", "C3"])
    frame.loc[1, "mrr"] = np.nan
    frame.loc[2, "visit_trend"] = np.inf
    cells, rows = non_finite_rows(frame)
    assert cells == 2 and rows.to_dict("list") == {
        "customer_id": ["C2", "C3"],
        "columns": ["mrr", "visit_trend"],
    }
    frame = features_frame(["C1", "C2", "C3"])
    frame.loc[0, "sessions_7d"] = 5.0  # more than in the whole window (0)
    frame.loc[1, "plan_plus"] = 1.0  # two plans
    frame.loc[2, "days_since_last_session"] = 30.0
    bad = {
        k: list(v["customer_id"])
        for k, v in range_violations(frame, window_days=28).items()
        if len(v)
    }
    assert bad == {
        "sessions_7d_above_window": ["C1"],
        "not_one_plan": ["C2"],
        "days_since_last_session_out_of_range": ["C3"],
    }


def test_features_results_compare_with_the_serving_models_card() -> None:
    frame = features_frame(["C1", "C2"])
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_asset_context(instance=instance, partition_key=DAY.isoformat())
        ok = by_name(
            features_results(context, frame, pd.Series(["C1", "C2"]), None, window_days=28)
        )
        card = {"version": "2026-03-01-abc", "features": list(FEATURE_COLUMNS)[:-1]}
        drift = by_name(
            features_results(context, frame, pd.Series(["C1", "C2"]), card, window_days=28)
        )
    assert all(r.passed for r in ok.values())
    assert not drift["schema_matches_serving_model"].passed
    assert meta(drift["schema_matches_serving_model"], "serving_model") == "2026-03-01-abc"
    assert meta(drift["schema_matches_serving_model"], "differences")["unexpected"] == [
        "reactivated_before"
    ]  # type: ignore[index]


def test_check_results_carry_their_metadata_through_a_real_step() -> None:
    """A partitioned spec + result built by the helpers is accepted by Dagster per partition."""
    daily = dg.DailyPartitionsDefinition(start_date="2026-03-01")

    @dg.asset(partitions_def=daily, check_specs=[spec("a", "x", daily, True, "d")])
    def a():
        yield dg.Output(1)
        yield result("x", False, ERROR, {"n": dg.MetadataValue.int(3)})

    outcome = dg.materialize([a], partition_key=DAY.isoformat(), raise_on_error=False)
    (evaluation,) = outcome.get_asset_check_evaluations()
    assert evaluation.partition == DAY.isoformat() and evaluation.blocking
    assert evaluation.metadata["n"].value == 3 and not outcome.success
