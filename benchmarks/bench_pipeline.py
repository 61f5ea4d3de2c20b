"""Benchmark of the embedded engine and of one daily incremental run.

    .venv/bin/python benchmarks/bench_pipeline.py [--events 1000000] [--skip-daily]

Prints, for ``raw_clickstream`` (read + normalise + deduplicate + account) and
``sessions`` on one generated day of about a million events: events per second, wall
time and the peak resident memory of the process doing the work (each stage runs in its
own process so the peaks do not mix). Then the wall time of a whole daily incremental
run: after an untimed backfill of a generated history, every step of one new day (the
raw assets, sessions, features, labels of the day it matures, model, scores, drift).
Figures, not assertions: CI does not run this.
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
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(landing, queue))
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


def bench_daily_run(customers: int, days: int) -> None:
    import dagster as dg

    from churn_assets.core.generator import GeneratorConfig, generate_landing
    from churn_assets.definitions import build_definitions
    from churn_assets.engines.embedded import EmbeddedEngine
    from churn_assets.environments import storage_resources
    from churn_assets.resources.storage import LocalObjectStore
    from churn_assets.runner import plan_day, run_days, run_step
    from churn_assets.settings import PipelineSettings

    settings = PipelineSettings()
    history = [settings.history_start + timedelta(days=i) for i in range(days)]
    with tempfile.TemporaryDirectory() as root:
        config = GeneratorConfig(start=settings.history_start, days=days, customers=customers)
        generate_landing(LocalObjectStore(Path(root, "landing")).put, config)
        resources = storage_resources(
            landing_url=str(Path(root, "landing")),
            warehouse_url=str(Path(root, "warehouse")),
            model_store_url=str(Path(root, "models")),
            engine=EmbeddedEngine(),
        )
        defs = build_definitions(settings=settings, resources=resources)
        with dg.DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            run_days(defs, instance, settings, history[:-1])
            print(f"backfilled {days - 1} days in {time.perf_counter() - started:.0f}s (untimed)")
            total = 0.0
            for step in plan_day(settings, history[-1]):
                started = time.perf_counter()
                outcome = run_step(defs, instance, step, {})
                seconds = time.perf_counter() - started
                total += seconds
                status = "ok" if outcome.success else "FAILED"
                print(f"  {step.partition} {'+'.join(step.assets):<45} {seconds:5.1f}s {status}")
            print(f"daily incremental run ({customers:,} customers): {total:.1f}s wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=92, help="history of the daily-run bench")
    parser.add_argument("--skip-daily", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    bench_engine(args.events)
    if not args.skip_daily:
        bench_daily_run(args.customers, args.days)


if __name__ == "__main__":
    main()
