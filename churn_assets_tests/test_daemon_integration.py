"""End to end on S3: files land in a bucket, the Dagster daemon does the rest.

A moto server stands in for S3. Eight days of generated landing data are uploaded with
boto3 the way the producers write them; then ``dagster-daemon run`` is started on a
temporary DAGSTER_HOME with the small code location of ``daemon_defs.py``. Nobody launches
anything: the landing sensors request the raw partitions, the automation sensor everything
downstream, until the scores of the last complete day exist. Then billing of that day is
delivered again, which must rerun that day (and only that day) down to its scores.

The test asserts that every file was processed, and processed once per delivery: one
``raw_billing`` materialization per billing day (two for the re-delivered one), one
``raw_clickstream`` materialization per day, each of which read exactly the objects of its
window. Runs execute inside the daemon process (``SyncInMemoryRunLauncher``, meant for
tests) because a fresh Python process per run costs several seconds of imports on two
cores; sensors, run queue and automation are the real daemon's.

The second test is ``make demo`` then ``make dev``, small: an instance holding a backfilled
local history that ended months before today. The daemon ticks every sensor several
times (the ticks are counted, not waited for) and launches nothing; ``next-day`` then
lands one more morning and the daemon carries that day to ``scores``.
"""

import gzip
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from churn_assets.core.generator import GeneratorConfig, generate_landing
from churn_assets.core.landing_layout import (
    SUCCESS_MARKER,
    clickstream_window,
    parse_billing_key,
    parse_clickstream_arrival,
)

pytest_plugins = [f"{__package__}.s3_server" if __package__ else "s3_server"]

DAYS = 8  # scores start on day 7 of the history in daemon_defs' settings
CUSTOMERS = 600
SEED = 5
LATENESS = timedelta(hours=2)
DAEMON_DEFS = Path(__file__).with_name("daemon_defs.py")
FIRST_SCORES_TIMEOUT_S = 480  # generous: the machine running CI may be shared
REDELIVERY_TIMEOUT_S = 240
TICKS_TIMEOUT_S = 120
NEXT_DAY_TIMEOUT_S = 480

INSTANCE_YAML = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 1
    dequeue_interval_seconds: 1
run_launcher:
  module: dagster._core.launcher.sync_in_memory_run_launcher
  class: SyncInMemoryRunLauncher
sensors:
  use_threads: true
  num_workers: 4
telemetry:
  enabled: false
"""


def landing_files(start: date) -> list[tuple[str, bytes]]:
    """The generated landing zone, as (key, data) in the order the producers write it."""
    files: list[tuple[str, bytes]] = []
    config = GeneratorConfig(
        start=start, days=DAYS, customers=CUSTOMERS, seed=SEED, horizon_days=2, grace_days=1
    )
    generate_landing(lambda key, data: files.append((key, data)), config)
    return files


def upload(client: Any, bucket: str, files: list[tuple[str, bytes]]) -> None:
    """Clickstream objects in parallel; each billing day's parts, then its _SUCCESS last."""

    def put(item: tuple[str, bytes]) -> None:
        client.put_object(Bucket=bucket, Key=f"landing/{item[0]}", Body=item[1])

    billing = [f for f in files if f[0].startswith("billing/")]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, [f for f in files if not f[0].startswith("billing/")]))
        for day in sorted({parse_billing_key(key)[0] for key, _ in billing}):  # type: ignore[index]
            day_files = [f for f in billing if parse_billing_key(f[0])[0] == day]  # type: ignore[index]
            list(pool.map(put, [f for f in day_files if not f[0].endswith(SUCCESS_MARKER)]))
            list(map(put, [f for f in day_files if f[0].endswith(SUCCESS_MARKER)]))


@pytest.fixture
def daemon_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    return home


@pytest.fixture
def run_daemon(daemon_home: Path) -> Iterator[Callable[[dict[str, str]], subprocess.Popen]]:
    """Starts ``dagster-daemon run`` on the test's code location; stops it afterwards."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str]) -> subprocess.Popen:
        log = (daemon_home / "daemon.log").open("w")
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-f", str(DAEMON_DEFS)],
            env={**os.environ, **env, "DAGSTER_HOME": str(daemon_home)},
            cwd=DAEMON_DEFS.parent.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code server dies with it
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def materializations(instance: dg.DagsterInstance, asset: str) -> list[dg.AssetMaterialization]:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records
    return [r.asset_materialization for r in records if r.asset_materialization is not None]


def count_by_partition(instance: dg.DagsterInstance, asset: str) -> Counter:
    return Counter(m.partition for m in materializations(instance, asset))


def wait_for(
    condition: Callable[[], bool], timeout_s: float, process: subprocess.Popen, log: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the daemon exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s:\n{log.read_text()[-3000:]}")
        time.sleep(2)


SENSORS = (
    "billing_landing_sensor",
    "clickstream_landing_sensor",
    "churn_automation_sensor",
    "raw_freshness_sensor",
)


def completed_ticks(instance: dg.DagsterInstance) -> dict[str, list[Any]]:
    """Every finished tick of every sensor the daemon has ticked, by sensor name."""
    return {
        state.instigator_name: [
            tick
            for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id)
            if tick.is_completed
        ]
        for state in instance.all_instigator_state()
    }


def tick_counts(instance: dg.DagsterInstance) -> Counter:
    return Counter({name: len(ticks) for name, ticks in completed_ticks(instance).items()})


def wait_for_ticks(
    instance: dg.DagsterInstance,
    since: Counter,
    ticks: int,
    process: subprocess.Popen,
    log: Path,
    sensors: tuple[str, ...] = SENSORS,
) -> None:
    """Until each of ``sensors`` has finished ``ticks`` more ticks than counted in ``since``:
    proof that the daemon looked, as many times as asked, rather than a guess of how long."""
    wait_for(
        lambda: all(tick_counts(instance)[s] >= since[s] + ticks for s in sensors),
        TICKS_TIMEOUT_S,
        process,
        log,
    )


def objects_per_window(files: list[tuple[str, bytes]], day: date) -> int:
    start, end = clickstream_window(day, LATENESS)
    arrivals = (parse_clickstream_arrival(key) for key, _ in files)
    return sum(1 for a in arrivals if a is not None and start <= a < end)


def test_files_landing_in_s3_end_in_scores_with_every_file_processed_once(
    moto_endpoint: str, s3: Any, s3_bucket: str, daemon_home: Path, run_daemon: Any
) -> None:
    start = datetime.now(timezone.utc).date() - timedelta(days=DAYS + 1)  # ends 2 days ago
    days = [start + timedelta(days=i) for i in range(DAYS)]
    last = days[-1]
    files = landing_files(start)
    upload(s3, s3_bucket, files)

    process = run_daemon(
        {
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "CHURN_LANDING_URL": f"s3://{s3_bucket}/landing",
            "CHURN_WAREHOUSE_URL": f"s3://{s3_bucket}/warehouse",
            "CHURN_MODEL_STORE_URL": f"s3://{s3_bucket}/models",
            "CHURN_DAEMON_HISTORY_START": start.isoformat(),
            "CHURN_DAEMON_SENSOR_INTERVAL": "5",
        }
    )
    log = daemon_home / "daemon.log"
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(daemon_home))) as instance:
        wait_for(
            lambda: count_by_partition(instance, "scores")[last.isoformat()] >= 1,
            FIRST_SCORES_TIMEOUT_S,
            process,
            log,
        )
        before = {a: count_by_partition(instance, a) for a in ("features", "labels", "scores")}

        # upstream delivers the last day again: same rows, new part objects, a new _SUCCESS
        time.sleep(1.1)  # the re-delivery's objects carry a later LastModified second
        redelivered = [
            (key, gzip.compress(gzip.decompress(data), mtime=1))
            for key, data in files
            if key.startswith(f"billing/dt={last.isoformat()}/") and key.endswith(".csv.gz")
        ]
        upload(s3, s3_bucket, [*redelivered, (f"billing/dt={last}/{SUCCESS_MARKER}", b"")])
        wait_for(
            lambda: (
                count_by_partition(instance, "scores")[last.isoformat()]
                > before["scores"][last.isoformat()]
            ),
            REDELIVERY_TIMEOUT_S,
            process,
            log,
        )
        # three more finished ticks of every sensor after the rerun, then the exact counts
        # below: no landing run was requested again (automation may still finish the day:
        # drift follows the new scores)
        wait_for_ticks(instance, tick_counts(instance), 3, process, log)

        billing = count_by_partition(instance, "raw_billing")
        assert billing == Counter({d.isoformat(): 1 for d in days[:-1]} | {last.isoformat(): 2})
        parts = {
            m.partition: m.metadata["parts"].value
            for m in materializations(instance, "raw_billing")
        }
        billing_keys = [parse_billing_key(key) for key, _ in files if key.startswith("billing/")]
        for day in days:
            expected = sum(1 for k in billing_keys if k and k[0] == day and k[1] != SUCCESS_MARKER)
            assert parts[day.isoformat()] == expected

        clickstream = count_by_partition(instance, "raw_clickstream")
        assert all(n == 1 for n in clickstream.values()), clickstream
        assert {d.isoformat() for d in days} <= set(clickstream)
        for m in materializations(instance, "raw_clickstream"):
            window_day = date.fromisoformat(str(m.partition))
            assert m.metadata["objects_read"].value == objects_per_window(files, window_day)

        # every run was launched by a sensor, each landing run once per delivery (run keys)
        runs = instance.get_runs()
        by_sensor = Counter(r.tags.get("dagster/sensor_name") for r in runs)
        assert by_sensor["billing_landing_sensor"] == DAYS + 1
        assert by_sensor["clickstream_landing_sensor"] == len(clickstream)
        assert set(by_sensor) == {
            "billing_landing_sensor",
            "clickstream_landing_sensor",
            "churn_automation_sensor",
        }
        run_keys = [r.tags["dagster/run_key"] for r in runs if "dagster/run_key" in r.tags]
        assert len(run_keys) == len(set(run_keys)) == DAYS + 1 + len(clickstream)

        # downstream followed the re-delivery: that day's features and scores, and the one
        # label whose window it completes (day 4 = last - H - G), and nothing else
        assert count_by_partition(instance, "model")[(start + timedelta(days=6)).isoformat()] == 1
        reran = {
            asset: sorted(
                (date.fromisoformat(str(p)) - start).days
                for p, n in count_by_partition(instance, asset).items()
                if n > counts[p]
            )
            for asset, counts in before.items()
        }
        assert reran == {"features": [DAYS - 1], "labels": [DAYS - 4], "scores": [DAYS - 1]}


def test_a_demo_like_instance_launches_nothing_until_the_next_day_lands_then_scores_it(
    tmp_path: Path, daemon_home: Path, run_daemon: Any
) -> None:
    """``make demo`` then ``make dev``, small: a backfilled history that ended months before
    today's clock. The daemon ticks every sensor several times and launches nothing; then
    ``next-day`` lands one more morning of files and the daemon carries it to ``scores``."""
    from churn_assets.next_day import release_next_day, split_by_landing_time
    from churn_assets.resources.storage import LocalObjectStore
    from churn_assets.runner import run_days
    from churn_assets.s3_demo import demo_settings
    from churn_assets_tests.support import local_definitions

    start = datetime.now(timezone.utc).date() - timedelta(days=200)
    days = [start + timedelta(days=i) for i in range(DAYS)]
    settings = demo_settings(start)
    data = tmp_path / "data"
    landing, upcoming = LocalObjectStore(data / "landing"), LocalObjectStore(data / "upcoming")
    config = GeneratorConfig(
        start=start, days=DAYS + 2, customers=CUSTOMERS, seed=SEED, horizon_days=2, grace_days=1
    )
    generate_landing(split_by_landing_time(landing, upcoming, days[-1]), config)
    defs = local_definitions(data, data / "landing", settings)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(daemon_home))) as instance:
        backfill = run_days(defs, instance, settings, days)
        assert all(o.success for o in backfill)
        assert count_by_partition(instance, "scores")[days[-1].isoformat()] == 1
        backfill_runs = len(instance.get_runs())

        process = run_daemon(
            {
                "CHURN_LANDING_URL": str(data / "landing"),
                "CHURN_WAREHOUSE_URL": str(data / "warehouse"),
                "CHURN_MODEL_STORE_URL": str(data / "models"),
                "CHURN_DAEMON_HISTORY_START": start.isoformat(),
                "CHURN_DAEMON_SENSOR_INTERVAL": "3",
            }
        )
        log = daemon_home / "daemon.log"
        wait_for_ticks(instance, Counter(), 4, process, log)
        ticks = completed_ticks(instance)
        assert len(instance.get_runs()) == backfill_runs
        assert not [t.run_ids for name in SENSORS for t in ticks[name] if t.run_ids]
        assert {t.status.value for name in SENSORS[:2] for t in ticks[name]} == {"SKIPPED"}

        released = release_next_day(landing, upcoming)
        assert released.day == days[-1] + timedelta(days=1)
        wait_for(
            lambda: count_by_partition(instance, "scores")[released.day.isoformat()] >= 1,
            NEXT_DAY_TIMEOUT_S,
            process,
            log,
        )
        all_runs = instance.get_runs()  # newest first
        launched = Counter(
            (r.tags.get("dagster/sensor_name"), r.tags.get("dagster/partition"))
            for r in all_runs[: len(all_runs) - backfill_runs]
        )
        day = released.day.isoformat()
        landing_runs = {key: n for key, n in launched.items() if key[0] in SENSORS[:2]}
        assert landing_runs == {
            ("billing_landing_sensor", day): 1,
            ("clickstream_landing_sensor", day): 1,
        }
        assert {name for name, _ in launched} <= {*SENSORS[:3]}, launched
