"""Benchmark of the embedded engine and of one daily incremental run at scale.

    .venv/bin/python benchmarks/bench_pipeline.py [--events 1000000] [--skip-daily]
    .venv/bin/python benchmarks/bench_pipeline.py --skip-engine --customers 100000 \
        --days 116 --history-events 0.5 --day-lines 5400000

Prints, for ``raw_clickstream`` (read + normalise + deduplicate + account) and
``sessions`` on one generated day of about a million events: events per second, wall
time and the peak resident memory of the process doing the work (each stage runs in its
own process so the peaks do not mix).

Then one full incremental day at ``--customers`` (default 100,000): a generated history
of ``--days`` days whose earlier days are lighter (``--history-events`` events per active
customer a day) and whose last day carries about ``--day-lines`` clickstream lines, an
untimed backfill of every day but the last (``run_backfill``, as the demo), then each
asset of the last day (raw_billing, raw_clickstream, sessions, features over 28 days, the
labels that day completes, model, scores, drift) in its own process on the same instance:
wall time and peak RSS per asset. The history must reach the first scores day (116 days
with the default settings). At 100,000 customers the untimed part takes long (every
earlier day is a full billing extract); figures, not assertions: CI does not run this.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

DAY = date(2026, 3, 2)
LATENESS = timedelta(hours=2)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stage_clickstream(landing: str, queue: multiprocessing.Queue) -> None:
    from dagster_aws.s3 import S3Resource

    from churn_assets.core.landing_layout import clickstream_window
    from churn_assets.engines.embedded import EmbeddedEngine
    from churn_assets.resources.landing import LandingZone
    from churn_assets.resources.warehouse import to_parquet_bytes

    zone = LandingZone(url=landing, s3=S3Resource())
    started = time.perf_counter()
    listing = zone.clickstream_objects(*clickstream_window(DAY, LATENESS))
    result = EmbeddedEngine().normalise(zone, listing.objects, DAY, LATENESS)
    seconds = time.perf_counter() - started
    Path(landing, "events.parquet").write_bytes(to_parquet_bytes(result.events))
    queue.put((result.accounting["lines_read"], len(result.events), seconds, _peak_rss_mb()))


def _stage_sessions(landing: str, queue: multiprocessing.Queue) -> None:
    import pandas as pd

    from churn_assets.engines.embedded import EmbeddedEngine

    events = pd.read_parquet(Path(landing, "events.parquet"))
    started = time.perf_counter()
    sessions = EmbeddedEngine().sessionise(events, timedelta(minutes=30))
    seconds = time.perf_counter() - started
    queue.put((len(events), len(sessions), seconds, _peak_rss_mb()))


def _in_process(target, landing: str) -> tuple:
    return _in_process_args(target, (landing,))


def _in_process_args(target, args: tuple) -> tuple:
    """``target(*args, queue)`` in a fresh spawned process: its own peak memory."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    outcome = queue.get()
    process.join()
    return outcome


def bench_engine(n_events: int) -> None:
    from churn_assets.core.generator import generate_clickstream_day
    from churn_assets.resources.storage import LocalObjectStore

    with tempfile.TemporaryDirectory() as landing:
        started = time.perf_counter()
        store = LocalObjectStore(landing)
        for key, data in generate_clickstream_day(DAY, n_events, seed=1):
            store.put(key, data)
        print(f"generated {n_events:,} events in {time.perf_counter() - started:.1f}s")
        lines, events, seconds, rss = _in_process(_stage_clickstream, landing)
        print(
            f"raw_clickstream  {lines:>10,} lines  {seconds:6.1f}s  "
            f"{lines / seconds:>10,.0f} lines/s  peak RSS {rss:,.0f} MB  ({events:,} events kept)"
        )
        events, sessions, seconds, rss = _in_process(_stage_sessions, landing)
        print(
            f"sessions         {events:>10,} events {seconds:6.1f}s  "
            f"{events / seconds:>10,.0f} events/s peak RSS {rss:,.0f} MB  ({sessions:,} sessions)"
        )


def _bench_day_step(assets: tuple[str, ...], day: date, root: str, queue: multiprocessing.Queue):
    """One asset of the measured day, in a fresh process on the benchmark's instance."""
    import dagster as dg

    from churn_assets.cli import quiet_definitions
    from churn_assets.runner import Step, run_step
    from churn_assets.settings import PipelineSettings

    _use_root(root)
    defs = quiet_definitions(PipelineSettings(), "local")
    baseline = _peak_rss_mb()
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        outcome = run_step(defs, instance, Step(assets, day), {})
        seconds = time.perf_counter() - started
    queue.put((outcome.success, outcome.errors[:1], seconds, baseline, _peak_rss_mb()))


def _use_root(root: str) -> None:
    """Point the local environment's resources and the Dagster instance at ``root``."""
    os.environ["DAGSTER_HOME"] = str(Path(root, "home"))
    os.environ["CHURN_LANDING_URL"] = str(Path(root, "landing"))
    os.environ["CHURN_WAREHOUSE_URL"] = str(Path(root, "warehouse"))
    os.environ["CHURN_MODEL_STORE_URL"] = str(Path(root, "models"))


def _generate_history(
    root: str, customers: int, days: int, history_events: float, day_lines: int
) -> date:
    """A light history of ``days`` days, then about ``day_lines`` more clickstream lines on
    the last day (``generate_clickstream_day`` draws 7 events per customer: several draws
    with their own seeds over the same ids C0000000..). Returns the last day."""
    from churn_assets.core.generator import (
        GeneratorConfig,
        generate_clickstream_day,
        generate_landing,
    )
    from churn_assets.resources.storage import LocalObjectStore
    from churn_assets.settings import PipelineSettings

    start = PipelineSettings().history_start
    last = start + timedelta(days=days - 1)
    store = LocalObjectStore(Path(root, "landing"))
    started = time.perf_counter()
    config = GeneratorConfig(
        start=start, days=days, customers=customers, events_per_active_customer_day=history_events
    )
    generate_landing(store.put, config)
    for seed in range(max(1, round(day_lines / (7 * customers)))):
        for key, data in generate_clickstream_day(last, 7 * customers, seed=100 + seed):
            store.put(key, data)
    print(
        f"generated {days} days for {customers:,} customers in {time.perf_counter() - started:.0f}s"
    )
    return last


def bench_daily_run(
    customers: int, days: int, history_events: float, day_lines: int, workers: int
) -> None:
    """The whole graph for one new day after a backfill of the days before it."""
    from functools import partial

    from churn_assets.cli import ensure_dagster_home, quiet_definitions
    from churn_assets.runner import plan_day, run_backfill
    from churn_assets.settings import PipelineSettings

    settings = PipelineSettings()
    first_scores = (settings.scores_start - settings.history_start).days + 1
    if days < first_scores:
        print(f"note: model and scores start with a history of {first_scores} days")
    with tempfile.TemporaryDirectory() as root:
        _use_root(root)
        Path(root, "home").mkdir()
        os.chdir(Path(__file__).resolve().parents[1])  # the repository's dagster.yaml
        ensure_dagster_home()
        last = _generate_history(root, customers, days, history_events, day_lines)
        history = [settings.history_start + timedelta(days=i) for i in range(days - 1)]
        started = time.perf_counter()
        outcomes = run_backfill(
            partial(quiet_definitions, settings=settings, environment="local"),
            settings,
            history,
            workers=workers,
        )
        failed = [o for o in outcomes if not o.success]
        print(
            f"backfilled {len(history)} days in {time.perf_counter() - started:.0f}s "
            f"({len(outcomes)} runs, {len(failed)} failed; untimed)"
        )
        for outcome in failed[:5]:
            print(f"  failed: {outcome.step.partition} {'+'.join(outcome.step.assets)}")
            print(f"    {outcome.errors[:1]} {[c.check_name for c in outcome.failed_checks]}")
        print(f"day {last}, each asset in its own process:")
        total, peak = 0.0, 0.0
        for step in plan_day(settings, last):
            for asset in step.assets:
                ok, errors, seconds, baseline, rss = _in_process_args(
                    _bench_day_step, ((asset,), step.partition, root)
                )
                total += seconds
                peak = max(peak, rss)
                status = "ok" if ok else f"FAILED {errors}"
                print(
                    f"  {asset:<16} [{step.partition}] {seconds:6.1f}s  peak RSS "
                    f"{rss:7,.0f} MB (imports {baseline:,.0f} MB)  {status}"
                )
        print(
            f"daily incremental run ({customers:,} customers, ~{day_lines:,} lines): "
            f"{total:.1f}s wall in the assets, peak RSS {peak:,.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-engine", action="store_true")
    parser.add_argument("--skip-daily", action="store_true")
    daily = parser.add_argument_group("daily run")
    daily.add_argument("--customers", type=int, default=100_000)
    daily.add_argument("--days", type=int, default=116, help="history, the measured day last")
    daily.add_argument(
        "--history-events",
        type=float,
        default=0.5,
        help="clickstream events per active customer per day before the measured day",
    )
    daily.add_argument("--day-lines", type=int, default=5_400_000, help="lines of the last day")
    daily.add_argument("--workers", type=int, default=2, help="runs at a time in the backfill")
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    if not args.skip_engine:
        bench_engine(args.events)
    if not args.skip_daily:
        bench_daily_run(
            args.customers, args.days, args.history_events, args.day_lines, args.workers
        )


if __name__ == "__main__":
    main()
