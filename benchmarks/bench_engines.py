"""The clickstream engines side by side with a plain DuckDB SQL baseline, on one generated day.

    .venv/bin/python benchmarks/bench_engines.py [--events 5400000] [--engines embedded,sql]
                                                 [--master local[2]]

One day (``generate_clickstream_day``; 5,400,000 events is the issue's 100,000-customer day)
is written to a local landing zone. Each engine then runs what ``raw_clickstream`` and
``sessions`` do (read, parse, classify, deduplicate, account; sessionise; write the events,
quarantine and sessions as Parquet), in its own process so that memory peaks do not mix.
``sql`` is the baseline a data engineer would write in an afternoon: DuckDB reading the gzip
objects itself (``read_ndjson``), normalising, deduplicating and sessionising in SQL and
``COPY``-ing Parquet; it is not strict about the contract (no line numbers, no quarantine
reasons), so it is a throughput reference, not a replacement.

Printed per engine and stage: wall time, lines per second, peak resident memory of the stage
(the kernel's high-water mark, reset before each stage), and cores used (CPU time / wall).
Figures, not assertions: CI does not run this. On a shared machine every absolute figure is
inflated; compare engines measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

DAY = date(2026, 3, 2)
LATENESS = timedelta(hours=2)
GAP = timedelta(minutes=30)
STAGES = ("normalise", "sessionise", "write_parquet")


def _reset_peak() -> None:
    """Reset the kernel's peak RSS of this process (Linux: clear_refs 5), if allowed."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stage(figures: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    _reset_peak()
    wall, cpu = time.perf_counter(), _cpu_s()
    out = work()
    figures[f"{name}_s"] = time.perf_counter() - wall
    figures[f"{name}_cores"] = (_cpu_s() - cpu) / max(figures[f"{name}_s"], 1e-9)
    figures[f"{name}_mb"] = _peak_mb()
    return out


def _jvm_peak_mb(spark: object) -> float:
    """Peak resident memory of the Spark driver JVM (VmHWM), 0 when unknown."""
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()  # type: ignore[attr-defined]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _run_engine(engine_name: str, landing: str, master: str) -> dict[str, float]:
    from dagster_aws.s3 import S3Resource

    from churn_assets.core.landing_layout import clickstream_window
    from churn_assets.resources.landing import LandingZone
    from churn_assets.resources.warehouse import to_parquet_bytes

    figures: dict[str, float] = {}
    started = time.perf_counter()
    if engine_name == "spark":
        from churn_assets.engines.spark import SparkEngine, spark_resource

        engine: Any = SparkEngine(pyspark=spark_resource(master))
        session = engine.pyspark.spark_session  # start-up, timed on its own
    else:
        from churn_assets.engines.embedded import EmbeddedEngine

        engine = EmbeddedEngine()
    figures["startup_s"] = time.perf_counter() - started
    zone = LandingZone(url=landing, s3=S3Resource())
    listing = zone.clickstream_objects(*clickstream_window(DAY, LATENESS), LATENESS)
    result = _stage(
        figures, "normalise", lambda: engine.normalise(zone, listing.objects, DAY, LATENESS)
    )
    sessions = _stage(figures, "sessionise", lambda: engine.sessionise(result.events, GAP))
    out = Path(landing, f"_{engine_name}")
    out.mkdir()

    def write() -> None:
        (out / "events.parquet").write_bytes(to_parquet_bytes(result.events))
        (out / "quarantine.parquet").write_bytes(to_parquet_bytes(result.quarantine))
        (out / "sessions.parquet").write_bytes(to_parquet_bytes(sessions))

    _stage(figures, "write_parquet", write)
    (out / "accounting.txt").write_text(repr(sorted(result.accounting.items())))
    figures |= {
        "lines": result.accounting["lines_read"],
        "valid": result.accounting["valid"],
        "sessions": len(sessions),
        "wall_s": time.perf_counter() - started,
        "jvm_mb": _jvm_peak_mb(session) if engine_name == "spark" else 0.0,
    }
    return figures


BASELINE_SQL = """
CREATE TABLE raw AS
SELECT filename, event_id, event, ts, customerId, props, event_type, timestamp_ms,
       "user", context
FROM read_ndjson('{glob}', filename = true, ignore_errors = true, compression = 'gzip',
                 columns = {{event_id: 'VARCHAR', event: 'VARCHAR', ts: 'VARCHAR',
                             customerId: 'VARCHAR', props: 'VARCHAR', event_type: 'VARCHAR',
                             timestamp_ms: 'BIGINT', "user": 'VARCHAR', context: 'VARCHAR'}});
CREATE TABLE events AS
WITH norm AS (
  SELECT filename, event_id,
         CASE coalesce(event, event_type)
           WHEN 'page_view' THEN 'page_view' WHEN 'ui.page_view' THEN 'page_view'
           WHEN 'hover' THEN 'hover' WHEN 'ui.hover' THEN 'hover'
           WHEN 'click' THEN 'click' WHEN 'ui.click' THEN 'click'
           WHEN 'support_chat' THEN 'support_contact'
           WHEN 'support.contact' THEN 'support_contact' END AS event_type,
         coalesce(try_cast(ts AS TIMESTAMPTZ), make_timestamp(timestamp_ms * 1000)::TIMESTAMPTZ)
           AS event_time,
         nullif(upper(trim(coalesce(customerId, json_extract_string("user", '$.customer_id')))),
                '') AS customer_id,
         coalesce(json_extract_string(props, '$.element'),
                  json_extract_string(context, '$.element.id')) AS element
  FROM raw
)
SELECT * EXCLUDE (rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY filename) AS rn FROM norm
  WHERE event_type IS NOT NULL AND event_time IS NOT NULL
    AND epoch_ms(event_time) // 86400000 = {day_number}
) WHERE rn = 1;
CREATE TABLE sessions AS
WITH ordered AS (
  SELECT *, CASE WHEN lag(event_time) OVER w IS NULL
                   OR event_time - lag(event_time) OVER w > INTERVAL 30 MINUTE
                 THEN 1 ELSE 0 END AS new_session
  FROM events WHERE customer_id IS NOT NULL
  WINDOW w AS (PARTITION BY customer_id ORDER BY event_time, event_id)
), numbered AS (
  SELECT *, sum(new_session) OVER (PARTITION BY customer_id ORDER BY event_time, event_id
                                   ROWS UNBOUNDED PRECEDING) AS session_no
  FROM ordered
)
SELECT customer_id, session_no, min(event_time) AS session_start,
       max(event_time) AS session_end, count(*) AS n_events,
       count(*) FILTER (WHERE event_type = 'page_view') AS n_page_views,
       count(*) FILTER (WHERE event_type = 'hover') AS n_hovers,
       count(*) FILTER (WHERE event_type = 'click') AS n_clicks,
       count(*) FILTER (WHERE lower(element) LIKE 'subscribe%') AS n_subscribe
FROM numbered GROUP BY customer_id, session_no;
"""


def _run_sql_baseline(landing: str) -> dict[str, float]:
    import duckdb

    figures: dict[str, float] = {"startup_s": 0.0}
    started = time.perf_counter()
    out = Path(landing, "_sql")
    out.mkdir()
    con = duckdb.connect(str(out / "baseline.duckdb"))
    normalise_sql, sessions_sql = BASELINE_SQL.split("CREATE TABLE sessions")
    glob = f"{landing}/clickstream/**/*.gz"
    day_number = (DAY - date(1970, 1, 1)).days
    normalise = normalise_sql.format(glob=glob, day_number=day_number)
    _stage(figures, "normalise", lambda: con.execute(normalise))
    _stage(figures, "sessionise", lambda: con.execute("CREATE TABLE sessions" + sessions_sql))

    def write() -> None:
        for table in ("events", "sessions"):
            con.execute(f"COPY {table} TO '{out / table}.parquet' (FORMAT parquet)")

    _stage(figures, "write_parquet", write)
    figures |= {
        "lines": con.execute("SELECT count(*) FROM raw").fetchone()[0],  # parsed lines only
        "valid": con.execute("SELECT count(*) FROM events").fetchone()[0],
        "sessions": con.execute("SELECT count(*) FROM sessions").fetchone()[0],
        "wall_s": time.perf_counter() - started,
        "jvm_mb": 0.0,
    }
    con.close()
    return figures


def _child(engine_name: str, landing: str, master: str, queue: multiprocessing.Queue) -> None:
    if engine_name == "sql":
        queue.put(_run_sql_baseline(landing))
    else:
        queue.put(_run_engine(engine_name, landing, master))


def _in_process(engine_name: str, landing: str, master: str) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(engine_name, landing, master, queue))
    process.start()
    while True:  # a child that dies (an engine error) must not leave us waiting forever
        try:
            figures = queue.get(timeout=5)
            break
        except Exception:  # queue.Empty
            if not process.is_alive():
                raise RuntimeError(f"{engine_name} failed (exit code {process.exitcode})") from None
    process.join()
    return figures


def _identical(landing: str, a_name: str, b_name: str) -> bool:
    import pandas as pd

    a, b = Path(landing, f"_{a_name}"), Path(landing, f"_{b_name}")
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
    parser.add_argument("--engines", default="embedded,sql,spark")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    from churn_assets.core.generator import generate_clickstream_day
    from churn_assets.resources.storage import LocalObjectStore

    with tempfile.TemporaryDirectory() as landing:
        started = time.perf_counter()
        store = LocalObjectStore(landing)
        for key, data in generate_clickstream_day(DAY, args.events, seed=1):
            store.put(key, data)
        size = sum(p.stat().st_size for p in Path(landing).rglob("*.gz"))
        print(
            f"generated {args.events:,} events ({size / 2**20:,.0f} MiB gzip) in "
            f"{time.perf_counter() - started:.1f}s; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores"
        )
        names = [n.strip() for n in args.engines.split(",") if n.strip()]
        runs = {name: _in_process(name, landing, args.master) for name in names}
        print(f"{'':36}" + "".join(f"{n:>16}" for n in names))

        def row(label: str, value: Callable[[dict[str, float]], float], fmt: str) -> None:
            print(f"{label:36}" + "".join(f"{fmt.format(value(runs[n])):>16}" for n in names))

        row("lines read", lambda f: f["lines"], "{:,.0f}")
        row("valid events", lambda f: f["valid"], "{:,.0f}")
        row("sessions", lambda f: f["sessions"], "{:,.0f}")
        row("start-up (s)", lambda f: f["startup_s"], "{:.1f}")
        for stage in STAGES:
            row(f"{stage}: wall (s)", lambda f, s=stage: f[f"{s}_s"], "{:.1f}")
            row(f"{stage}: lines/s", lambda f, s=stage: f["lines"] / f[f"{s}_s"], "{:,.0f}")
            row(f"{stage}: peak RSS (MB)", lambda f, s=stage: f[f"{s}_mb"], "{:,.0f}")
            row(f"{stage}: cores used", lambda f, s=stage: f[f"{s}_cores"], "{:.2f}")
        row("all stages: wall (s)", lambda f: sum(f[f"{s}_s"] for s in STAGES), "{:.1f}")
        row(
            "all stages: lines/s",
            lambda f: f["lines"] / sum(f[f"{s}_s"] for s in STAGES),
            "{:,.0f}",
        )
        row("peak RSS, Spark driver JVM (MB)", lambda f: f["jvm_mb"], "{:,.0f}")
        if "embedded" in runs and "spark" in runs:
            same = _identical(landing, "embedded", "spark")
            print(f"embedded and spark tables identical: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
