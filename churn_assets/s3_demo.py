"""``churn-assets s3-demo``: the pipeline driven by files landing in S3, nobody launching runs.

1. start a local S3 API (moto's server mode, a subprocess on 127.0.0.1) and create a bucket;
2. upload a generated landing zone through boto3, as the CRM export and Firehose would
   (clickstream objects, then each billing day's parts and its ``_SUCCESS`` last);
3. run the Dagster daemon (or ``dagster dev`` with ``--ui``) on a fresh DAGSTER_HOME with
   ``CHURN_LANDING_URL``/``CHURN_WAREHOUSE_URL``/``CHURN_MODEL_STORE_URL`` on ``s3://`` and
   ``AWS_ENDPOINT_URL`` pointing at the local server: the landing sensors request the raw
   partitions, declarative automation everything downstream;
4. stop once the scores of the last day exist (or the time budget is spent) and report
   what ran.

The graph uses small settings (horizon 2 days, grace 1, feature windows of 2 days, training
windows of 3) so a week of data reaches scores in minutes; the history ends two days ago so
every window has closed by the clock. Requires the dev extra (``moto[server]``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HISTORY_START_VARIABLE = "CHURN_DEMO_HISTORY_START"
INTERVAL_VARIABLE = "CHURN_DEMO_SENSOR_INTERVAL"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""The local server accepts any credentials; these are placeholders, not secrets."""
ASSETS = (
    "raw_billing",
    "raw_clickstream",
    "sessions",
    "features",
    "labels",
    "model",
    "scores",
    "drift",
    "call_list",
    "online_metrics",
)
CODE_LOCATION = """# Written by churn-assets s3-demo: its code location (settings: environment).
from churn_assets.s3_demo import demo_definitions

defs = demo_definitions()
"""


def demo_settings(history_start: date) -> Any:
    """Settings small enough for a week of data to reach scores (first scores on day 7)."""
    from churn_assets.core.daily_model import GatePolicy, TrainingConfig
    from churn_assets.core.tuning import TuningConfig
    from churn_assets.settings import PipelineSettings

    return PipelineSettings(
        history_start=history_start,
        horizon_days=2,
        grace_days=1,
        feature_window_days=2,
        training_window_days=3,
        training=TrainingConfig(
            validation_days=1,
            test_days=1,
            num_boost_round=30,
            early_stopping_rounds=5,
            gate=GatePolicy(auc_floor=0.0),
            tuning=TuningConfig(max_trials=1, time_budget_s=10.0),
        ),
    )


def demo_definitions() -> Any:
    """The demo's Definitions, read from the environment the demo gives its daemon."""
    import dagster as dg

    from churn_assets.definitions import build_definitions
    from churn_assets.environments import resources_for
    from churn_assets.sensors import LandingSensorSettings, build_sensors

    settings = demo_settings(date.fromisoformat(os.environ[HISTORY_START_VARIABLE]))
    base = build_definitions(settings=settings, resources=resources_for("local", os.environ))
    interval = int(os.environ.get(INTERVAL_VARIABLE, "5"))
    return dg.Definitions(
        assets=base.assets,
        asset_checks=base.asset_checks,
        sensors=build_sensors(settings, LandingSensorSettings(minimum_interval_seconds=interval)),
        resources=base.resources,
        executor=dg.in_process_executor,
    )


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_s3_server(timeout_s: float = 30.0) -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1; yields its endpoint URL."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the local S3 server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def upload_landing(client: Any, bucket: str, prefix: str, config: Any) -> dict[str, int]:
    """Generate the landing zone and upload it as the producers would; returns counts."""
    from churn_assets.core.generator import generate_landing
    from churn_assets.core.landing_layout import SUCCESS_MARKER, parse_billing_key

    files: list[tuple[str, bytes]] = []
    generate_landing(lambda key, data: files.append((key, data)), config)

    def put(item: tuple[str, bytes]) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{item[0]}", Body=item[1])

    billing = [f for f in files if f[0].startswith("billing/")]
    clickstream = [f for f in files if not f[0].startswith("billing/")]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, clickstream))
        by_day: dict[date, list[tuple[str, bytes]]] = {}
        for item in billing:
            parsed = parse_billing_key(item[0])
            if parsed is not None:
                by_day.setdefault(parsed[0], []).append(item)
        for day in sorted(by_day):  # a day's parts first, its marker last
            list(pool.map(put, [f for f in by_day[day] if not f[0].endswith(SUCCESS_MARKER)]))
            for marker in [f for f in by_day[day] if f[0].endswith(SUCCESS_MARKER)]:
                put(marker)
    return {"billing_days": len(by_day), "billing_files": len(billing), "objects": len(files)}


INSTANCE_YAML = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: {max_runs}
    dequeue_interval_seconds: 1
sensors:
  use_threads: true
  num_workers: 4
telemetry:
  enabled: false
"""
IN_PROCESS_LAUNCHER = """run_launcher:
  module: dagster._core.launcher.sync_in_memory_run_launcher
  class: SyncInMemoryRunLauncher
"""


def _summary(instance: Any, days: list[date], elapsed: float) -> str:
    import dagster as dg

    lines = [f"Finished after {elapsed:.0f}s. Materializations per asset (partitions, total):"]
    for asset in ASSETS:
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records
        partitions = Counter(r.partition_key for r in records)
        repeated = {p: n for p, n in partitions.items() if n > 1}
        note = f"  reruns: {dict(sorted(repeated.items()))}" if repeated else ""
        lines.append(f"  {asset:<16} {len(partitions):>3} {len(records):>4}{note}")
    runs = instance.get_runs()
    by_sensor = Counter(r.tags.get("dagster/sensor_name", "(manual)") for r in runs)
    statuses = Counter(r.status.value for r in runs)
    lines.append(f"Runs: {len(runs)} by {dict(by_sensor)}; status {dict(statuses)}")
    last = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("scores"), asset_partitions=[str(days[-1])]),
        limit=1,
    ).records
    if last and last[0].asset_materialization is not None:
        meta = last[0].asset_materialization.metadata
        shown = {k: meta[k].value for k in ("customers_scored", "high_risk") if k in meta}
        lines.append(f"scores[{days[-1]}]: {shown}")
    else:
        lines.append(f"scores[{days[-1]}] did not materialize within the time budget")
    return "\n".join(lines)


def run_s3_demo(args: argparse.Namespace) -> int:
    """The whole demo; returns 0 once the scores of the last day exist."""
    import boto3
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from churn_assets.core.generator import GeneratorConfig

    start = datetime.now(timezone.utc).date() - timedelta(days=args.days + 1)
    days = [start + timedelta(days=i) for i in range(args.days)]
    home = Path(args.home or tempfile.mkdtemp(prefix="churn_s3_demo_")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    launcher = IN_PROCESS_LAUNCHER if args.fast else ""
    (home / "dagster.yaml").write_text(
        INSTANCE_YAML.format(max_runs=1 if args.fast else 2) + launcher
    )
    (home / "demo_defs.py").write_text(CODE_LOCATION)
    bucket = f"churn-demo-{uuid.uuid4().hex[:8]}"
    with local_s3_server() as endpoint:
        env = {**os.environ, **LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        print(f"Local S3 API on {endpoint}, bucket s3://{bucket}")
        config = GeneratorConfig(
            start=start, days=args.days, customers=args.customers, seed=args.seed
        )
        counts = upload_landing(client, bucket, "landing", config)
        print(f"Uploaded {counts} for {days[0]} .. {days[-1]} to s3://{bucket}/landing")
        env |= {
            "DAGSTER_HOME": str(home),
            "CHURN_LANDING_URL": f"s3://{bucket}/landing",
            "CHURN_WAREHOUSE_URL": f"s3://{bucket}/warehouse",
            "CHURN_MODEL_STORE_URL": f"s3://{bucket}/models",
            HISTORY_START_VARIABLE: start.isoformat(),
            INTERVAL_VARIABLE: str(args.sensor_interval),
        }
        bin_dir = Path(sys.executable).parent
        command = (
            [str(bin_dir / "dagster"), "dev", "-f", str(home / "demo_defs.py"), "-p", "3000"]
            if args.ui
            else [str(bin_dir / "dagster-daemon"), "run", "-f", str(home / "demo_defs.py")]
        )
        log_path = home / "daemon.log"
        print(f"Starting {' '.join(command[:2])} (log: {log_path}); DAGSTER_HOME={home}")
        if args.ui:
            print("UI: http://127.0.0.1:3000 (Automation tab: the sensors' ticks)")
        started = time.monotonic()
        with log_path.open("w") as log:
            daemon = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            ref = InstanceRef.from_dir(str(home))
            with dg.DagsterInstance.from_ref(ref) as instance:
                done = _wait_for_scores(instance, daemon, days[-1], args.minutes * 60, started)
                print(_summary(instance, days, time.monotonic() - started))
        finally:
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGTERM)
                try:
                    daemon.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(daemon.pid, signal.SIGKILL)
    return 0 if done else 1


def _wait_for_scores(
    instance: Any, daemon: subprocess.Popen, last: date, budget_s: float, started: float
) -> bool:
    import dagster as dg

    seen: Counter = Counter()
    while time.monotonic() - started < budget_s:
        if daemon.poll() is not None:
            print(f"the daemon exited with code {daemon.returncode}")
            return False
        counts = Counter(
            {
                a: len(instance.fetch_materializations(dg.AssetKey(a), limit=10_000).records)
                for a in ASSETS
            }
        )
        if counts != seen:
            elapsed = time.monotonic() - started
            print(f"  {elapsed:5.0f}s " + " ".join(f"{a}={n}" for a, n in counts.items() if n))
            seen = counts
        done = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("scores"), asset_partitions=[str(last)]),
            limit=1,
        ).records
        if done:
            return True
        time.sleep(3)
    return False


def add_parser(sub: Any) -> None:
    """Registers ``s3-demo`` on the CLI's subparsers."""
    demo = sub.add_parser(
        "s3-demo",
        help="start a local S3 API, upload landing data, and let sensors + automation run it",
    )
    demo.add_argument("--days", type=int, default=8, help="days of history (>= 8 for scores)")
    demo.add_argument("--customers", type=int, default=1500)
    demo.add_argument("--seed", type=int, default=3)
    demo.add_argument("--minutes", type=float, default=15.0, help="time budget")
    demo.add_argument("--sensor-interval", type=int, default=5, help="seconds between ticks")
    demo.add_argument("--home", help="DAGSTER_HOME to use (default: a new temporary one)")
    demo.add_argument("--ui", action="store_true", help="run `dagster dev` (UI on :3000)")
    demo.add_argument(
        "--fast",
        action="store_true",
        help="execute runs inside the daemon process (test launcher) instead of one process each",
    )
    demo.set_defaults(func=run_s3_demo)
