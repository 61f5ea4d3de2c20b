"""The embedded and the Spark engine side by side on the same generated day.

    .venv/bin/python benchmarks/bench_engines.py [--events 1000000] [--master local[2]]

One day of about a million events (``generate_clickstream_day``) is written to a local
landing zone; each engine then normalises it (``raw_clickstream``: read, parse, classify,
deduplicate, account) and sessionises the events, in its own process so that the memory
peaks do not mix. Printed per engine: events per second, wall time (for Spark including
the session start-up), the peak resident memory of the Python process (and, for Spark, of
its JVM), and whether the two engines' tables are identical. Figures, not assertions: CI
does not run this (bench_pipeline.py covers the embedded engine and the daily run).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

DAY = date(2026, 3, 2)
LATENESS = timedelta(hours=2)
GAP = timedelta(minutes=30)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _jvm_peak_mb(spark: object) -> float:
    """Peak resident memory of the Spark driver JVM (VmHWM), 0 when unknown."""
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[attr-defined]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _run(engine_name: str, landing: str, master: str, queue: multiprocessing.Queue) -> None:
    from dagster_aws.s3 import S3Resource

    from churn_assets.core.landing_layout import clickstream_window
    from churn_assets.resources.landing import LandingZone
    from churn_assets.resources.warehouse import to_parquet_bytes

    figures: dict[str, float] = {}
    started = time.perf_counter()
    if engine_name == "spark":
        from churn_assets.engines.spark import SparkEngine, spark_resource

        engine = SparkEngine(pyspark=spark_resource(master))
        session = engine.pyspark.spark_session  # start-up, timed on its own
        figures["startup_s"] = time.perf_counter() - started
    else:
        from churn_assets.engines.embedded import EmbeddedEngine

        engine = EmbeddedEngine()
        figures["startup_s"] = 0.0
    zone = LandingZone(url=landing, s3=S3Resource())
    listing = zone.clickstream_objects(*clickstream_window(DAY, LATENESS))
    t0 = time.perf_counter()
    result = engine.normalise(zone, listing.objects, DAY, LATENESS)
    t1 = time.perf_counter()
    sessions = engine.sessionise(result.events, GAP)
    t2 = time.perf_counter()
    figures |= {
        "lines": result.accounting["lines_read"],
        "events": len(result.events),
        "valid": result.accounting["valid"],
        "sessions": len(sessions),
        "normalise_s": t1 - t0,
        "sessionise_s": t2 - t1,
        "wall_s": t2 - started,
        "rss_mb": _peak_rss_mb(),
        "jvm_mb": _jvm_peak_mb(session) if engine_name == "spark" else 0.0,
    }
    out = Path(landing, f"_{engine_name}")
    out.mkdir()
    (out / "events.parquet").write_bytes(to_parquet_bytes(result.events))
    (out / "quarantine.parquet").write_bytes(to_parquet_bytes(result.quarantine))
    (out / "sessions.parquet").write_bytes(to_parquet_bytes(sessions))
    (out / "accounting.txt").write_text(repr(sorted(result.accounting.items())))
    queue.put(figures)


def _in_process(engine_name: str, landing: str, master: str) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(engine_name, landing, master, queue))
    process.start()
    figures = queue.get()
    process.join()
    return figures


def _identical(landing: str) -> bool:
    import pandas as pd

    a, b = Path(landing, "_embedded"), Path(landing, "_spark")
    if (a / "accounting.txt").read_text() != (b / "accounting.txt").read_text():
        return False
    for name in ("events", "quarantine", "sessions"):
        left, right = pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet")
        try:
            pd.testing.assert_frame_equal(left, right, check_exact=True)
        except AssertionError:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    from churn_assets.core.generator import generate_clickstream_day
    from churn_assets.resources.storage import LocalObjectStore

    with tempfile.TemporaryDirectory() as landing:
        started = time.perf_counter()
        store = LocalObjectStore(landing)
        for key, data in generate_clickstream_day(DAY, args.events, seed=1):
            store.put(key, data)
        print(f"generated {args.events:,} events in {time.perf_counter() - started:.1f}s")
        runs = {
            "embedded": _in_process("embedded", landing, args.master),
            f"spark {args.master}": _in_process("spark", landing, args.master),
        }
        rows = [
            ("lines read", "lines", "{:,.0f}"),
            ("events kept (valid + anonymous)", "events", "{:,.0f}"),
            ("sessions", "sessions", "{:,.0f}"),
            ("session start-up (s)", "startup_s", "{:.1f}"),
            ("raw_clickstream normalise (s)", "normalise_s", "{:.1f}"),
            ("sessionise (s)", "sessionise_s", "{:.1f}"),
            ("wall, start-up included (s)", "wall_s", "{:.1f}"),
            ("peak RSS, Python process (MB)", "rss_mb", "{:,.0f}"),
            ("peak RSS, Spark driver JVM (MB)", "jvm_mb", "{:,.0f}"),
        ]
        names = list(runs)
        print(f"{'':34}" + "".join(f"{n:>20}" for n in names))
        for label, key, fmt in rows:
            print(f"{label:34}" + "".join(f"{fmt.format(runs[n][key]):>20}" for n in names))
        for label, numerator, denominator in (
            ("normalise: lines/s", "lines", "normalise_s"),
            ("sessionise: events/s", "events", "sessionise_s"),
            ("end to end: lines/s (wall)", "lines", "wall_s"),
        ):
            values = [runs[n][numerator] / runs[n][denominator] for n in names]
            print(f"{label:34}" + "".join(f"{v:>20,.0f}" for v in values))
        print(f"identical tables: {'yes' if _identical(landing) else 'NO'}")


if __name__ == "__main__":
    main()
