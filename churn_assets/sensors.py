"""Landing sensors: new billing deliveries and closed clickstream windows request raw runs.

Why not a ``LastModified`` / ``since_key`` cursor (``dagster_aws.s3.sensor.get_s3_keys``):
S3 timestamps have one-second resolution, so an object written in the same second as the
cursor is either skipped or read twice, and a re-delivery that overwrites a key in place
does not move a key-based cursor at all. Instead each sensor keeps, per partition day, a
**fingerprint of what it last requested** (the delivery's ETags and marker time, or the set
of clickstream objects in the day's window) and requests the day again exactly when that
fingerprint changes. The cursor only holds days inside the re-processing horizon, and each
tick lists only the date prefixes of those days, so its work is bounded whatever the bucket
holds. Run keys carry the fingerprint: a repeated request of the same content is a no-op
for the daemon even if a cursor is lost, and a re-delivery is a new run.

The landing's own clock (its newest delivery), not the wall clock, bounds what they do: no
day older than the horizon before the newest delivery is ever requested, even by a fresh
cursor, and a day with no objects at all is requested only when a later object shows that
its window closed (an outage between deliveries: one run, whose volume check flags it). Days
after the newest delivery are an outage the freshness checks flag; they are never requested
one by one. The clock closes the window of the newest delivery only while that window
ended less than the horizon ago: a landing zone that stopped long ago (the demo's history,
months before today) starts nothing until a new file lands.

Both sensors go through the ``LandingZone`` resource, so they work on a local directory as
well as on S3; time comes from an injectable clock so tests (and replays) control it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from churn_assets.core.landing_layout import (
    DELIVERY_METADATA,
    WINDOW_METADATA,
    clickstream_day_prefix,
    clickstream_window,
    fingerprint,
    parse_clickstream_arrival,
    window_fingerprint,
)
from churn_assets.resources.landing import LandingZone
from churn_assets.settings import PipelineSettings

Clock = Callable[[], datetime]
CURSOR_VERSION = 1
BILLING_SENSOR = "billing_landing_sensor"
CLICKSTREAM_SENSOR = "clickstream_landing_sensor"
MAX_CLOCK_SKEW = timedelta(days=1)
"""How far a producer's clock (the arrival time in an object's name) may run ahead of ours."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class LandingSensorSettings:
    """How far back a change still re-requests a day, and how often the sensors tick."""

    reprocessing_horizon_days: int = 14
    minimum_interval_seconds: int = 30
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING

    def __post_init__(self) -> None:
        if self.reprocessing_horizon_days < 1:
            raise ValueError("reprocessing_horizon_days must be at least one day")


@dataclass
class DayCursor:
    """Per-day fingerprints of what was requested, bounded below by ``floor``.

    ``floor`` is the earliest day that can still change (the newest day seen minus the
    horizon); days before it are neither listed nor kept. ``first`` (clickstream only) is the
    first day that ever had data: a closed window after it with no objects is requested
    (an empty day is visible, not silently absent), one before it is not.
    """

    floor: date | None = None
    first: date | None = None
    requested: dict[date, str] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str | None) -> DayCursor:
        if not text:
            return cls()
        raw = json.loads(text)
        if raw.get("v") != CURSOR_VERSION:
            raise ValueError(f"unknown landing sensor cursor version {raw.get('v')!r}")
        return cls(
            floor=date.fromisoformat(raw["floor"]) if raw.get("floor") else None,
            first=date.fromisoformat(raw["first"]) if raw.get("first") else None,
            requested={date.fromisoformat(k): v for k, v in raw.get("requested", {}).items()},
        )

    def dump(self) -> str:
        raw: dict[str, object] = {"v": CURSOR_VERSION}
        if self.floor is not None:
            raw["floor"] = self.floor.isoformat()
        if self.first is not None:
            raw["first"] = self.first.isoformat()
        raw["requested"] = {k.isoformat(): v for k, v in sorted(self.requested.items())}
        return json.dumps(raw, separators=(",", ":"))

    def advance(self, newest: date | None, horizon_days: int) -> None:
        """Move the floor up to ``newest - horizon`` and forget the days below it."""
        if newest is not None:
            candidate = newest - timedelta(days=horizon_days)
            self.floor = candidate if self.floor is None else max(self.floor, candidate)
        if self.floor is not None:
            self.requested = {d: v for d, v in self.requested.items() if d >= self.floor}


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class DayRequest:
    """A partition to request, with what makes this request unique."""

    day: date
    fingerprint: str
    tags: Mapping[str, str]


def plan_billing(
    cursor: DayCursor,
    versions: Mapping[date, tuple[str, int]],
    horizon_days: int,
) -> list[DayRequest]:
    """Days whose complete delivery version was not requested yet; updates ``cursor``.

    ``versions`` maps each listed day with a complete delivery to (version, number of parts).
    """
    cursor.advance(max(versions, default=None), horizon_days)
    requests = []
    for day in sorted(versions):
        if cursor.floor is not None and day < cursor.floor:
            continue  # older than the horizon before the newest delivery: final
        version, parts = versions[day]
        fp = fingerprint([version])
        if cursor.requested.get(day) == fp:
            continue
        cursor.requested[day] = fp
        tags = {"churn/landing": "billing", "churn/delivery": fp, "churn/parts": str(parts)}
        requests.append(DayRequest(day, fp, tags))
    return requests


def plan_clickstream(
    cursor: DayCursor,
    objects: Iterable[tuple[str, datetime, str]],
    days: Iterable[date],
    now: datetime,
    lateness: timedelta,
    horizon_days: int,
) -> list[DayRequest]:
    """Closed windows whose object set (keys + ETags) differs from the one last requested.

    A window [D 00:00, D+1 00:00 + lateness) is closed once an object named with a later
    arrival time exists (the producer's clock says so), or once the clock has passed its
    end, but only within the horizon after that end: past it, the stream has been silent
    for longer than anything the sensor re-processes, and only a new delivery moves it.
    Days older than the horizon before the newest arrival are never requested. An empty
    window is requested only when a later object closed it (the outage between two
    deliveries gets its one run); days after the newest delivery are not requested at all.
    """
    horizon = timedelta(days=horizon_days)
    # a name more than a day ahead of the clock is misdated: it must not move the floor
    listed = sorted((o for o in objects if o[1] <= now + MAX_CLOCK_SKEW), key=lambda o: o[1])
    if not listed:
        return []
    latest_arrival = listed[-1][1]
    cursor.advance(latest_arrival.date(), horizon_days)
    requests = []
    for day in sorted(days):
        if cursor.floor is not None and day < cursor.floor:
            continue
        start, end = clickstream_window(day, lateness)
        closed_by_data = latest_arrival >= end
        if not (closed_by_data or end <= now < end + horizon):
            continue
        members = [(key, etag) for key, arrival, etag in listed if start <= arrival < end]
        if members:
            if cursor.first is None or day < cursor.first:
                cursor.first = day
        elif not closed_by_data or cursor.first is None or day < cursor.first:
            continue  # after the newest delivery, or before the stream delivered anything
        fp = window_fingerprint(members)
        if cursor.requested.get(day) == fp:
            continue
        cursor.requested[day] = fp
        tags = {
            "churn/landing": "clickstream",
            "churn/window": fp,
            "churn/objects": str(len(members)),
        }
        requests.append(DayRequest(day, fp, tags))
    return requests


def seed_from_instance(
    cursor: DayCursor,
    instance: dg.DagsterInstance,
    asset: str,
    days: Iterable[date],
    metadata_key: str,
) -> None:
    """Record as requested the days whose latest materialization already holds this content.

    A fresh cursor (a new deployment, a reset, a backfill run by hand or by the demo) would
    otherwise request again every day it can see. One query for all the days watched.
    """
    unknown = [d for d in days if d not in cursor.requested]
    if not unknown:
        return
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset), asset_partitions=[d.isoformat() for d in unknown]
        ),
        limit=10 * len(unknown),
    ).records
    for record in records:  # newest first: the first one seen per day is its latest
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        value = materialization.metadata.get(metadata_key)
        day = date.fromisoformat(materialization.partition)
        if value is not None and day not in cursor.requested:
            cursor.requested[day] = str(value.value)


def _watched_days(cursor: DayCursor, start: date, now: datetime) -> list[date]:
    """Partition days that can still change: from the floor to yesterday (today is not a
    partition until it has ended)."""
    first = max(cursor.floor or start, start)
    return days_between(first, now.date() - timedelta(days=1))


def _run_requests(asset: str, requests: list[DayRequest]) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            run_key=f"{asset}:{r.day.isoformat()}:{r.fingerprint}",
            partition_key=r.day.isoformat(),
            asset_selection=[dg.AssetKey(asset)],
            tags=dict(r.tags),
        )
        for r in requests
    ]


def _result(asset: str, requests: list[DayRequest], cursor: DayCursor) -> dg.SensorResult:
    if not requests:
        return dg.SensorResult(skip_reason="no new or changed deliveries", cursor=cursor.dump())
    return dg.SensorResult(run_requests=_run_requests(asset, requests), cursor=cursor.dump())


def build_landing_sensors(
    settings: PipelineSettings,
    sensor_settings: LandingSensorSettings | None = None,
    clock: Clock = utc_now,
) -> list[dg.SensorDefinition]:
    """The billing and clickstream sensors of the graph built with ``settings``."""
    options = sensor_settings or LandingSensorSettings()
    horizon = options.reprocessing_horizon_days

    @dg.sensor(
        name=BILLING_SENSOR,
        target=dg.AssetSelection.assets("raw_billing"),
        minimum_interval_seconds=options.minimum_interval_seconds,
        default_status=options.default_status,
        description=(
            "Requests raw_billing[D] for every complete billing/dt=D/ delivery (_SUCCESS "
            "present, no part newer than it) whose version (ETags + marker time) was not "
            f"requested yet; watches the days from {horizon} days before the newest delivery."
        ),
    )
    def billing_landing_sensor(
        context: dg.SensorEvaluationContext, landing: LandingZone
    ) -> dg.SensorResult:
        cursor = DayCursor.load(context.cursor)
        versions: dict[date, tuple[str, int]] = {}
        for day in _watched_days(cursor, settings.history_start, clock()):
            delivery = landing.billing_delivery(day)
            if delivery is not None:
                versions[day] = (delivery.version, len(delivery.parts))
        seed_from_instance(cursor, context.instance, "raw_billing", versions, DELIVERY_METADATA)
        requests = plan_billing(cursor, versions, horizon)
        for request in requests:
            context.log.info(f"raw_billing[{request.day}]: delivery {request.fingerprint}")
        return _result("raw_billing", requests, cursor)

    @dg.sensor(
        name=CLICKSTREAM_SENSOR,
        target=dg.AssetSelection.assets("raw_clickstream"),
        minimum_interval_seconds=options.minimum_interval_seconds,
        default_status=options.default_status,
        description=(
            "Requests raw_clickstream[D] once D's lateness window has closed, and again when "
            f"the objects in that window change, for days up to {horizon} days before the "
            "newest day with data."
        ),
    )
    def clickstream_landing_sensor(
        context: dg.SensorEvaluationContext, landing: LandingZone
    ) -> dg.SensorResult:
        now = clock()
        cursor = DayCursor.load(context.cursor)
        days = _watched_days(cursor, settings.history_start, now)
        objects: list[tuple[str, datetime, str]] = []
        if days:
            # windows of days[-1] reach into the next arrival day(s) by the lateness
            last_arrival_day = (
                clickstream_window(days[-1], settings.lateness)[1] - timedelta(microseconds=1)
            ).date()
            for arrival_day in days_between(days[0], last_arrival_day):
                for stored in landing.store.list(clickstream_day_prefix(arrival_day)):
                    arrival = parse_clickstream_arrival(stored.key)
                    if arrival is not None:
                        objects.append((stored.key, arrival, stored.etag))
        seed_from_instance(cursor, context.instance, "raw_clickstream", days, WINDOW_METADATA)
        requests = plan_clickstream(cursor, objects, days, now, settings.lateness, horizon)
        for request in requests:
            context.log.info(
                f"raw_clickstream[{request.day}]: {request.tags['churn/objects']} objects"
            )
        return _result("raw_clickstream", requests, cursor)

    return [billing_landing_sensor, clickstream_landing_sensor]


def build_sensors(
    settings: PipelineSettings,
    sensor_settings: LandingSensorSettings | None = None,
    clock: Clock = utc_now,
) -> list[dg.SensorDefinition]:
    """Every sensor of the project: the two landing sensors and the automation sensor."""
    from churn_assets.automation import automation_sensor

    options = sensor_settings or LandingSensorSettings()
    return [
        *build_landing_sensors(settings, options, clock),
        automation_sensor(options.minimum_interval_seconds, options.default_status),
    ]
