"""Freshness: a day that never arrives must be noticed, even after an old day is backfilled.

Two mechanisms, because they answer different questions:

- **Raw layer: partition-aware freshness checks**, evaluated by a sensor. Each deadline is
  a cron tick (billing 06:00 UTC, clickstream 03:00 UTC by default); once it has passed, the
  check asks for one specific partition, the day that ended before the tick ("yesterday"),
  and fails unless *that* partition was materialized. A backfill of an older day adds a
  materialization of another partition, so it cannot make the missing day look fresh (a
  test proves it). A billing day that was rejected or failed a blocking check is never
  materialized, so it stays overdue until it is delivered again. The sensor evaluates the
  checks itself and reports each verdict as a runless check evaluation, only when it
  changes (a new day due, or the due day landed): an outage is flagged once per day due,
  and opening the UI on an instance whose landing stopped long ago launches no run.
- **What people read: a FreshnessPolicy** on ``model`` and ``scores`` (Dagster's current
  API, evaluated by the freshness daemon, state shown in the UI). It looks at the latest
  materialization of any partition: it says "scores were refreshed this morning", not
  "this particular day exists", which is what the raw checks are for.

Deadlines are configuration (``FreshnessSettings``, or ``CHURN_*_DEADLINE_CRON`` in the
environment, read when the code location loads). Both use UTC unless told otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg
from croniter import croniter

ENV_BILLING_DEADLINE = "CHURN_BILLING_DEADLINE_CRON"
ENV_CLICKSTREAM_DEADLINE = "CHURN_CLICKSTREAM_DEADLINE_CRON"
ENV_SERVING_DEADLINE = "CHURN_SERVING_DEADLINE_CRON"
FRESHNESS_SENSOR_NAME = "raw_freshness_sensor"
SERVED_ASSETS = ("model", "scores")


@dataclass(frozen=True)
class FreshnessSettings:
    """When each day is due.

    ``billing_deadline_cron``: after each tick, the day before the tick's day must have a
    materialized ``raw_billing`` partition (the CRM extract lands at about 02:30-03:30 UTC).
    ``clickstream_deadline_cron``: the same for ``raw_clickstream`` (partition D reads
    objects arriving until D+1 02:00 UTC with the default lateness window).
    ``serving_deadline_cron`` and ``serving_window``: ``model`` and ``scores`` must have been
    materialized within ``serving_window`` before each tick (every morning by 08:00).
    """

    billing_deadline_cron: str = "0 6 * * *"
    clickstream_deadline_cron: str = "0 3 * * *"
    serving_deadline_cron: str = "0 8 * * *"
    serving_window: timedelta = timedelta(hours=24)
    timezone: str = "UTC"
    sensor_interval_seconds: int = 600
    sensor_running_by_default: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FreshnessSettings:
        """Defaults, with any deadline overridden by its environment variable."""
        defaults = cls()
        return cls(
            billing_deadline_cron=env.get(ENV_BILLING_DEADLINE, defaults.billing_deadline_cron),
            clickstream_deadline_cron=env.get(
                ENV_CLICKSTREAM_DEADLINE, defaults.clickstream_deadline_cron
            ),
            serving_deadline_cron=env.get(ENV_SERVING_DEADLINE, defaults.serving_deadline_cron),
        )


def build_raw_freshness_checks(
    settings: FreshnessSettings | None = None,
) -> list[dg.AssetChecksDefinition]:
    """``freshness_check`` on raw_billing and raw_clickstream, each with its own deadline.

    ERROR severity, not blocking: the check is about a partition that does not exist yet,
    so there is nothing downstream of it to hold back.
    """
    settings = settings or FreshnessSettings()
    checks: list[dg.AssetChecksDefinition] = []
    for asset, cron in (
        ("raw_billing", settings.billing_deadline_cron),
        ("raw_clickstream", settings.clickstream_deadline_cron),
    ):
        checks.extend(
            dg.build_time_partition_freshness_checks(
                assets=[dg.AssetKey(asset)],
                deadline_cron=cron,
                timezone=settings.timezone,
                severity=dg.AssetCheckSeverity.ERROR,
            )
        )
    return checks


def due_partition(deadline_cron: str, tz: str, now: datetime) -> tuple[datetime, date]:
    """The latest deadline tick at or before ``now`` and the daily partition due by it (the
    day that ended before the tick's day), as ``build_time_partition_freshness_checks`` has it.
    """
    local_now = now.astimezone(ZoneInfo(tz))
    tick = croniter(deadline_cron, local_now + timedelta(seconds=1)).get_prev(datetime)
    return tick, tick.astimezone(timezone.utc).date() - timedelta(days=1)


def evaluate_partition_freshness(
    instance: dg.DagsterInstance,
    check_key: dg.AssetCheckKey,
    deadline_cron: str,
    tz: str,
    now: datetime,
) -> dg.AssetCheckEvaluation:
    """Whether the partition due by the latest deadline is materialized, with the evidence."""
    deadline, due = due_partition(deadline_cron, tz, now)
    asset = check_key.asset_key
    passed = bool(
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[due.isoformat()]), limit=1
        ).records
    )
    newest = max(instance.get_materialized_partitions(asset), default=None)
    metadata: dict[str, dg.MetadataValue] = {
        "due_partition": dg.MetadataValue.text(due.isoformat()),
        "deadline": dg.MetadataValue.timestamp(deadline),
        "deadline_cron": dg.MetadataValue.text(deadline_cron),
        "newest_partition": dg.MetadataValue.text(newest or "none"),
    }
    if not passed:
        metadata["overdue_hours"] = dg.MetadataValue.float(
            round((now - deadline).total_seconds() / 3600, 2)
        )
    verdict = "has landed" if passed else f"is overdue (newest partition: {newest or 'none'})"
    return dg.AssetCheckEvaluation(
        asset_key=asset,
        check_name=check_key.name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{due.isoformat()}, due by {deadline.isoformat()}, {verdict}.",
        metadata=metadata,
    )


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def build_freshness_sensor(
    checks: Sequence[dg.AssetChecksDefinition],
    settings: FreshnessSettings | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> dg.SensorDefinition:
    """Evaluates the raw freshness checks in the sensor and reports changed verdicts.

    Launching a run per evaluation (``build_sensor_for_freshness_checks``) would fill the run
    queue of an idle deployment; the verdict only needs the instance's records. The cursor
    holds, per check, the due partition and verdict last reported.
    """
    settings = settings or FreshnessSettings()
    deadlines = {
        "raw_billing": settings.billing_deadline_cron,
        "raw_clickstream": settings.clickstream_deadline_cron,
    }
    check_keys = sorted(
        (key for checks_def in checks for key in checks_def.check_keys),
        key=lambda key: key.asset_key.to_user_string(),
    )

    @dg.sensor(
        name=FRESHNESS_SENSOR_NAME,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING
        if settings.sensor_running_by_default
        else dg.DefaultSensorStatus.STOPPED,
        description="Reports the raw layer's partition freshness checks when a verdict "
        "changes (a new day due, or the due day landed); launches no run.",
    )
    def raw_freshness_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        reported: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        now = clock()
        events = []
        for key in check_keys:
            asset = key.asset_key.to_user_string()
            evaluation = evaluate_partition_freshness(
                context.instance, key, deadlines[asset], settings.timezone, now
            )
            verdict = f"{evaluation.metadata['due_partition'].value}:{evaluation.passed}"
            if reported.get(asset) != verdict:
                reported[asset] = verdict
                events.append(evaluation)
        return dg.SensorResult(asset_events=events, cursor=json.dumps(reported, sort_keys=True))

    return raw_freshness_sensor


def serving_freshness_policy(settings: FreshnessSettings | None = None) -> dg.FreshnessPolicy:
    settings = settings or FreshnessSettings()
    return dg.FreshnessPolicy.cron(
        deadline_cron=settings.serving_deadline_cron,
        lower_bound_delta=settings.serving_window,
        timezone=settings.timezone,
    )


def with_freshness_policies(
    assets: Sequence[dg.AssetsDefinition], settings: FreshnessSettings | None = None
) -> list[dg.AssetsDefinition]:
    """``assets`` with the serving freshness policy on model and scores, in one place."""
    policy = serving_freshness_policy(settings)
    served = {dg.AssetKey(name) for name in SERVED_ASSETS}

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        return dg.apply_freshness_policy(spec, policy) if spec.key in served else spec

    return [a.map_asset_specs(apply) if served & set(a.keys) else a for a in assets]


@dataclass(frozen=True)
class FreshnessDefinitions:
    checks: list[dg.AssetChecksDefinition]
    sensor: dg.SensorDefinition


def build_freshness(
    settings: FreshnessSettings | None = None, clock: Callable[[], datetime] = utc_now
) -> FreshnessDefinitions:
    """The raw freshness checks and the sensor that evaluates them."""
    checks = build_raw_freshness_checks(settings)
    return FreshnessDefinitions(
        checks=checks, sensor=build_freshness_sensor(checks, settings, clock)
    )
