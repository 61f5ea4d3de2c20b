"""Materialization of the whole graph over days: the tests' driver and the demo's backfill.

``run_days`` runs each day the way production would once that day's files have landed: the
raw assets, sessions and features of D; the labels of the day whose window D completes;
the model of D; the scores of D. ``run_backfill`` runs the same work several runs at a time,
each as soon as what it reads exists. Runs go through ``dagster.materialize`` against a
real instance, so the UI shows every materialization and check evaluation afterwards.
"""

from __future__ import annotations

import graphlib
import heapq
import multiprocessing
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
import sqlalchemy

from churn_assets.settings import PipelineSettings

INGEST = ("raw_billing", "raw_clickstream", "sessions", "features")
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class Step:
    assets: tuple[str, ...]
    partition: date


@dataclass
class StepOutcome:
    step: Step
    success: bool
    materialized: list[str]
    checks: list[dg.AssetCheckEvaluation]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[dg.AssetCheckEvaluation]:
        return [c for c in self.checks if not c.passed]


def _matured(settings: PipelineSettings, day: date) -> date:
    return day - timedelta(days=settings.label_maturity_days)


def _serving_steps(settings: PipelineSettings, day: date) -> list[Step]:
    """Model, scores and online metrics of ``day``: sequential, each needs the one before."""
    steps = []
    if day >= settings.model_start:
        steps.append(Step(("model",), day))
    if day >= settings.scores_start:
        steps.append(Step(("scores", "drift", "call_list"), day))
    if _matured(settings, day) >= settings.scores_start:
        steps.append(Step(("online_metrics",), _matured(settings, day)))
    return steps


def _labels_step(settings: PipelineSettings, day: date) -> list[Step]:
    matured = _matured(settings, day)
    return [Step(("labels",), matured)] if matured >= settings.history_start else []


def plan_day(settings: PipelineSettings, day: date) -> list[Step]:
    """The steps that become possible once day ``day`` has landed, in dependency order.

    Labels (and the online metrics of the scores they judge) run for the day whose label
    window day ``day`` completes.
    """
    return [Step(INGEST, day), *_labels_step(settings, day), *_serving_steps(settings, day)]


SEQUENCED = (("raw_billing",), ("model", "scores", "drift", "online_metrics"))
"""Assets whose runs go in date order although no partition mapping says so: billing checks
compare each extract with the one before, and the champion gate, scoring and drift use the
model that served the day before (read from the model store, not as an input)."""


def _features_run_with_labels(settings: PipelineSettings, day: date, last: date) -> bool:
    """Whether features[day] can wait for the labels run of ``day``: its labels are planned
    (their window ends by ``last``) and no scores or drift of ``day`` read it before then."""
    return (
        settings.history_start <= day < settings.scores_start
        and day + timedelta(days=settings.label_maturity_days) <= last
    )


def plan_backfill(settings: PipelineSettings, days: Sequence[date]) -> list[Step]:
    """The work of ``plan_day`` over consecutive ``days`` in a topological order, split so
    that independent runs can go side by side: billing alone (its runs are sequenced), then
    clickstream, sessions and features of the day (each run costs Dagster about a second
    of its own, so fewer runs go faster).

    labels[L] reads billing up to L+H+G+fallback (a missing final extract is replaced by a
    later one), so it is planned once that day is in, and the model, scores and online
    metrics, which read labels, follow ``fallback`` days behind the ingest. The features of
    a day whose labels run inside the range and that no scores read yet run with those
    labels: one run instead of two.
    """
    if not days:
        return []
    first, last = min(days), max(days)
    lag = timedelta(days=settings.label_fallback_days)

    def after_fallback(day: date) -> list[Step]:
        """Labels whose window ends ``lag`` after ``day``, then the serving steps of ``day``."""
        if day < first:
            return []
        steps = []
        for labels in _labels_step(settings, day):
            if _features_run_with_labels(settings, labels.partition, last):
                labels = Step(("features", "labels"), labels.partition)
            steps.append(labels)
        return steps + _serving_steps(settings, day)

    steps = []
    for day in days:
        clickstream = ("raw_clickstream", "sessions")
        if not _features_run_with_labels(settings, day, last):
            clickstream += ("features",)  # once billing of the day is in
        steps += [Step(("raw_billing",), day), Step(clickstream, day)]
        steps += after_fallback(day - lag)
    day = max(first, last - lag + timedelta(days=1))
    while day <= last:  # what waits on billing days past the range
        steps += after_fallback(day)
        day += timedelta(days=1)
    return steps


def step_dependencies(defs: dg.Definitions, steps: Sequence[Step]) -> dict[Step, set[Step]]:
    """For each step, the steps it must wait for: those producing the partitions its
    assets read (through the graph's own partition mappings), and the step before it in its
    ``SEQUENCED`` group."""
    asset_graph = defs.resolve_asset_graph()
    producer = {
        (asset, step.partition.isoformat()): step for step in steps for asset in step.assets
    }
    previous: dict[tuple[str, ...], Step] = {}
    dependencies: dict[Step, set[Step]] = {}
    for step in steps:
        needs: set[Step] = set()
        own = {dg.AssetKey(asset) for asset in step.assets}
        for key in own:
            for parent in asset_graph.get(key).parent_keys:  # own ones: other days' steps
                upstream = asset_graph.get_parent_partition_keys_for_child(
                    step.partition.isoformat(), parent, key
                )
                name = parent.to_user_string()
                for partition in upstream.partitions_subset.get_partition_keys():
                    if (name, partition) in producer:
                        needs.add(producer[(name, partition)])
        for group in SEQUENCED:
            if set(step.assets) & set(group):
                if group in previous:
                    needs.add(previous[group])
                previous[group] = step
        dependencies[step] = needs - {step}
    return dependencies


def run_step(
    defs: dg.Definitions, instance: dg.DagsterInstance, step: Step, tags: Mapping[str, str]
) -> StepOutcome:
    result = dg.materialize(
        list(defs.assets or []),
        selection=list(step.assets),
        partition_key=step.partition.isoformat(),
        instance=instance,
        resources=defs.resources,
        raise_on_error=False,
        run_config=QUIET_RUN_CONFIG,
        tags=dict(tags),
    )
    materializations = [
        event.event_specific_data.materialization  # type: ignore[union-attr]
        for event in result.get_asset_materialization_events()
    ]
    return StepOutcome(
        step=step,
        success=result.success,
        materialized=[m.asset_key.to_user_string() for m in materializations],
        checks=list(result.get_asset_check_evaluations()),
        metadata={
            m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
            for m in materializations
        },
        errors=[
            f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
            for event in result.get_step_failure_events()
            if event.step_failure_data.error is not None
        ],
    )


def run_days(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    settings: PipelineSettings,
    days: Sequence[date],
    on_step: Callable[[StepOutcome], None] | None = None,
    tags: Mapping[str, str] | None = None,
) -> list[StepOutcome]:
    """Run every step of every day in order; a failed step does not stop later days."""
    steps = [step for day in days for step in plan_day(settings, day)]
    return _run_sequentially(defs, instance, steps, on_step, tags or {})


def _run_sequentially(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    steps: Iterable[Step],
    on_step: Callable[[StepOutcome], None] | None,
    tags: Mapping[str, str],
) -> list[StepOutcome]:
    outcomes = []
    for step in steps:
        outcome = run_step(defs, instance, step, tags)
        outcomes.append(outcome)
        if on_step is not None:
            on_step(outcome)
    return outcomes


_worker: dict[str, Any] = {}


def _sqlite_commits_without_fsync(dbapi_connection: object, _record: object) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


def _start_worker(build_defs: Callable[[], dg.Definitions], tags: Mapping[str, str]) -> None:
    """A backfill worker: its definitions, the instance, and SQLite commits that do not wait
    for the disk. Dagster's SQLite storage commits every event on its own connection (about
    40 events a run); with ``synchronous=OFF`` a crashed process still loses nothing, only
    an OS crash can lose the last events of a re-runnable backfill. Measured: a fifth less
    wall time on a busy disk (see the README)."""
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", _sqlite_commits_without_fsync)
    _worker.update(defs=build_defs(), instance=dg.DagsterInstance.get(), tags=dict(tags))


def _run_in_worker(step: Step) -> StepOutcome:
    return run_step(_worker["defs"], _worker["instance"], step, _worker["tags"])


def run_backfill(
    build_defs: Callable[[], dg.Definitions],
    settings: PipelineSettings,
    days: Sequence[date],
    workers: int,
    on_step: Callable[[StepOutcome], None] | None = None,
    tags: Mapping[str, str] | None = None,
) -> list[StepOutcome]:
    """``plan_backfill`` on the persistent instance (DAGSTER_HOME), ``workers`` runs at a
    time: each step starts as soon as the steps it depends on have finished, those with the
    longest chain of steps waiting on them first.

    ``build_defs`` must be picklable (a module-level function or a functools.partial of one)
    because each worker process builds its own definitions. A failed step does not stop
    the others; what reads its partitions fails or warns in its own run.
    """
    steps = plan_backfill(settings, days)
    blocked = step_dependencies(build_defs(), steps)
    dependents: dict[Step, list[Step]] = {step: [] for step in steps}
    for step, needs in blocked.items():
        for need in needs:
            dependents[need].append(step)
    # List scheduling: the step with the longest chain of steps waiting on it goes first
    # (the billing chain, then what the models read), ties to the earliest.
    chain: dict[Step, int] = {}
    for step in reversed(list(graphlib.TopologicalSorter(blocked).static_order())):
        chain[step] = 1 + max((chain[d] for d in dependents[step]), default=0)
    rank = {step: (-chain[step], index) for index, step in enumerate(steps)}
    ready = [(rank[step], step) for step in steps if not blocked[step]]
    heapq.heapify(ready)
    running: dict[Future[StepOutcome], Step] = {}
    outcomes: list[StepOutcome] = []
    with (
        dg.DagsterInstance.get(),  # creates the storage once, before the workers open it
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(build_defs, dict(tags or {})),
        ) as pool,
    ):
        while ready or running:
            while ready and len(running) < workers:
                step = heapq.heappop(ready)[1]
                running[pool.submit(_run_in_worker, step)] = step
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                outcomes.append(future.result())
                if on_step is not None:
                    on_step(outcomes[-1])
                for dependent in dependents[step]:
                    blocked[dependent].discard(step)
                    if not blocked[dependent]:
                        heapq.heappush(ready, (rank[dependent], dependent))
    return outcomes
