"""The production shape end to end: PostgreSQL, S3, code server, webserver and daemon apart.

``churn_assets.stack.running_stack`` starts what ``churn-assets stack`` starts, each service
its own process: a throwaway PostgreSQL cluster (the instance's runs, event log and sensor
cursors), moto's S3 server, the code server (every run a process it starts: the default run
launcher), the webserver and the daemon (both load the code from the code server). A week
of generated landing data is uploaded through boto3 as the producers write it; nobody
launches a run. In the middle of the days the daemon is restarted, then the code server
(and the daemon) while a run executes. Once the last day's scores exist, every service but
S3 is restarted (PostgreSQL included), and the sensors tick again against what PostgreSQL
kept.

Asserted: every landing partition materialized exactly once, each landing day requested
once (unique run keys), the run in flight when the code server was stopped
finished, no run left queued or started, and after the full restart the same runs and
materializations and no new run over several ticks of every sensor. All through public
APIs: ``DagsterInstance.get()`` and the webserver's GraphQL endpoint.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from churn_assets.core.generator import GeneratorConfig
from churn_assets.s3_demo import ASSETS, HISTORY_START_VARIABLE, INTERVAL_VARIABLE, upload_landing
from churn_assets.stack import (
    BUCKET,
    SAMPLE_CODE_LOCATION,
    Stack,
    running_stack,
    s3_client,
    sample_history_start,
)

pytestmark = pytest.mark.stack_integration  # opt-in: `make stack-test` (see README)

DAYS = 8  # as in test_daemon_integration: the serving model of the last day is the day before's
CUSTOMERS = 600
SEED = 5
SCORES_TIMEOUT_S = 1500  # generous: on a loaded 2-core machine runs queue for minutes
SENSORS = ("billing_landing_sensor", "clickstream_landing_sensor", "churn_automation_sensor")
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    start = sample_history_start(DAYS)
    extra = {HISTORY_START_VARIABLE: start.isoformat(), INTERVAL_VARIABLE: "5"}
    with running_stack(tmp_path, SAMPLE_CODE_LOCATION, extra) as running:
        # this process reads the same instance: DAGSTER_HOME, the PostgreSQL and S3 settings
        for name, value in running.env.items():
            if name.startswith(("DAGSTER_", "AWS_", "CHURN_")):
                monkeypatch.setenv(name, value)
        yield running


def wait_until(stack: Stack, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        for service in stack.services.values():
            if not service.running:
                pytest.fail(f"{service.name} exited while waiting for {what}:\n{service.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout_s}s:\n{stack.services['daemon'].tail()}")
        time.sleep(2)


def materialized(instance: dg.DagsterInstance, asset: str) -> Counter:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records
    return Counter(r.partition_key for r in records)


def runs_with(instance: dg.DagsterInstance, statuses: list[dg.DagsterRunStatus]) -> list[Any]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=statuses)))


def sensor_ticks(stack: Stack, sensor: str) -> int:
    """Ticks of ``sensor`` that the webserver reads from PostgreSQL (its GraphQL API)."""
    query = """query ($selector: SensorSelector!) {
      sensorOrError(sensorSelector: $selector) {
        __typename ... on Sensor { sensorState { ticks(limit: 1000) { id } } }
      }
    }"""
    selector = {
        "repositoryLocationName": "churn_assets",
        "repositoryName": "__repository__",
        "sensorName": sensor,
    }
    body = json.dumps({"query": query, "variables": {"selector": selector}}).encode()
    request = urllib.request.Request(
        f"{stack.webserver_url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)["data"]["sensorOrError"]
    assert answer["__typename"] == "Sensor", answer
    return len(answer["sensorState"]["ticks"])


def test_files_in_s3_end_in_scores_through_postgres_across_restarts_of_every_service(
    stack: Stack,
) -> None:
    start = sample_history_start(DAYS)
    days = [(start + timedelta(days=i)).isoformat() for i in range(DAYS)]
    config = GeneratorConfig(
        start=start, days=DAYS, customers=CUSTOMERS, seed=SEED, horizon_days=2, grace_days=1
    )
    upload_landing(s3_client(stack.env), BUCKET, "landing", config)

    with dg.DagsterInstance.get() as instance:
        # the daemon goes down and comes back once the first days have landed
        wait_until(stack, lambda: len(materialized(instance, "raw_billing")) >= 2, 300, "billing")
        stack.restart("daemon")

        # the code server is stopped while it executes a run (the daemon with it, so that
        # nothing is launched into a server that refuses runs): the run finishes, the
        # server exits, a new one serves the next runs
        wait_until(
            stack,
            lambda: bool(runs_with(instance, [dg.DagsterRunStatus.STARTED])),
            300,
            "run in flight",
        )
        in_flight = [r.run_id for r in runs_with(instance, [dg.DagsterRunStatus.STARTED])]
        stack.restart("code-server", "daemon")

        wait_until(
            stack,
            lambda: materialized(instance, "scores")[days[-1]] >= 1,
            SCORES_TIMEOUT_S,
            f"scores for {days[-1]}",
        )
        wait_until(stack, lambda: not runs_with(instance, UNFINISHED), 300, "idle run queue")

        # a run either succeeded or stopped on the data (a blocking check: the partial day
        # after the history fails its volume check); none was lost to a restart
        runs = instance.get_runs()
        outcomes = {r.run_id: (r.status, r.tags.get("dagster/failure_reason")) for r in runs}
        assert set(outcomes.values()) <= {
            (dg.DagsterRunStatus.SUCCESS, None),
            (dg.DagsterRunStatus.FAILURE, "STEP_FAILURE"),
        }, outcomes
        assert in_flight and set(in_flight) <= set(outcomes)  # it ran on across the restart
        assert Counter(status for status, _ in outcomes.values())[dg.DagsterRunStatus.SUCCESS] > 0
        by_sensor = Counter(r.tags.get("dagster/sensor_name") for r in runs)
        assert set(by_sensor) == set(SENSORS)
        assert by_sensor["billing_landing_sensor"] == DAYS
        run_keys = [r.tags["dagster/run_key"] for r in runs if "dagster/run_key" in r.tags]
        assert len(run_keys) == len(set(run_keys))

        # the landing layer once per delivery (automation may rerun a derived partition when
        # an input changed, so derived counts are compared across the full restart below)
        counts = {asset: materialized(instance, asset) for asset in ASSETS}
        for asset in ("raw_billing", "raw_clickstream"):
            assert all(n == 1 for n in counts[asset].values()), (asset, counts[asset])
        for asset in ("raw_billing", "raw_clickstream", "sessions", "features"):
            assert set(days) <= set(counts[asset]), asset
        assert counts["model"]  # a model was trained and stored on S3 by a run process

        # every service but S3 stops and starts again, PostgreSQL included
        ticks = {sensor: sensor_ticks(stack, sensor) for sensor in SENSORS}
        stack.restart("postgres", "code-server", "webserver", "daemon")
        assert {r.run_id: r.status for r in instance.get_runs()} == {
            r.run_id: r.status for r in runs
        }
        wait_until(
            stack,
            lambda: all(sensor_ticks(stack, s) >= ticks[s] + 3 for s in SENSORS),
            300,
            "three ticks of every sensor after the restart",
        )
        assert len(instance.get_runs()) == len(runs)
        assert {asset: materialized(instance, asset) for asset in ASSETS} == counts
