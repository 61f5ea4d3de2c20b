"""Day-by-day materialization of the whole graph: the demo's backfill and the tests' driver.

Each day runs the way production would once that day's files have landed: the raw assets,
sessions and features of D; the labels of the day whose window D completes; the model of
D; the scores of D. Runs go through ``dagster.materialize`` against a real instance, so the
UI shows every materialization and check evaluation afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg

from churn_assets.settings import PipelineSettings

INGEST = ("raw_billing", "raw_clickstream", "sessions", "features")
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


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

    @property
    def failed_checks(self) -> list[dg.AssetCheckEvaluation]:
        return [c for c in self.checks if not c.passed]


def plan_day(settings: PipelineSettings, day: date) -> list[Step]:
    """The steps that become possible once day ``day`` has landed, in dependency order."""
    steps = [Step(INGEST, day)]
    matured = day - timedelta(days=settings.label_maturity_days)
    if matured >= settings.history_start:
        steps.append(Step(("labels",), matured))
    if day >= settings.model_start:
        steps.append(Step(("model",), day))
    if day >= settings.scores_start:
        steps.append(Step(("scores",), day))
    return steps


def run_step(
    defs: dg.Definitions, instance: dg.DagsterInstance, step: Step, tags: Mapping[str, str]
) -> StepOutcome:
    assets = list(defs.assets or [])
    result = dg.materialize(
        assets,
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
    outcomes = []
    for day in days:
        for step in plan_day(settings, day):
            outcome = run_step(defs, instance, step, tags or {})
            outcomes.append(outcome)
            if on_step is not None:
                on_step(outcome)
    return outcomes
