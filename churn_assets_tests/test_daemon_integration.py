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
FIRST_SCORES_TIMEOUT_S = 240
REDELIVERY_TIMEOUT_S = 120

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
        time.sleep(12)  # a few more ticks of every sensor: nothing may be requested again

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
