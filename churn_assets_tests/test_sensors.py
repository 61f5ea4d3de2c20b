"""Landing sensors against a real S3 API (moto server subprocess), ticked with a real instance.

Files are uploaded with boto3 as the producers would; the sensors read them through the
LandingZone resource on s3://. The clock is injected, so every window and horizon below is
exact.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any

import dagster as dg
import pytest

from churn_assets import s3_demo
from churn_assets.resources.landing import LandingZone
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.sensors import (
    BILLING_SENSOR,
    CLICKSTREAM_SENSOR,
    DayCursor,
    LandingSensorSettings,
    build_landing_sensors,
)
from churn_assets.settings import PipelineSettings

pytest_plugins = [f"{__package__}.s3_server" if __package__ else "s3_server"]

START = date(2026, 3, 1)
PREFIX = "landing"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def utc(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=timezone.utc)


class Producer:
    """Writes the landing layout through boto3, as the CRM export and Firehose would."""

    def __init__(self, client: Any, bucket: str):
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, head: bool = True) -> dict:
        """Upload; returns the object's HEAD (its LastModified and ETag) unless told not to."""
        self.client.put_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}", Body=data)
        return self.client.head_object(Bucket=self.bucket, Key=f"{PREFIX}/{key}") if head else {}

    def billing_part(self, day: date, part: int = 0, content: str = "v1") -> None:
        csv = f"customer_id,snapshot_date\nC{part:07d},{day}\n# {content}\n"
        self.put(f"billing/dt={day}/part-{part:05d}.csv.gz", gzip.compress(csv.encode()))

    def billing_success(self, day: date) -> dict:
        return self.put(f"billing/dt={day}/_SUCCESS", b"")

    def billing_day(self, day: date, parts: int = 1, content: str = "v1") -> None:
        for part in range(parts):
            self.billing_part(day, part, content)
        self.billing_success(day)

    @staticmethod
    def clickstream_key(arrival: datetime) -> str:
        return (
            f"clickstream/{arrival:%Y/%m/%d/%H}/churn-clickstream-1-"
            f"{arrival:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}.gz"
        )

    def clickstream(
        self, arrival: datetime, events: int = 1, head: bool = True
    ) -> tuple[str, dict]:
        lines = [
            json.dumps({"event_id": f"w-{uuid.uuid4()}", "event": "click", "ts": "x"})
            for _ in range(events)
        ]
        key = self.clickstream_key(arrival)
        return key, self.put(key, gzip.compress("\n".join(lines).encode()), head)


@pytest.fixture
def producer(s3: Any, s3_bucket: str) -> Producer:
    return Producer(s3, s3_bucket)


@pytest.fixture
def landing(dagster_s3: Any, s3_bucket: str) -> LandingZone:
    return LandingZone(url=f"s3://{s3_bucket}/{PREFIX}", s3=dagster_s3)


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


class Sensors:
    """Both landing sensors with an injected clock, ticked like the daemon would tick them.

    By default the resource object is handed over as is, so its S3 client is built once
    (building a boto3 client costs about half a second); ``fresh_resources`` builds the
    resource from its config on every tick, as the daemon does.
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        landing: Any,
        now: datetime,
        horizon_days: int = 14,
        fresh_resources: bool = False,
    ):
        self.instance = instance
        self.landing = (
            landing if fresh_resources else dg.ResourceDefinition.hardcoded_resource(landing)
        )
        self.clock = Clock(now)
        self.horizon_days = horizon_days
        self.cursors: dict[str, str | None] = {BILLING_SENSOR: None, CLICKSTREAM_SENSOR: None}
        self.rebuild()

    def rebuild(self) -> None:
        """A fresh process: new sensor definitions; only the stored cursors carry over."""
        settings = PipelineSettings(history_start=START)
        options = LandingSensorSettings(reprocessing_horizon_days=self.horizon_days)
        sensors = build_landing_sensors(settings, options, clock=self.clock)
        self.by_name = {sensor.name: sensor for sensor in sensors}

    def tick(self, name: str) -> list[dg.RunRequest]:
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors[name],
            resources={"landing": self.landing},
            sensor_name=name,
        ) as context:
            result = self.by_name[name](context)
        assert isinstance(result, dg.SensorResult)
        self.cursors[name] = result.cursor
        return list(result.run_requests or [])

    def billing(self) -> list[dg.RunRequest]:
        return self.tick(BILLING_SENSOR)

    def clickstream(self) -> list[dg.RunRequest]:
        return self.tick(CLICKSTREAM_SENSOR)


def partitions(requests: list[dg.RunRequest]) -> list[str]:
    return [r.partition_key for r in requests]  # type: ignore[misc]


def day(offset: int) -> date:
    return START + timedelta(days=offset)


def test_one_request_per_complete_billing_day_and_none_without_success(
    instance: dg.DagsterInstance, landing: LandingZone, producer: Producer
) -> None:
    producer.billing_day(day(0), parts=2)
    producer.billing_day(day(1))
    producer.billing_part(day(2))  # parts written, no _SUCCESS yet
    sensors = Sensors(instance, landing, utc(day(4), 8))

    first = sensors.billing()
    assert partitions(first) == [str(day(0)), str(day(1))]
    assert all(r.asset_selection == [dg.AssetKey("raw_billing")] for r in first)
    assert len({r.run_key for r in first}) == 2
    assert first[0].tags["churn/parts"] == "2"
    assert sensors.billing() == []  # nothing changed: nothing requested again

    producer.billing_success(day(2))
    assert partitions(sensors.billing()) == [str(day(2))]
    assert sensors.billing() == []


def test_redelivery_requests_the_day_again_once_complete(
    fresh_instance: dg.DagsterInstance, tmp_path: Any, dagster_s3: Any
) -> None:
    """On a local landing directory whose modification times the test sets: the order of
    LastModified values is exact, with no waiting for a clock to tick."""
    store = LocalObjectStore(tmp_path)
    landed = utc(day(1), 3)
    for part in range(2):
        put_at(store, f"billing/dt={day(0)}/part-{part:05d}.csv.gz", b"v1", landed)
    put_at(store, f"billing/dt={day(0)}/_SUCCESS", b"", landed + timedelta(seconds=1))
    sensors = Sensors(fresh_instance, LandingZone(url=str(tmp_path), s3=dagster_s3), utc(day(3)))
    (original,) = sensors.billing()

    again = utc(day(2), 11)
    put_at(store, f"billing/dt={day(0)}/part-00000.csv.gz", b"corrected", again)
    store.delete(f"billing/dt={day(0)}/part-00001.csv.gz")
    assert sensors.billing() == []  # parts newer than _SUCCESS: re-delivery in progress

    put_at(store, f"billing/dt={day(0)}/_SUCCESS", b"", again + timedelta(seconds=1))
    (redelivered,) = sensors.billing()
    assert redelivered.partition_key == str(day(0))
    assert redelivered.run_key != original.run_key
    assert redelivered.tags["churn/parts"] == "1"
    assert sensors.billing() == []


def test_more_than_1000_clickstream_objects_under_one_prefix_are_all_seen(
    instance: dg.DagsterInstance, landing: LandingZone, producer: Producer
) -> None:
    arrivals = [utc(day(0)) + timedelta(seconds=80 * i) for i in range(1030)]
    assert {a.date() for a in arrivals} == {day(0)}
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda arrival: producer.clickstream(arrival, head=False), arrivals))
    sensors = Sensors(instance, landing, utc(day(1), 2))  # the window of day 0 has just closed

    (request,) = sensors.clickstream()
    assert request.partition_key == str(day(0))
    assert request.tags["churn/objects"] == "1030"
    assert sensors.clickstream() == []


def _same_second(first: dict, second: dict) -> bool:
    return first["LastModified"].replace(microsecond=0) == second["LastModified"].replace(
        microsecond=0
    )


def _at_start_of_a_second() -> None:
    time.sleep(1.0 - (time.time() % 1.0) + 0.02)


def test_objects_with_the_same_last_modified_second_either_side_of_a_cursor(
    instance: dg.DagsterInstance, make_bucket: Any, dagster_s3: Any, s3: Any
) -> None:
    for _attempt in range(5):  # retried (on a new bucket) only if a second boundary fell between
        bucket = make_bucket()
        producer = Producer(s3, bucket)
        landing = LandingZone(url=f"s3://{bucket}/{PREFIX}", s3=dagster_s3)
        sensors = Sensors(instance, landing, utc(day(2), 1))
        assert sensors.clickstream() == sensors.billing() == []  # warm up clients: fast ticks
        _at_start_of_a_second()
        _, click_before = producer.clickstream(utc(day(0), 10))
        billing_before = producer.billing_success(day(0))
        first_click, first_billing = sensors.clickstream(), sensors.billing()
        _, click_after = producer.clickstream(utc(day(0), 11))
        billing_after = producer.billing_success(day(1))
        if _same_second(click_before, click_after) and _same_second(billing_before, billing_after):
            break
    else:
        pytest.fail("could not write two objects within one second")

    assert partitions(first_click) == [str(day(0))]
    assert first_click[0].tags["churn/objects"] == "1"
    assert partitions(first_billing) == [str(day(0))]
    second_click = sensors.clickstream()
    assert partitions(second_click) == [str(day(0))]
    assert second_click[0].tags["churn/objects"] == "2"  # the object of the same second
    assert partitions(sensors.billing()) == [str(day(1))]


def test_restart_with_the_stored_cursor_repeats_nothing(
    instance: dg.DagsterInstance, landing: LandingZone, producer: Producer
) -> None:
    for offset in range(3):
        producer.billing_day(day(offset))
        producer.clickstream(utc(day(offset), 12))
    sensors = Sensors(instance, landing, utc(day(3), 8), fresh_resources=True)
    assert len(sensors.billing()) == 3
    assert len(sensors.clickstream()) == 3

    sensors.rebuild()  # a new code server / daemon: only the cursors survive
    assert sensors.billing() == []
    assert sensors.clickstream() == []
    producer.billing_day(day(3))
    sensors.clock.now = utc(day(4), 8)
    assert partitions(sensors.billing()) == [str(day(3))]


class CountingStore:
    """Wraps the landing store to record which prefixes each tick lists."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.listed: list[str] = []

    def list(self, prefix: str) -> Any:
        self.listed.append(prefix)
        return self.inner.list(prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CountingLanding:
    """A LandingZone stand-in whose store counts listings (the clickstream sensor uses only it)."""

    def __init__(self, landing: LandingZone):
        self.store = CountingStore(landing.store)


def test_late_clickstream_object_inside_and_outside_the_reprocessing_horizon(
    instance: dg.DagsterInstance, landing: LandingZone, producer: Producer
) -> None:
    for offset in range(8):
        producer.clickstream(utc(day(offset), 10))
    counting = CountingLanding(landing)
    sensors = Sensors(instance, counting, utc(day(8), 3), horizon_days=3)
    # a fresh cursor too requests nothing older than the horizon before the newest delivery
    assert partitions(sensors.clickstream()) == [str(day(i)) for i in range(4, 8)]
    cursor = DayCursor.load(sensors.cursors[CLICKSTREAM_SENSOR])
    assert cursor.floor == day(7 - 3)
    assert sorted(cursor.requested) == [day(i) for i in range(4, 8)]  # bounded by the horizon

    producer.clickstream(utc(day(5), 15))  # late object inside the horizon
    producer.clickstream(utc(day(1), 15))  # late object outside it: that day is final
    counting.store.listed.clear()
    (again,) = sensors.clickstream()
    assert again.partition_key == str(day(5))
    assert again.tags["churn/objects"] == "2"
    # only the arrival days that can still change were listed
    assert counting.store.listed == [f"clickstream/{day(i):%Y/%m/%d}/" for i in range(4, 9)]
    assert sensors.clickstream() == []


def test_clickstream_window_closes_by_clock_or_by_a_later_object(
    instance: dg.DagsterInstance, landing: LandingZone, producer: Producer
) -> None:
    producer.clickstream(utc(day(0), 10))
    producer.clickstream(utc(day(1), 0, 30))  # inside day 0's lateness window
    sensors = Sensors(instance, landing, utc(day(1), 1, 59, 59))
    assert sensors.clickstream() == []  # window [day0 00:00, day1 02:00) still open

    producer.clickstream(utc(day(1), 2, 5))  # the producer's clock is past the window
    (closed,) = sensors.clickstream()
    assert closed.partition_key == str(day(0))
    assert closed.tags["churn/objects"] == "2"

    producer.clickstream(utc(day(2), 0, 10))
    sensors.clock.now = utc(day(2), 2)  # now closed by the clock alone
    (by_clock,) = sensors.clickstream()
    assert by_clock.partition_key == str(day(1))
    assert by_clock.tags["churn/objects"] == "3"  # 00:30, 02:05 and day 2 00:10


def test_a_day_without_clickstream_is_requested_empty_but_not_days_before_the_stream(
    instance: dg.DagsterInstance, landing: LandingZone, producer: Producer
) -> None:
    producer.clickstream(utc(day(2), 10))
    producer.clickstream(utc(day(4), 10))
    sensors = Sensors(instance, landing, utc(day(5), 3))
    requests = sensors.clickstream()
    assert partitions(requests) == [str(day(2)), str(day(3)), str(day(4))]
    assert [r.tags["churn/objects"] for r in requests] == ["1", "0", "1"]


def test_sensors_work_on_a_local_landing_directory(
    instance: dg.DagsterInstance, tmp_path: Any, dagster_s3: Any
) -> None:
    store = LocalObjectStore(tmp_path)
    store.put(f"billing/dt={day(0)}/part-00000.csv.gz", gzip.compress(b"customer_id\n"))
    store.put(f"billing/dt={day(0)}/_SUCCESS", b"")
    store.put(Producer.clickstream_key(utc(day(0), 9)), gzip.compress(b"{}"))
    local = LandingZone(url=str(tmp_path), s3=dagster_s3)
    sensors = Sensors(instance, local, utc(day(1), 3))
    assert partitions(sensors.billing()) == [str(day(0))]
    assert partitions(sensors.clickstream()) == [str(day(0))]
    assert sensors.billing() == sensors.clickstream() == []


def record_materialized(
    instance: dg.DagsterInstance, local: LandingZone, days: Iterable[date]
) -> None:
    """Report raw_billing and raw_clickstream of ``days`` as materialized with the
    fingerprints their assets record: what a backfill (the demo's) leaves on the instance."""
    from churn_assets.core.landing_layout import (
        DELIVERY_METADATA,
        WINDOW_METADATA,
        clickstream_window,
        fingerprint,
        window_fingerprint,
    )

    for partition in days:
        delivery = local.billing_delivery(partition)
        assert delivery is not None
        listing = local.clickstream_objects(*clickstream_window(partition, timedelta(hours=2)))
        for asset, key, value in (
            ("raw_billing", DELIVERY_METADATA, fingerprint([delivery.version])),
            (
                "raw_clickstream",
                WINDOW_METADATA,
                window_fingerprint((o.key, o.etag) for o in listing.objects),
            ),
        ):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset, partition=str(partition), metadata={key: value})
            )


def put_at(store: LocalObjectStore, key: str, data: bytes, when: datetime) -> None:
    """Write ``key`` with the modification time ``when``: deterministic LastModified order."""
    store.put(key, data)
    os.utime(store.uri(key), (when.timestamp(), when.timestamp()))


def billing_at(store: LocalObjectStore, partition: date, content: bytes = b"customer_id\n") -> None:
    """A one-part billing delivery of ``partition``, landing at D+1 03:00 as the CRM's does."""
    landed = utc(partition + timedelta(days=1), 3)
    put_at(store, f"billing/dt={partition}/part-00000.csv.gz", gzip.compress(content), landed)
    put_at(store, f"billing/dt={partition}/_SUCCESS", b"", landed + timedelta(seconds=1))


def test_days_already_materialized_with_the_same_content_are_not_requested_again(
    fresh_instance: dg.DagsterInstance, tmp_path: Any, dagster_s3: Any
) -> None:
    """A fresh cursor (new deployment, the demo's backfill done by hand) repeats nothing the
    instance already holds for the same delivery, and still sees a re-delivery."""
    store = LocalObjectStore(tmp_path)
    for offset in (0, 1):
        billing_at(store, day(offset))
        store.put(Producer.clickstream_key(utc(day(offset), 9)), gzip.compress(b"{}"))
    local = LandingZone(url=str(tmp_path), s3=dagster_s3)
    record_materialized(fresh_instance, local, [day(0), day(1)])
    sensors = Sensors(fresh_instance, local, utc(day(2), 3))
    assert sensors.billing() == []
    assert sensors.clickstream() == []
    # delivered again a day later: new part content, then a new marker
    redelivered = utc(day(3), 3)
    put_at(store, f"billing/dt={day(1)}/part-00000.csv.gz", gzip.compress(b"id\nC1\n"), redelivered)
    assert sensors.billing() == []  # the part is newer than the marker: still being written
    put_at(store, f"billing/dt={day(1)}/_SUCCESS", b"", redelivered + timedelta(seconds=1))
    assert partitions(sensors.billing()) == [str(day(1))]


def test_a_landing_that_stopped_long_ago_starts_nothing_until_a_new_day_lands(
    fresh_instance: dg.DagsterInstance, tmp_path: Any, dagster_s3: Any
) -> None:
    """The demo's situation: its history was backfilled, it ended months before the clock.

    The last day's late objects (arriving after midnight) open the next day's window, and
    every day from there to today has no object: none of it is requested, on the first tick
    or any later one. The next day's files (objects until after its window closed, then its
    billing) are requested at once, the day after it is not (its window is still open).
    """
    store = LocalObjectStore(tmp_path)
    last = 5
    for offset in range(last + 1):
        billing_at(store, day(offset))
        for hour in (1, 10, 23):
            store.put(Producer.clickstream_key(utc(day(offset), hour)), gzip.compress(b"{}"))
    store.put(Producer.clickstream_key(utc(day(last + 1), 0, 30)), gzip.compress(b"{}"))
    local = LandingZone(url=str(tmp_path), s3=dagster_s3)
    record_materialized(fresh_instance, local, [day(i) for i in range(last + 1)])
    sensors = Sensors(fresh_instance, local, utc(day(200), 12))

    for _tick in range(3):
        assert sensors.billing() == []
        assert sensors.clickstream() == []
        sensors.clock.now += timedelta(days=1)
    cursor = DayCursor.load(sensors.cursors[CLICKSTREAM_SENSOR])
    assert cursor.floor == day(last + 1 - 14)
    assert max(cursor.requested) == day(last)  # nothing after the last delivered day

    for hour in (3, 10, 23):  # the rest of the next day, until its window has closed
        store.put(Producer.clickstream_key(utc(day(last + 1), hour)), gzip.compress(b"{}"))
    store.put(Producer.clickstream_key(utc(day(last + 2), 2, 30)), gzip.compress(b"{}"))
    billing_at(store, day(last + 1))
    assert partitions(sensors.billing()) == [str(day(last + 1))]
    (next_day,) = sensors.clickstream()
    assert next_day.partition_key == str(day(last + 1))
    assert next_day.tags["churn/objects"] == "4"
    assert sensors.billing() == sensors.clickstream() == []


def test_a_fresh_cursor_requests_only_the_horizon_before_the_newest_delivery(
    fresh_instance: dg.DagsterInstance, tmp_path: Any, dagster_s3: Any
) -> None:
    """A landing zone nobody materialized yet (another producer's history, the clock months
    ahead): the sensors take the last ``horizon`` days; older days are the backfill's job."""
    store = LocalObjectStore(tmp_path)
    for offset in range(30):
        billing_at(store, day(offset))
        store.put(Producer.clickstream_key(utc(day(offset), 10)), gzip.compress(b"{}"))
    store.put(Producer.clickstream_key(utc(day(30), 3)), gzip.compress(b"{}"))  # closes day 29
    local = LandingZone(url=str(tmp_path), s3=dagster_s3)
    sensors = Sensors(fresh_instance, local, utc(day(240), 12), horizon_days=5)
    assert partitions(sensors.billing()) == [str(day(i)) for i in range(24, 30)]
    assert partitions(sensors.clickstream()) == [str(day(i)) for i in range(25, 30)]
    assert sensors.billing() == sensors.clickstream() == []


def test_days_without_objects_after_the_newest_delivery_are_never_requested(
    fresh_instance: dg.DagsterInstance, tmp_path: Any, dagster_s3: Any
) -> None:
    """The stream stops: its last day is processed once the clock closes it, then nothing,
    day after day (the freshness check flags the outage); an empty day between two
    deliveries is requested once (its volume check flags it)."""
    store = LocalObjectStore(tmp_path)
    for offset in (0, 1, 3):
        store.put(Producer.clickstream_key(utc(day(offset), 10)), gzip.compress(b"{}"))
    local = LandingZone(url=str(tmp_path), s3=dagster_s3)
    sensors = Sensors(fresh_instance, local, utc(day(4), 3))
    requests = sensors.clickstream()
    assert partitions(requests) == [str(day(i)) for i in range(4)]
    assert [r.tags["churn/objects"] for r in requests] == ["1", "1", "0", "1"]
    for _tick in range(10):
        sensors.clock.now += timedelta(days=1)
        assert sensors.clickstream() == []


# --- the automation condition sensor's policy (declarative automation downstream) ---------

AUTOMATED = tuple(a for a in s3_demo.ASSETS if not a.startswith("raw_"))


class Automation:
    """Evaluates the project's automation policy tick by tick against a real instance.

    Upstream materializations are reported to the instance (with passing results of the
    raw_clickstream checks that gate sessions, linked to the materialization as a run links
    them); ``run`` plays the role of the runs a tick launched.
    """

    def __init__(self, instance: dg.DagsterInstance, settings: PipelineSettings, horizon: int):
        from churn_assets.assets import build_assets
        from churn_assets.automation import apply_automation
        from churn_assets.environments import resources_for

        assets = apply_automation(build_assets(settings), settings, horizon)
        self.defs = dg.Definitions(assets=assets, resources=resources_for("local", {}))
        self.checks = {
            key: [spec for a in assets for spec in a.check_specs if spec.asset_key == key]
            for a in assets
            for key in a.keys
        }
        self.instance = instance
        self.start = settings.history_start
        self.cursor: Any = None
        self.now = utc(self.start)

    def key(self, offset: int) -> str:
        return str(self.start + timedelta(days=offset))

    def land(self, asset: str, offsets: Iterable[int]) -> None:
        from dagster._core.definitions.asset_checks.asset_check_evaluation import (
            AssetCheckEvaluationTargetMaterializationData,
        )

        key = dg.AssetKey(asset)
        for offset in offsets:
            partition = self.key(offset)
            self.instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=key, partition=partition)
            )
            record = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
            ).records[0]
            target = AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            )
            gated = asset == "raw_clickstream"  # sessions wait for its blocking checks
            for spec in self.checks[key] if gated else []:
                self.instance.report_runless_asset_event(
                    dg.AssetCheckEvaluation(
                        asset_key=key,
                        check_name=spec.name,
                        passed=True,
                        partition=partition,
                        target_materialization_data=target,
                    )
                )

    def tick(self) -> dict[str, list[int]]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=self.now
        )
        self.cursor = result.cursor
        requested = {
            name: sorted(
                (date.fromisoformat(str(p)) - self.start).days
                for p in result.get_requested_partitions(dg.AssetKey(name))
            )
            for name in AUTOMATED
        }
        return {name: days for name, days in requested.items() if days}

    def run(self, requested: dict[str, list[int]]) -> None:
        for name, offsets in requested.items():
            self.land(name, offsets)


def small_settings() -> PipelineSettings:
    from churn_assets.core.daily_model import TrainingConfig

    # H=2, G=1 (labels final 3 days later), feature and training windows of 3 days: the
    # first complete feature window ends on day 2, so models start on day 7, scores on day 8
    return PipelineSettings(
        history_start=START,
        horizon_days=2,
        grace_days=1,
        feature_window_days=3,
        training_window_days=3,
        training=TrainingConfig(validation_days=1, test_days=1),
    )


@pytest.fixture
def fresh_instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_automation_follows_landed_days_labels_the_day_a_billing_day_completes_and_reruns(
    fresh_instance: dg.DagsterInstance,
) -> None:
    auto = Automation(fresh_instance, small_settings(), horizon=5)
    auto.now = utc(day(5), 8)
    assert auto.tick() == {}
    auto.land("raw_billing", range(5))
    auto.land("raw_clickstream", range(5))
    first = auto.tick()
    # billing 0..4 completes the labels of days 0 and 1 (final once day D+3 has landed);
    # features wait for the sessions requested in the same tick
    assert first == {"sessions": [0, 1, 2, 3, 4], "labels": [0, 1]}
    auto.run(first)
    second = auto.tick()
    assert second == {"features": [0, 1, 2, 3, 4]}
    auto.run(second)
    assert auto.tick() == {}  # nothing repeats

    auto.now = utc(day(9), 8)  # four more days land
    auto.land("raw_billing", range(5, 9))
    auto.land("raw_clickstream", range(5, 9))
    third = auto.tick()
    assert third == {"sessions": [5, 6, 7, 8], "labels": [2, 3, 4, 5]}
    auto.run(third)
    fourth = auto.tick()
    # the daily model whose training window (days D-5..D-3) is complete; model 8 waits for
    # features 5, requested in this same tick
    assert fourth == {"features": [5, 6, 7, 8], "model": [7]}
    auto.run(fourth)
    fifth = auto.tick()
    assert fifth == {"model": [8], "scores": [8]}  # scores once features and a model exist
    auto.run(fifth)
    sixth = auto.tick()
    assert sixth == {"drift": [8], "call_list": [8]}
    auto.run(sixth)
    assert auto.tick() == {}

    # a re-delivery of billing day 6: its feature windows and the final labels it is part of
    auto.land("raw_billing", [6])
    redelivery = auto.tick()
    assert redelivery == {"features": [6, 7, 8], "labels": [3, 4, 5]}
    auto.run(redelivery)
    after = auto.tick()
    assert after == {"scores": [8]}  # the models are not retrained: one per day
    auto.run(after)
    assert auto.tick() == {"drift": [8], "call_list": [8]}
    assert auto.tick() == {}


def test_automation_tolerates_a_missing_billing_day_and_ignores_days_past_the_lookback(
    fresh_instance: dg.DagsterInstance,
) -> None:
    auto = Automation(fresh_instance, small_settings(), horizon=3)
    auto.now = utc(day(5), 8)
    assert auto.tick() == {}
    auto.land("raw_billing", [0, 1, 3, 4])  # the extract of day 2 never arrives
    auto.land("raw_clickstream", range(5))
    first = auto.tick()
    assert first == {"sessions": [0, 1, 2, 3, 4], "labels": [0, 1]}
    auto.run(first)
    assert auto.tick() == {"features": [0, 1, 3, 4]}  # not day 2: its billing is missing
    auto.run({"features": [0, 1, 3, 4]})
    # a re-delivery inside the lookback, landing between the same two ticks as the features
    # run that just finished (which may have read the old data): its day and the final
    # label whose window holds it run again
    auto.land("raw_billing", [4])
    assert auto.tick() == {"features": [4], "labels": [1]}
    auto.run({"features": [4], "labels": [1]})
    assert auto.tick() == {}

    auto.now = utc(day(6), 8)
    auto.land("raw_clickstream", [5])  # sessions of day 5 without its billing: no features
    assert auto.tick() == {"sessions": [5]}
    auto.run({"sessions": [5]})
    assert auto.tick() == {}

    auto.now = utc(day(30), 8)  # much later, day 29 lands: day 0 is outside every lookback
    auto.land("raw_clickstream", [29])
    assert auto.tick() == {"sessions": [29]}
    auto.run({"sessions": [29]})
    auto.land("raw_billing", [0])
    assert auto.tick() == {}


def test_automation_counts_its_lookback_from_the_newest_raw_day_not_the_wall_clock(
    fresh_instance: dg.DagsterInstance,
) -> None:
    """A history that ended months before today (the demo's): a day landing now still runs
    downstream, as it would on the day after it."""
    auto = Automation(fresh_instance, small_settings(), horizon=3)
    auto.now = utc(day(300), 8)
    assert auto.tick() == {}
    auto.land("raw_billing", range(5))
    auto.land("raw_clickstream", range(5))
    assert auto.tick() == {"sessions": [0, 1, 2, 3, 4], "labels": [0, 1]}


def test_labels_wait_for_the_next_extract_when_the_final_one_is_missing_then_stay_put(
    fresh_instance: dg.DagsterInstance,
) -> None:
    # labels of D are final with the extract of D+3 (H=2, G=1) or, when that one never
    # lands or is rejected, with the first valid one after it (LANDING §4)
    auto = Automation(fresh_instance, small_settings(), horizon=5)
    auto.now = utc(day(5), 8)
    auto.land("raw_billing", [0, 1, 2])
    assert auto.tick() == {}  # no label is final yet
    auto.land("raw_billing", [4])  # the extract of day 3 is missing: day 4 stands in for it
    first = auto.tick()
    assert first == {"labels": [0, 1]}
    auto.run(first)
    assert auto.tick() == {}
    auto.now = utc(day(7), 8)
    auto.land("raw_billing", [5, 6])  # after the first final extract: labels 0 and 1 stay put
    assert auto.tick() == {"labels": [2]}  # labels 3 wait for billing 3 itself
    auto.run({"labels": [2]})
    assert auto.tick() == {}
    auto.land("raw_billing", [3])  # day 3 arrives after all: it is now the final extract of 0
    late = auto.tick()
    assert late == {"labels": [0, 1, 2, 3]}
