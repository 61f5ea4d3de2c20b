"""The Spark engine on a standalone cluster: a master and a worker on 127.0.0.1, started
from the pyspark installation, run the ingest assets through dagster.materialize.

Each run starts its own Spark application on the cluster (one session per run, shared by
raw_clickstream, sessions and the activity aggregation of features) and stops it at the
end; every table equals the one the embedded engine writes for the same days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from pyspark import SparkContext

from churn_assets.core.generator import Fault
from churn_assets.engines.embedded import EmbeddedEngine
from churn_assets.engines.spark import SparkEngine, spark_resource
from churn_assets.resources.warehouse import ParquetWarehouse
from churn_assets.runner import INGEST, Step, StepOutcome, run_step
from churn_assets_tests.spark_support import StandaloneCluster, standalone_cluster, stop_spark
from churn_assets_tests.support import (
    HISTORY_START,
    SMALL_SETTINGS,
    GeneratedHistory,
    generate_history,
    local_definitions,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    stop_spark()  # one SparkContext per process: no local session beside the cluster's
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster"), cores=2) as running:
        yield running
    stop_spark()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> GeneratedHistory:
    history = generate_history(
        tmp_path_factory.mktemp("cluster-landing"),
        days=3,
        customers=300,
        faults=(Fault("late_events", HISTORY_START),),
    )
    # A truncated object: Hadoop fails the read on the executor, the gzip test runs in the
    # executors' Python, and the job is read again without it.
    some = sorted((history.landing / "clickstream/2026/01/01").rglob("*.gz"))[3]
    cut = some.with_name(some.name.replace(".gz", "-cut.gz"))
    cut.write_bytes(some.read_bytes()[:100])
    return history


def _ingest_days(
    engine: Any, landing: Path, root: Path, days: list[date]
) -> tuple[ParquetWarehouse, list[StepOutcome]]:
    """The ingest run of each day (``runner.INGEST``) on ``engine``, into ``root``."""
    defs = local_definitions(root, landing, SMALL_SETTINGS, engine=engine)
    with dg.DagsterInstance.ephemeral() as instance:
        outcomes = [run_step(defs, instance, Step(INGEST, day), {}) for day in days]
    return defs.resources["io_manager"], outcomes


def test_the_ingest_assets_on_a_standalone_cluster_equal_the_embedded_engine(
    cluster: StandaloneCluster, history: GeneratedHistory, tmp_path: Path
) -> None:
    seen: list[tuple[str, str, str]] = []

    class RecordingEngine(SparkEngine):
        """The Spark engine, noting which application and master each call ran on."""

        def _record(self, work: str) -> None:
            context = self.pyspark.spark_session.sparkContext
            seen.append((work, context.applicationId, context.master))

        def normalise(self, landing: Any, objects: Any, partition: Any, lateness: Any) -> Any:
            self._record("normalise")
            return super().normalise(landing, objects, partition, lateness)

        def sessionise(self, events: pd.DataFrame, gap: timedelta) -> pd.DataFrame:
            self._record("sessionise")
            return super().sessionise(events, gap)

        def customer_activity(self, sessions: Any, as_of: date, window_days: int) -> Any:
            self._record("customer_activity")
            return super().customer_activity(sessions, as_of, window_days)

    days = history.days
    spark = RecordingEngine(pyspark=spark_resource(cluster.master_url))
    on_spark, spark_runs = _ingest_days(spark, history.landing, tmp_path / "spark", days)
    embedded, embedded_runs = _ingest_days(
        EmbeddedEngine(), history.landing, tmp_path / "embedded", days
    )
    assert all(run.success for run in spark_runs + embedded_runs)
    assert SparkContext._active_spark_context is None  # each run stopped its session

    per_run = [seen[i : i + 3] for i in range(0, len(seen), 3)]
    assert [[work for work, _, _ in run] for run in per_run] == [
        ["normalise", "sessionise", "customer_activity"]
    ] * len(days)
    applications = [{app for _, app, _ in run} for run in per_run]
    assert all(len(apps) == 1 for apps in applications)  # one session per run, for all assets
    assert len(set.union(*applications)) == len(days)  # and a new one for the next run
    assert {master for _, _, master in seen} == {cluster.master_url}
    finished = {app["id"] for app in cluster.status()["completedapps"]}
    assert set.union(*applications) <= finished  # the applications ran on this cluster

    rows: Counter[str] = Counter()
    for asset in INGEST:
        for day in days:
            prefix = ParquetWarehouse.partition_prefix([asset], str(day))
            expected, got = embedded.read_tables(prefix), on_spark.read_tables(prefix)
            assert expected is not None and got is not None, (asset, day)
            expected = expected if isinstance(expected, dict) else {"": expected}
            got = got if isinstance(got, dict) else {"": got}
            assert expected.keys() == got.keys()
            for name in expected:
                pd.testing.assert_frame_equal(expected[name], got[name], check_exact=True)
                rows[f"{asset}.{name}".rstrip(".")] += len(expected[name])
    assert min(rows.values()) > 0, rows  # no table compared empty (quarantine included)
    unreadable = [run.metadata["raw_clickstream"]["objects_unreadable"] for run in spark_runs]
    assert sum(unreadable) == 1
