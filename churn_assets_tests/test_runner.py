"""The demo's backfill: its plan, the order its steps wait for, and a parallel run of it."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import timedelta
from functools import partial
from pathlib import Path

import dagster as dg
import pytest

from churn_assets.runner import Step, plan_backfill, plan_day, run_backfill, step_dependencies
from churn_assets_tests.support import SMALL_SETTINGS, EndToEndRun, local_definitions

REPOSITORY = Path(__file__).resolve().parents[1]
DAYS = [SMALL_SETTINGS.history_start + timedelta(days=i) for i in range(32)]


def _asset_partitions(steps: list[Step]) -> Counter:
    return Counter((asset, step.partition) for step in steps for asset in step.assets)


def test_the_backfill_plans_the_daily_work_once_in_fewer_runs() -> None:
    daily = [step for day in DAYS for step in plan_day(SMALL_SETTINGS, day)]
    backfill = plan_backfill(SMALL_SETTINGS, DAYS)
    assert _asset_partitions(backfill) == _asset_partitions(daily)
    assert max(_asset_partitions(backfill).values()) == 1
    merged = [s for s in backfill if s.assets == ("features", "labels")]
    assert merged and merged[-1].partition == DAYS[-1] - timedelta(
        days=SMALL_SETTINGS.label_maturity_days
    )


def test_each_step_waits_for_what_it_reads_and_for_the_day_before_in_sequence(
    end_to_end: EndToEndRun,
) -> None:
    steps = plan_backfill(SMALL_SETTINGS, DAYS)
    waits = step_dependencies(end_to_end.defs, steps)
    rank = {step: i for i, step in enumerate(steps)}
    assert all(rank[need] < rank[step] for step in steps for need in waits[step])

    def produced(step: Step) -> set[tuple[str, str]]:
        return {(asset, str(step.partition)) for asset in step.assets}

    def awaited(step: Step) -> set[tuple[str, str]]:
        return set().union(*(produced(need) for need in waits[step]))

    day = DAYS[10]
    window = [day - timedelta(days=i) for i in range(SMALL_SETTINGS.feature_window_days)]
    features = next(s for s in steps if "features" in s.assets and s.partition == day)
    assert {("sessions", str(d)) for d in window} | {("raw_billing", str(d)) for d in window} <= (
        awaited(features)
    )
    last_billing = day + timedelta(days=SMALL_SETTINGS.label_maturity_days)
    assert ("raw_billing", str(last_billing)) in awaited(features)  # it runs with labels of D
    assert ("raw_billing", str(last_billing + timedelta(days=1))) not in awaited(features)
    clickstream = next(s for s in steps if "raw_clickstream" in s.assets and s.partition == day)
    assert waits[clickstream] == set()
    billing = next(s for s in steps if s.assets == ("raw_billing",) and s.partition == day)
    assert awaited(billing) == {("raw_billing", str(day - timedelta(days=1)))}
    models = [s for s in steps if s.assets == ("model",)]
    assert models[0] in waits[models[1]]
    scores = next(s for s in steps if "scores" in s.assets)
    assert ("model", str(scores.partition - timedelta(days=1))) in awaited(scores)


def test_a_parallel_backfill_gives_the_results_of_the_day_by_day_run(
    end_to_end: EndToEndRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPOSITORY / "dagster.yaml", home / "dagster.yaml")  # the instance users get
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    landing = end_to_end.history.landing
    build = partial(local_definitions, tmp_path, landing, SMALL_SETTINGS)
    seen: list[Step] = []
    outcomes = run_backfill(
        build,
        SMALL_SETTINGS,
        end_to_end.history.days,
        workers=2,
        on_step=lambda o: seen.append(o.step),
    )
    planned = plan_backfill(SMALL_SETTINGS, end_to_end.history.days)
    assert sorted(seen, key=planned.index) == planned  # every step ran once
    assert [o.success for o in outcomes] == [True] * len(outcomes)

    def by_partition(run: list, asset: str) -> dict[str, dict]:
        return {o.step.partition: o.metadata[asset] for o in run if asset in o.metadata}

    for asset, field in [
        ("model", "model_version"),
        ("scores", "high_risk"),
        ("raw_clickstream", "valid"),
        ("labels", "true_rate"),
    ]:
        parallel = {day: meta[field] for day, meta in by_partition(outcomes, asset).items()}
        sequential = by_partition(end_to_end.outcomes, asset)
        assert parallel == {day: meta[field] for day, meta in sequential.items()}, asset
    with dg.DagsterInstance.get() as instance:  # the runs are on the persistent instance
        assert len(instance.get_run_ids(limit=len(planned) + 1)) == len(planned)
