"""Day-by-day materialization of the whole graph: the demo's backfill and the tests' driver.

Each day runs the way production would once that day's files have landed: the raw assets,
sessions and features of D; the labels of the day whose window D completes; the model of
D; the scores of D. Runs go through ``dagster.materialize`` against a real instance, so the
UI shows every materialization and check evaluation afterwards.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg

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
        steps.append(Step(("scores", "drift"), day))
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


@dataclass(frozen=True)
class Phase:
    steps: list[Step]
    parallel: bool


def plan_backfill(settings: PipelineSettings, days: Sequence[date]) -> list[Phase]:
    """The same steps as ``plan_day`` over ``days``, grouped into phases for a backfill.

    Billing runs day after day: its checks compare each extract with the one before (an
    account that disappears, a day that never landed). Clickstream days only compare
    volumes with a trailing median, and every input of features and labels exists once the
    raw phases are done, so those phases run in parallel. The serving phase is sequential:
    each champion gate compares with the model served the day before.
    """
    return [
        Phase([Step(("raw_billing",), day) for day in days], parallel=False),
        Phase([Step(("raw_clickstream", "sessions"), day) for day in days], parallel=True),
        Phase(
            [Step(("features",), day) for day in days]
            + [step for day in days for step in _labels_step(settings, day)],
            parallel=True,
        ),
        Phase([step for day in days for step in _serving_steps(settings, day)], parallel=False),
    ]


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


def _start_worker(build_defs: Callable[[], dg.Definitions], tags: Mapping[str, str]) -> None:
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
    """``plan_backfill`` on the persistent instance (DAGSTER_HOME), parallel phases
    ``workers`` processes wide.

    ``build_defs`` must be picklable (a module-level function or a functools.partial of one)
    because each worker process builds its own definitions.
    """
    tags = dict(tags or {})
    outcomes: list[StepOutcome] = []
    defs = build_defs()
    with (
        dg.DagsterInstance.get() as instance,
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(build_defs, tags),
        ) as pool,
    ):
        for phase in plan_backfill(settings, days):
            if phase.parallel and workers > 1:
                for outcome in pool.map(_run_in_worker, phase.steps):
                    outcomes.append(outcome)
                    if on_step is not None:
                        on_step(outcome)
            else:
                outcomes += _run_sequentially(defs, instance, phase.steps, on_step, tags)
    return outcomes
