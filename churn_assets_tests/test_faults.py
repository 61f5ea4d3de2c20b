"""Every generator fault, injected into one generated history: which check catches it, what it
blocks, that nothing is lost, and that the day delivered again materializes and passes.

One faulted history (17 days, each fault on its own day) and one clean history of the same
world are generated once per module and run day by day through ``runner.run_days`` against
a real (ephemeral) instance, the way production would run them. Fixing a fault means what
it means upstream: the day is delivered again (corrected files written into the same
landing zone, a new ``_SUCCESS`` last), then the affected days are run again.

Layout of the faulted history (2026-01-05 is a Monday):

    01-06 schema_new_column    01-07 billing_redelivery   01-08 late_events
    01-09 schema_renamed_column                            01-12 clickstream_outage
    01-13 schema_missing_column 01-14 volume_drop         01-15 malformed_burst
    01-16 billing_no_success   01-17 missing_billing
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.test_utils import freeze_time

from churn_assets.contracts import local_resources
from churn_assets.core.billing import parse_billing_day
from churn_assets.core.daily_model import TrainingConfig
from churn_assets.core.generator import Fault, GeneratorConfig, generate_landing
from churn_assets.core.landing_layout import (
    billing_day_prefix,
    clickstream_day_prefix,
    clickstream_window,
    parse_clickstream_arrival,
)
from churn_assets.definitions import build_definitions
from churn_assets.freshness import build_freshness
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.resources.warehouse import ParquetWarehouse
from churn_assets.runner import StepOutcome, run_days
from churn_assets.settings import PipelineSettings

START = date(2026, 1, 5)
DAYS = 17
CUSTOMERS = 300
SEED = 11
CLEAN_DAYS = 8


def day(i: int) -> date:
    return START + timedelta(days=i)


FAULT_DAYS = {
    "schema_new_column": day(1),
    "billing_redelivery": day(2),
    "late_events": day(3),
    "schema_renamed_column": day(4),
    "clickstream_outage": day(7),
    "schema_missing_column": day(8),
    "volume_drop": day(9),
    "malformed_burst": day(10),
    "billing_no_success": day(11),
    "missing_billing": day(12),
}
BILLING_FIXES = ("billing_redelivery", "schema_renamed_column", "schema_missing_column")
BILLING_FIXES += ("billing_no_success", "missing_billing")
CLICKSTREAM_FIXES = ("late_events", "clickstream_outage", "volume_drop", "malformed_burst")
INGEST = ("raw_billing", "raw_clickstream", "sessions", "features")

# Small time settings; the training window is longer than the history, so no model runs
# here (the model's own checks are tested elsewhere): 17 days of ingest stay fast.
SETTINGS = PipelineSettings(
    history_start=START,
    horizon_days=2,
    grace_days=1,
    feature_window_days=3,
    training_window_days=DAYS + 5,
    training=TrainingConfig(validation_days=1),
)


class Landing:
    """A landing directory that can hold back a re-delivery, to deliver it later (the fix)."""

    def __init__(self, root: Path, hold_redelivery_of: Sequence[date] = ()) -> None:
        self.root = root
        self.store = LocalObjectStore(root)
        self.hold = {billing_day_prefix(d) for d in hold_redelivery_of}
        self.delivered: set[str] = set()
        self.held: list[tuple[str, str, bytes]] = []

    def _held(self, key: str) -> bool:
        prefix = key.rsplit("/", 1)[0] + "/"
        return prefix in self.hold and prefix in self.delivered

    def put(self, key: str, data: bytes) -> None:
        if self._held(key):
            self.held.append(("put", key, data))
            return
        self.store.put(key, data)
        if key.endswith("/_SUCCESS"):
            self.delivered.add(key.rsplit("/", 1)[0] + "/")

    def delete(self, key: str) -> None:
        if self._held(key):
            self.held.append(("delete", key, b""))
        else:
            self.store.delete(key)

    def release(self) -> None:
        """Upstream's corrected re-delivery, in its own order (``_SUCCESS`` last)."""
        for op, key, data in self.held:
            if op == "put":
                self.store.put(key, data)
            else:
                self.store.delete(key)
        self.held = []

    def redeliver_billing(self, clean: LocalObjectStore, d: date) -> None:
        """Deliver day ``d`` again from ``clean``: same part names, stale parts removed, new
        ``_SUCCESS`` written last."""
        prefix = billing_day_prefix(d)
        parts = {o.key for o in clean.list(prefix) if not o.key.endswith("_SUCCESS")}
        for stale in self.store.list(prefix):
            if stale.key not in parts:
                self.store.delete(stale.key)
        for key in sorted(parts):
            self.store.put(key, clean.get(key))
        self.store.put(prefix + "_SUCCESS", b"")

    def redeliver_clickstream(self, clean: LocalObjectStore, d: date) -> None:
        """Deliver again the objects that arrived on day ``d`` (the replay of that day)."""
        prefix = clickstream_day_prefix(d)
        for stale in list(self.store.list(prefix)):
            self.store.delete(stale.key)
        for obj in clean.list(prefix):
            self.store.put(obj.key, clean.get(obj.key))


def config(faults: Sequence[Fault] = ()) -> GeneratorConfig:
    return GeneratorConfig(
        start=START,
        days=DAYS,
        customers=CUSTOMERS,
        seed=SEED,
        faults=tuple(faults),
        horizon_days=SETTINGS.horizon_days,
        grace_days=SETTINGS.grace_days,
    )


def tree_hashes(store: LocalObjectStore, prefix: str) -> dict[str, str]:
    return {o.key: hashlib.sha256(store.get(o.key)).hexdigest() for o in store.list(prefix)}


def evaluations(
    outcomes: Sequence[StepOutcome],
) -> dict[tuple[str, str, str], dg.AssetCheckEvaluation]:
    """{(asset, check, partition): evaluation}, later evaluations replacing earlier ones."""
    found: dict[tuple[str, str, str], dg.AssetCheckEvaluation] = {}
    for outcome in outcomes:
        for e in outcome.checks:
            found[(e.asset_key.to_user_string(), e.check_name, e.partition or "")] = e
    return found


def ingest(outcomes: Sequence[StepOutcome], d: date) -> StepOutcome:
    (step,) = [o for o in outcomes if o.step.assets == INGEST and o.step.partition == d]
    return step


def value(e: dg.AssetCheckEvaluation, key: str) -> object:
    return e.metadata[key].value


def at(d: date, hour: int) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=timezone.utc)


@dataclass
class Run:
    landing: Landing
    workdir: Path
    defs: dg.Definitions
    instance: dg.DagsterInstance
    outcomes: list[StepOutcome]
    checks: dict[tuple[str, str, str], dg.AssetCheckEvaluation]
    materialized: dict[str, set[str]] = field(default_factory=dict)
    billing_files: dict[str, dict[str, str]] = field(default_factory=dict)
    quarantine: dict[str, pd.DataFrame] = field(default_factory=dict)
    freshness: dict[str, dict[str, dg.AssetCheckEvaluation]] = field(default_factory=dict)

    def failed(self, d: date) -> set[tuple[str, str]]:
        return {
            (a, c) for (a, c, p), e in self.checks.items() if p == d.isoformat() and not e.passed
        }

    def check(self, asset: str, name: str, d: date) -> dg.AssetCheckEvaluation:
        return self.checks[(asset, name, d.isoformat())]

    def warehouse(self) -> ParquetWarehouse:
        return self.defs.resources["io_manager"]  # type: ignore[index,return-value]


def snapshot_materialized(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    return {a: set(instance.get_materialized_partitions(dg.AssetKey(a))) for a in INGEST}


def evaluate_freshness(run: Run, now: datetime) -> dict[str, dg.AssetCheckEvaluation]:
    freshness = build_freshness()
    with freeze_time(now):
        result = dg.materialize(
            [*run.defs.assets, *freshness.checks],  # type: ignore[list-item]
            selection=dg.AssetSelection.checks(*freshness.checks),
            instance=run.instance,
            resources=run.defs.resources,
        )
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def start_run(
    landing: Landing, workdir: Path, instance: dg.DagsterInstance, days: Sequence[date]
) -> Run:
    resources = local_resources(
        str(landing.root), str(workdir / "warehouse"), str(workdir / "models")
    )
    defs = build_definitions(settings=SETTINGS, resources=resources)
    outcomes = run_days(defs, instance, SETTINGS, days)
    return Run(landing, workdir, defs, instance, outcomes, evaluations(outcomes))


@pytest.fixture(scope="module", autouse=True)
def no_fsync() -> Iterator[None]:
    """Temporary files need no durability: skip the store's fsync (4x faster generation)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        yield


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory: pytest.TempPathFactory) -> LocalObjectStore:
    root = tmp_path_factory.mktemp("clean") / "landing"
    store = LocalObjectStore(root)
    generate_landing(store.put, config(), delete=store.delete)
    return store


@pytest.fixture(scope="module")
def clean(clean_store: LocalObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with dg.DagsterInstance.ephemeral() as instance:
        landing = Landing(Path(clean_store.url))
        yield start_run(
            landing,
            tmp_path_factory.mktemp("clean_run"),
            instance,
            [day(i) for i in range(CLEAN_DAYS)],
        )


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("faulted")
    landing = Landing(root / "landing", hold_redelivery_of=[FAULT_DAYS["billing_redelivery"]])
    faults = [Fault(kind, d) for kind, d in FAULT_DAYS.items()]
    generate_landing(landing.put, config(faults), delete=landing.delete)
    assert landing.held, "the re-delivery of the redelivered day was held back"
    rejected = [FAULT_DAYS[k] for k in BILLING_FIXES]
    before = {d.isoformat(): tree_hashes(landing.store, billing_day_prefix(d)) for d in rejected}
    with dg.DagsterInstance.ephemeral() as instance:
        run = start_run(landing, root / "run", instance, [day(i) for i in range(DAYS)])
        run.materialized = snapshot_materialized(instance)
        after = {d.isoformat(): tree_hashes(landing.store, billing_day_prefix(d)) for d in rejected}
        run.billing_files = {"before": before, "after": after}  # type: ignore[dict-item]
        for kind in ("malformed_burst",):
            key = FAULT_DAYS[kind].isoformat()
            run.quarantine[key] = run.warehouse().read_tables(
                ParquetWarehouse.partition_prefix(["raw_clickstream"], key)
            )["quarantine"]  # type: ignore[index]
        late_day = FAULT_DAYS["late_events"] + timedelta(days=2)
        run.quarantine[late_day.isoformat()] = run.warehouse().read_tables(
            ParquetWarehouse.partition_prefix(["raw_clickstream"], late_day.isoformat())
        )["quarantine"]  # type: ignore[index]
        for d in (FAULT_DAYS["billing_no_success"], FAULT_DAYS["missing_billing"]):
            run.freshness[d.isoformat()] = evaluate_freshness(run, at(d + timedelta(days=1), 7))
        yield run


@pytest.fixture(scope="module")
def fixed(faulted: Run, clean_store: LocalObjectStore) -> Run:
    """Every fault fixed upstream, then the affected days run again, oldest first."""
    faulted.landing.release()
    for kind in BILLING_FIXES:
        if kind != "billing_redelivery":
            faulted.landing.redeliver_billing(clean_store, FAULT_DAYS[kind])
    rerun = {FAULT_DAYS[k] for k in BILLING_FIXES}
    for kind in CLICKSTREAM_FIXES:
        faulted.landing.redeliver_clickstream(clean_store, FAULT_DAYS[kind])
        rerun |= {FAULT_DAYS[kind] - timedelta(days=1), FAULT_DAYS[kind]}
    outcomes = run_days(faulted.defs, faulted.instance, SETTINGS, sorted(rerun))
    return Run(
        faulted.landing,
        faulted.workdir,
        faulted.defs,
        faulted.instance,
        outcomes,
        evaluations(outcomes),
        materialized=snapshot_materialized(faulted.instance),
    )


# a clean history ----------------------------------------------------------------------------


def test_a_clean_history_passes_every_check(clean: Run) -> None:
    failed = {k: e.metadata for k, e in clean.checks.items() if not e.passed}
    assert failed == {}
    assert all(o.success for o in clean.outcomes), [o.step for o in clean.outcomes if not o.success]
    per_day = {
        a: {c for (a2, c, p) in clean.checks if a2 == a and p == day(5).isoformat()} for a in INGEST
    }
    assert per_day["raw_billing"] >= {"schema", "customer_id_unique", "volume_vs_trailing_median"}
    assert per_day["raw_clickstream"] >= {
        "row_accounting",
        "quarantine_share",
        "volume_vs_trailing_median",
    }
    assert per_day["features"] >= {"active_customers_exactly", "schema_matches_serving_model"}
    # The volume checks really compared: from the sixth weekday on there is a baseline (five
    # earlier weekdays); the history-based share checks too.
    volume = clean.check("raw_clickstream", "volume_vs_trailing_median", day(7))
    assert value(volume, "events_history_days") == 5 and 0.7 < value(volume, "events_ratio") < 1.5  # type: ignore[operator]
    share = clean.check("raw_clickstream", "quarantine_share", day(7))
    assert value(share, "quarantine_share_history_days") == 7
    assert 0.01 < value(share, "quarantine_share_baseline") < 0.03  # type: ignore[operator]
    labels = [k for k in clean.checks if k[0] == "labels"]
    assert len(labels) == CLEAN_DAYS - SETTINGS.label_maturity_days


def test_every_check_is_evaluated_per_partition(clean: Run) -> None:
    partitions = {p for (a, c, p) in clean.checks if (a, c) == ("raw_billing", "schema")}
    assert partitions == {day(i).isoformat() for i in range(CLEAN_DAYS)}


# billing faults -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "check", "reason", "missing"),
    [
        ("schema_renamed_column", "schema", "missing_columns", ["mrr"]),
        ("schema_missing_column", "schema", "missing_columns", ["seats"]),
    ],
)
def test_a_schema_change_rejects_the_day_and_blocks_its_features(
    faulted: Run, kind: str, check: str, reason: str, missing: list[str]
) -> None:
    d = FAULT_DAYS[kind]
    schema = faulted.check("raw_billing", check, d)
    assert not schema.passed and schema.severity == dg.AssetCheckSeverity.ERROR and schema.blocking
    assert value(schema, "reason") == reason and value(schema, "missing_columns") == missing
    if kind == "schema_renamed_column":
        assert "monthly_revenue" in value(schema, "ignored_columns")  # type: ignore[operator]
    step = ingest(faulted.outcomes, d)
    assert "raw_billing" not in step.materialized and "features" not in step.materialized
    assert d.isoformat() not in faulted.materialized["features"]
    # The clickstream of the day is independent of billing and still materializes.
    assert {"raw_clickstream", "sessions"} <= set(step.materialized)


def test_a_new_unknown_column_is_ignored_and_listed(faulted: Run) -> None:
    d = FAULT_DAYS["schema_new_column"]
    assert faulted.failed(d) == set()
    assert "loyalty_tier" in value(faulted.check("raw_billing", "schema", d), "ignored_columns")  # type: ignore[operator]
    assert set(INGEST) <= set(ingest(faulted.outcomes, d).materialized)


def test_a_first_delivery_with_errors_is_caught_and_not_materialized(faulted: Run) -> None:
    d = FAULT_DAYS["billing_redelivery"]
    unique = faulted.check("raw_billing", "customer_id_unique", d)
    assert not unique.passed and unique.blocking and value(unique, "duplicate_customer_id") == 6
    ranges = faulted.check("raw_billing", "values_in_range", d)
    assert not ranges.passed and ranges.severity == dg.AssetCheckSeverity.WARN
    assert value(ranges, "negative_mrr") == 5 and "-" in str(value(ranges, "negative_mrr_sample"))
    assert d.isoformat() not in faulted.materialized["raw_billing"]
    assert d.isoformat() not in faulted.materialized["features"]
    # The next day is compared with the day before the bad one, and reports the gap.
    nxt = d + timedelta(days=1)
    assert (
        value(faulted.check("raw_billing", "no_account_disappears", nxt), "previous_extract")
        == (d - timedelta(days=1)).isoformat()
    )
    assert not faulted.check("raw_billing", "previous_day_landed", nxt).passed


@pytest.mark.parametrize("kind", ["billing_no_success", "missing_billing"])
def test_a_day_that_never_lands_is_flagged_by_freshness_and_blocks_its_features(
    faulted: Run, kind: str
) -> None:
    d = FAULT_DAYS[kind]
    step = ingest(faulted.outcomes, d)
    assert not step.success and "raw_billing" not in step.materialized
    assert "features" not in step.materialized
    assert d.isoformat() not in faulted.materialized["raw_billing"]
    fresh = faulted.freshness[d.isoformat()]["raw_billing"]
    assert not fresh.passed and fresh.severity == dg.AssetCheckSeverity.ERROR
    assert d.isoformat() in (fresh.description or "")
    # Clickstream of that day is on time.
    assert faulted.freshness[d.isoformat()]["raw_clickstream"].passed


def test_after_two_missing_days_the_next_extract_reports_them(faulted: Run) -> None:
    after = FAULT_DAYS["missing_billing"] + timedelta(days=1)
    gap = faulted.check("raw_billing", "previous_day_landed", after)
    assert not gap.passed and value(gap, "days_missing_before") == 2
    assert faulted.check("raw_billing", "no_account_disappears", after).passed
    assert (
        value(faulted.check("raw_billing", "no_account_disappears", after), "previous_extract")
        == (FAULT_DAYS["billing_no_success"] - timedelta(days=1)).isoformat()
    )


def test_rejected_days_leave_their_landing_files_untouched(faulted: Run) -> None:
    before, after = faulted.billing_files["before"], faulted.billing_files["after"]
    assert before == after
    renamed = before[FAULT_DAYS["schema_renamed_column"].isoformat()]
    assert any(k.endswith("_SUCCESS") for k in renamed) and len(renamed) >= 2


# clickstream faults -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["clickstream_outage", "volume_drop"])
def test_a_volume_drop_is_blocking(faulted: Run, kind: str) -> None:
    d = FAULT_DAYS[kind]
    volume = faulted.check("raw_clickstream", "volume_vs_trailing_median", d)
    assert not volume.passed and volume.blocking
    assert value(volume, "customers_history_days") >= 2  # type: ignore[operator]
    assert value(volume, "customers_ratio") < 0.7  # type: ignore[operator]
    if kind == "clickstream_outage":
        assert value(volume, "events_ratio") < 0.2  # type: ignore[operator]
    else:
        assert 0.3 < value(volume, "customers_ratio") < 0.7  # type: ignore[operator]
    clickstream_failures = {c for a, c in faulted.failed(d) if a == "raw_clickstream"}
    # Half the customers silent also doubles the share of anonymous records (theirs are
    # still there): that check sees the loss of customer ids too.
    also = {"anonymous_share"} if kind == "volume_drop" else set()
    assert clickstream_failures == {"volume_vs_trailing_median", *also}
    step = ingest(faulted.outcomes, d)
    assert "raw_clickstream" in step.materialized  # stored, with its accounting...
    assert "sessions" not in step.materialized and "features" not in step.materialized


def test_a_malformed_burst_is_quarantined_counted_and_blocking(faulted: Run) -> None:
    d = FAULT_DAYS["malformed_burst"]
    share = faulted.check("raw_clickstream", "quarantine_share", d)
    assert not share.passed and share.blocking and value(share, "quarantined_invalid_json") >= 3000  # type: ignore[operator]
    assert faulted.check("raw_clickstream", "row_accounting", d).passed
    step = ingest(faulted.outcomes, d)
    assert "sessions" not in step.materialized and "features" not in step.materialized
    # Nothing lost: every line of every object the day read is counted, and every bad line
    # is stored with its reason and its exact bytes.
    start, end = clickstream_window(d, SETTINGS.lateness)
    store = faulted.landing.store
    keys = [
        o.key
        for prefix in (clickstream_day_prefix(d), clickstream_day_prefix(d + timedelta(days=1)))
        for o in store.list(prefix)
        if start <= (parse_clickstream_arrival(o.key) or start - timedelta(1)) < end
    ]
    lines = 0
    for key in keys:
        text = gzip.decompress(store.get(key))
        lines += text.count(b"\n") + (0 if text.endswith(b"\n") else 1)
    accounting = step.metadata["raw_clickstream"]
    assert accounting["lines_read"] == lines
    quarantine = faulted.quarantine[d.isoformat()]
    invalid = quarantine.loc[quarantine["reason"] == "invalid_json"]
    assert len(invalid) == accounting["quarantined_invalid_json"] >= 3000
    for raw in invalid["raw_line"].head(50):
        with pytest.raises(ValueError):
            json.loads(raw)


def test_late_events_are_kept_counted_and_warned_not_blocking(faulted: Run) -> None:
    d = FAULT_DAYS["late_events"]
    arrival_day = d + timedelta(days=2)
    late = faulted.check("raw_clickstream", "late_events", arrival_day)
    assert not late.passed and late.severity == dg.AssetCheckSeverity.WARN
    assert value(late, "late") >= 300  # type: ignore[operator]
    assert d.isoformat() in str(value(late, "late_by_event_date"))
    quarantine = faulted.quarantine[arrival_day.isoformat()]
    late_rows = quarantine.loc[quarantine["reason"] == "late"]
    assert (late_rows["event_time"].dt.date == d).sum() >= 300
    assert late_rows["raw_line"].map(len).gt(0).all()
    # Not blocking: the arrival day and the event day are complete downstream.
    assert set(INGEST) <= set(ingest(faulted.outcomes, arrival_day).materialized)
    assert set(INGEST) <= set(ingest(faulted.outcomes, d).materialized)
    assert faulted.check("raw_clickstream", "quarantine_share", arrival_day).passed


# the fix ------------------------------------------------------------------------------------


def test_after_the_fix_the_same_partitions_materialize_and_pass(fixed: Run) -> None:
    for kind, d in FAULT_DAYS.items():
        if kind == "schema_new_column":
            continue
        step = ingest(fixed.outcomes, d)
        assert step.success and set(step.materialized) == set(INGEST), (kind, step.materialized)
        failed = fixed.failed(d)
        assert failed == set(), (kind, failed)
        assert all(d.isoformat() in fixed.materialized[a] for a in INGEST)


def test_a_fixed_billing_day_equals_the_clean_delivery(
    fixed: Run, clean_store: LocalObjectStore
) -> None:
    for kind in BILLING_FIXES:
        d = FAULT_DAYS[kind]
        prefix = billing_day_prefix(d)
        parts = [
            (o.key, clean_store.get(o.key)) for o in clean_store.list(prefix) if "part-" in o.key
        ]
        stored = fixed.warehouse().read_tables(
            ParquetWarehouse.partition_prefix(["raw_billing"], d.isoformat())
        )
        assert isinstance(stored, pd.DataFrame)
        pd.testing.assert_frame_equal(stored, parse_billing_day(parts, d), check_like=True)


def test_late_copies_stay_late_after_the_event_day_is_delivered_again(fixed: Run) -> None:
    """The late object still arrived late: its lines stay quarantined by their arrival day,
    while the event day, delivered again, now has its events (and passes)."""
    d = FAULT_DAYS["late_events"]
    arrival_day = (d + timedelta(days=2)).isoformat()
    quarantine = fixed.warehouse().read_tables(
        ParquetWarehouse.partition_prefix(["raw_clickstream"], arrival_day)
    )["quarantine"]  # type: ignore[index]
    assert (quarantine["reason"] == "late").sum() >= 300
    assert ingest(fixed.outcomes, d).metadata["raw_clickstream"]["valid"] > 0


# the feature contract with the serving model --------------------------------------------


def test_features_that_differ_from_the_serving_models_fail_loudly(clean: Run) -> None:
    """A serving model trained on another feature list fails the day's schema check (ERROR,
    not blocking: a deliberate feature change must be able to backfill features and train a
    matching model); the same day passes again once the serving model matches."""
    from churn_assets.core.daily_model import ModelArtifact
    from churn_assets.core.features import FEATURE_COLUMNS
    from churn_assets.runner import Step, run_step

    store = clean.defs.resources["model_store"]
    d = day(CLEAN_DAYS - 1)
    trained = d - timedelta(days=1)
    card = {"promoted": True, "threshold": 0.5, "features": list(FEATURE_COLUMNS)[:-1]}
    store.save(ModelArtifact(trained.isoformat(), "old-feature-set", b"{}", card))  # type: ignore[union-attr]
    try:
        flagged = run_step(clean.defs, clean.instance, Step(("features",), d), {})
        schema = evaluations([flagged])[("features", "schema_matches_serving_model", d.isoformat())]
        assert not schema.passed and not schema.blocking
        assert schema.severity == dg.AssetCheckSeverity.ERROR
        assert value(schema, "serving_model") == "old-feature-set"
        assert value(schema, "differences")["unexpected"] == ["reactivated_before"]  # type: ignore[index]
        assert flagged.materialized == ["features"]
    finally:
        store.store.delete_prefix(f"models/dt={trained.isoformat()}/")  # type: ignore[union-attr]
    again = run_step(clean.defs, clean.instance, Step(("features",), d), {})
    assert again.success and again.materialized == ["features"] and not again.failed_checks
