"""Partition-aware freshness of the raw layer, its sensor, and the serving freshness policy.

The raw assets here are stand-ins with the real names and the real partitions definition
(the freshness checks only look at an asset's partitions and its materialization records),
so each materialization is a real run on a real instance, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from churn_assets.freshness import (
    ENV_BILLING_DEADLINE,
    FRESHNESS_SENSOR_NAME,
    FreshnessSettings,
    build_freshness,
    serving_freshness_policy,
    with_freshness_policies,
)
from churn_assets.partitions import daily_from

START = date(2026, 3, 1)
DAILY = daily_from(START)


@dg.asset(name="raw_billing", partitions_def=DAILY)
def raw_billing() -> int:
    return 1


@dg.asset(name="raw_clickstream", partitions_def=DAILY)
def raw_clickstream() -> int:
    return 1


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


def land(
    instance: dg.DagsterInstance,
    asset: dg.AssetsDefinition,
    *days: date,
    when: datetime | None = None,
) -> None:
    """Record ``days`` of ``asset`` as materialized, each at ``when`` or else at D+1 02:30.

    A runless materialization event: the same record a run writes, without the run's cost.
    """
    for day in days:
        with freeze_time(when or at(day + timedelta(days=1), 2) + timedelta(minutes=30)):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset.key, partition=day.isoformat())
            )


def backfill(
    instance: dg.DagsterInstance, asset: dg.AssetsDefinition, day: date, when: datetime
) -> None:
    """Re-materialize an old day in a real run, as an operator's backfill would."""
    with freeze_time(when):
        run = dg.materialize(
            [asset],
            partition_key=day.isoformat(),
            instance=instance,
            resources={"io_manager": dg.mem_io_manager},
        )
    assert run.success


def evaluate(
    instance: dg.DagsterInstance, now: datetime, settings: FreshnessSettings | None = None
) -> dict[str, dg.AssetCheckEvaluation]:
    """Run both freshness checks as of ``now``; {asset: evaluation}."""
    freshness = build_freshness(settings)
    with freeze_time(now):
        run = dg.materialize(
            [raw_billing, raw_clickstream, *freshness.checks],
            selection=dg.AssetSelection.checks(*freshness.checks),
            instance=instance,
            resources={"io_manager": dg.mem_io_manager},
        )
    return {e.asset_key.to_user_string(): e for e in run.get_asset_check_evaluations()}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def test_yesterdays_partition_is_due_at_each_deadline(instance: dg.DagsterInstance) -> None:
    land(instance, raw_billing, *days(START, date(2026, 3, 9)))
    land(instance, raw_clickstream, *days(START, date(2026, 3, 10)))
    # 03-11 02:00: no deadline of the day has passed yet, so 03-09 is the day due for both.
    early = evaluate(instance, at(date(2026, 3, 11), 2))
    assert early["raw_billing"].passed and early["raw_clickstream"].passed
    # 04:00: clickstream's 03:00 deadline has passed (03-10 is due and there), billing's not.
    mid = evaluate(instance, at(date(2026, 3, 11), 4))
    assert mid["raw_billing"].passed and mid["raw_clickstream"].passed
    # 07:00: billing's 06:00 deadline has passed and 03-10 never landed.
    late = evaluate(instance, at(date(2026, 3, 11), 7))
    assert not late["raw_billing"].passed
    assert late["raw_billing"].severity == dg.AssetCheckSeverity.ERROR
    assert "2026-03-10" in (late["raw_billing"].description or "")
    assert late["raw_clickstream"].passed


def test_a_backfill_of_an_old_day_does_not_make_a_missing_day_fresh(
    instance: dg.DagsterInstance,
) -> None:
    land(instance, raw_billing, *days(START, date(2026, 3, 9)))
    land(instance, raw_clickstream, *days(START, date(2026, 3, 10)))
    assert not evaluate(instance, at(date(2026, 3, 11), 7))["raw_billing"].passed
    # An operator backfills (re-materializes) 03-05 at 08:00: the newest materialization of
    # the asset is now minutes old, yet 03-10 is still missing and the check still fails.
    backfill(instance, raw_billing, date(2026, 3, 5), at(date(2026, 3, 11), 8))
    after_backfill = evaluate(instance, at(date(2026, 3, 11), 9))["raw_billing"]
    assert not after_backfill.passed
    assert "2026-03-10" in (after_backfill.description or "")
    # The day lands late: now it is fresh.
    land(instance, raw_billing, date(2026, 3, 10), when=at(date(2026, 3, 11), 9))
    assert evaluate(instance, at(date(2026, 3, 11), 10))["raw_billing"].passed


class SensorTicks:
    """The freshness sensor with an injected clock, ticked as the daemon ticks it."""

    def __init__(self, instance: dg.DagsterInstance, settings: FreshnessSettings | None = None):
        self.now = at(START, 0)
        self.freshness = build_freshness(settings, clock=lambda: self.now)
        self.defs = dg.Definitions(
            assets=[raw_billing, raw_clickstream],
            asset_checks=self.freshness.checks,
            sensors=[self.freshness.sensor],
            resources={"io_manager": dg.mem_io_manager},
        )
        self.sensor = self.defs.get_sensor_def(FRESHNESS_SENSOR_NAME)
        self.instance = instance
        self.cursor: str | None = None

    def tick(self, now: datetime) -> dict[str, dg.AssetCheckEvaluation]:
        """The evaluations reported by one tick; asserts that it requested no run."""
        self.now = now
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=self.defs
        )
        result = self.sensor(context)
        assert isinstance(result, dg.SensorResult)
        assert not result.run_requests
        self.cursor = result.cursor
        return {e.asset_key.to_user_string(): e for e in result.asset_events}  # type: ignore[union-attr]


def test_the_sensor_reports_each_verdict_once_and_launches_no_run(
    instance: dg.DagsterInstance,
) -> None:
    ticks = SensorTicks(instance)
    assert ticks.sensor.default_status == dg.DefaultSensorStatus.RUNNING
    land(instance, raw_billing, *days(START, date(2026, 3, 9)))
    land(instance, raw_clickstream, *days(START, date(2026, 3, 10)))

    first = ticks.tick(at(date(2026, 3, 11), 7))
    assert not first["raw_billing"].passed and first["raw_clickstream"].passed
    assert first["raw_billing"].metadata["due_partition"].value == "2026-03-10"
    assert first["raw_billing"].metadata["newest_partition"].value == "2026-03-09"
    assert first["raw_billing"].check_name == "freshness_check"
    # the same verdicts as Dagster's own check, executed in a run at the same time
    executed = evaluate(instance, at(date(2026, 3, 11), 7))
    assert {a: e.passed for a, e in first.items()} == {a: e.passed for a, e in executed.items()}

    assert ticks.tick(at(date(2026, 3, 11), 7) + timedelta(minutes=10)) == {}  # flagged once
    backfill(instance, raw_billing, date(2026, 3, 5), at(date(2026, 3, 11), 8))
    assert ticks.tick(at(date(2026, 3, 11), 9)) == {}  # an old day does not make 03-10 fresh
    land(instance, raw_billing, date(2026, 3, 10), when=at(date(2026, 3, 11), 9))
    landed = ticks.tick(at(date(2026, 3, 11), 10))
    assert set(landed) == {"raw_billing"} and landed["raw_billing"].passed
    # the next morning after 03:00 clickstream's 03-11 is due and missing: flagged
    morning = ticks.tick(at(date(2026, 3, 12), 4))
    assert set(morning) == {"raw_clickstream"} and not morning["raw_clickstream"].passed
    assert ticks.tick(at(date(2026, 3, 12), 5)) == {}


def test_a_landing_that_stopped_months_ago_is_flagged_once_per_day_due(
    instance: dg.DagsterInstance,
) -> None:
    """The demo's instance opened in the UI months after its history ends: one failing
    verdict per raw asset, no run, nothing more until the next day is due."""
    land(instance, raw_billing, *days(START, date(2026, 3, 9)))
    land(instance, raw_clickstream, *days(START, date(2026, 3, 9)))
    ticks = SensorTicks(instance)
    now = at(date(2026, 12, 7), 12)
    flagged = ticks.tick(now)
    assert {a: e.passed for a, e in flagged.items()} == {
        "raw_billing": False,
        "raw_clickstream": False,
    }
    assert flagged["raw_clickstream"].metadata["due_partition"].value == "2026-12-06"
    for minutes in range(10, 120, 10):
        assert ticks.tick(now + timedelta(minutes=minutes)) == {}
    assert set(ticks.tick(at(date(2026, 12, 8), 7))) == {"raw_billing", "raw_clickstream"}


def test_deadlines_are_configurable(instance: dg.DagsterInstance) -> None:
    settings = FreshnessSettings.from_env({ENV_BILLING_DEADLINE: "0 9 * * *"})
    assert settings.billing_deadline_cron == "0 9 * * *"
    assert settings.clickstream_deadline_cron == FreshnessSettings().clickstream_deadline_cron
    land(instance, raw_billing, *days(START, date(2026, 3, 9)))
    land(instance, raw_clickstream, *days(START, date(2026, 3, 10)))
    # With a 09:00 deadline, 03-10's billing is not yet overdue at 07:00.
    assert evaluate(instance, at(date(2026, 3, 11), 7), settings)["raw_billing"].passed
    assert not evaluate(instance, at(date(2026, 3, 11), 10), settings)["raw_billing"].passed


def test_serving_assets_get_the_cron_freshness_policy() -> None:
    @dg.asset(name="scores")
    def scores() -> int:
        return 1

    @dg.asset(name="features")
    def features() -> int:
        return 1

    mapped = {a.key.to_user_string(): a for a in with_freshness_policies([scores, features])}
    policy = mapped["scores"].specs_by_key[dg.AssetKey("scores")].freshness_policy
    assert policy == serving_freshness_policy()
    assert isinstance(policy, dg.FreshnessPolicy)
    assert policy.deadline_cron == "0 8 * * *" and policy.lower_bound_delta == timedelta(hours=24)  # type: ignore[attr-defined]
    assert mapped["features"].specs_by_key[dg.AssetKey("features")].freshness_policy is None


def test_the_project_definitions_carry_the_freshness_checks_sensor_and_policy(
    tmp_path: Path,
) -> None:
    from churn_assets.contracts import local_resources
    from churn_assets.definitions import build_definitions

    resources = local_resources(str(tmp_path / "l"), str(tmp_path / "w"), str(tmp_path / "m"))
    defs = build_definitions(
        resources=resources, freshness=FreshnessSettings(clickstream_deadline_cron="30 2 * * *")
    )
    graph = defs.resolve_asset_graph()
    keys = {k for k in graph.asset_check_keys if k.name == "freshness_check"}
    assert {k.asset_key.to_user_string() for k in keys} == {"raw_billing", "raw_clickstream"}
    assert defs.get_sensor_def(FRESHNESS_SENSOR_NAME).name == FRESHNESS_SENSOR_NAME
    for name in ("model", "scores"):
        assert graph.get(dg.AssetKey(name)).freshness_policy == serving_freshness_policy()
    assert graph.get(dg.AssetKey("features")).freshness_policy is None
    params = {
        c.key.asset_key.to_user_string(): c.metadata["dagster/freshness_params"].value
        for checks in defs.asset_checks or []
        for c in checks.check_specs
    }
    assert params["raw_clickstream"]["deadline_cron"] == "30 2 * * *"  # type: ignore[index]
    assert params["raw_billing"]["deadline_cron"] == "0 6 * * *"  # type: ignore[index]
