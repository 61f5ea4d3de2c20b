"""The demo's backfill: its plan, the order its steps wait for, and a parallel run of it."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from churn_assets.core.generator import Fault
from churn_assets.resources.warehouse import ParquetWarehouse
from churn_assets.runner import (
    Step,
    StepOutcome,
    plan_backfill,
    plan_day,
    run_backfill,
    run_step,
    step_dependencies,
)
from churn_assets.settings import PipelineSettings
from churn_assets.summary import DemoProgress, rejected_by_gate
from churn_assets_tests.support import (
    SMALL_SETTINGS,
    EndToEndRun,
    generate_history,
    local_definitions,
)

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


@pytest.fixture(scope="module")
def production_graph(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    root = tmp_path_factory.mktemp("graph")
    return local_definitions(root, root / "landing", PipelineSettings())


@pytest.mark.parametrize("history_days", [120, 176, 365, 730])
def test_every_step_of_a_long_backfill_comes_after_all_it_depends_on(
    production_graph: dg.Definitions, history_days: int
) -> None:
    settings = PipelineSettings()
    days = [settings.history_start + timedelta(days=i) for i in range(history_days)]
    steps = plan_backfill(settings, days)
    waits = step_dependencies(production_graph, steps)
    rank = {step: i for i, step in enumerate(steps)}
    late = [(need, step) for step in steps for need in waits[step] if rank[need] > rank[step]]
    assert late == []
    daily = [step for day in days for step in plan_day(settings, day)]
    assert _asset_partitions(steps) == _asset_partitions(daily)
    assert max(_asset_partitions(steps).values()) == 1
    first_scores = next(s for s in steps if "scores" in s.assets)  # 2026-04-26
    features = Step(("raw_clickstream", "sessions", "features"), first_scores.partition)
    assert features in waits[first_scores]  # with its clickstream, not with its later labels


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
    last_billing = day + timedelta(
        days=SMALL_SETTINGS.label_maturity_days + SMALL_SETTINGS.label_fallback_days
    )
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


def test_labels_whose_final_extract_is_missing_or_rejected_use_the_next_valid_one(
    end_to_end: EndToEndRun, tmp_path: Path
) -> None:
    maturity = timedelta(days=SMALL_SETTINGS.label_maturity_days)
    start = SMALL_SETTINGS.history_start
    missing, rejected = start + maturity + timedelta(days=1), start + maturity + timedelta(days=2)
    faulted = generate_history(
        tmp_path,
        faults=(Fault("missing_billing", missing), Fault("schema_missing_column", rejected)),
    )
    days = faulted.days[: (rejected - start).days + 2]  # one valid extract after the two
    defs = local_definitions(tmp_path, faulted.landing, SMALL_SETTINGS)
    outcomes = {}
    with dg.DagsterInstance.ephemeral() as instance:
        for step in plan_backfill(SMALL_SETTINGS, days):  # billing and labels, in plan order
            wanted = tuple(a for a in step.assets if a in ("raw_billing", "labels"))
            if wanted:
                outcome = run_step(defs, instance, Step(wanted, step.partition), {})
                outcomes[(wanted, step.partition)] = outcome
    assert not outcomes[(("raw_billing",), missing)].success
    assert not outcomes[(("raw_billing",), rejected)].success
    labelled = [day for (assets, day), o in outcomes.items() if assets == ("labels",)]
    assert labelled == [start + timedelta(days=i) for i in range(4)]
    clean = ParquetWarehouse(url=str(end_to_end.root / "warehouse"), s3=S3Resource())
    backfilled = ParquetWarehouse(url=str(tmp_path / "warehouse"), s3=S3Resource())
    for day in labelled:  # final extract: D+H+G of days 0 and 3, the one of day 3 for 1 and 2
        assert outcomes[(("labels",), day)].success, outcomes[(("labels",), day)].errors
        prefix = ParquetWarehouse.partition_prefix(["labels"], day.isoformat())
        pd.testing.assert_frame_equal(backfilled.read_tables(prefix), clean.read_tables(prefix))


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

    # A step fails only where the day-by-day run failed too (a champion gate that rejects a
    # candidate on this small sample is a blocking ERROR check): same days, same errors.
    def failures(run: list) -> set[tuple]:
        return {(o.step.partition, error) for o in run for error in o.errors}

    assert failures(outcomes) == failures(end_to_end.outcomes)

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


def test_a_candidate_rejected_by_the_gate_is_not_a_failed_demo() -> None:
    """The gate keeping the previous model serving is the gate working; any other failed
    check or step still makes the demo unhealthy."""

    def model_step(*failed: tuple[str, dg.AssetCheckSeverity]) -> StepOutcome:
        checks = [
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("model"), check_name=name, passed=False, severity=severity
            )
            for name, severity in failed
        ]
        return StepOutcome(Step(("model",), date(2026, 5, 17)), False, ["model"], checks)

    gate = ("champion_gate", dg.AssetCheckSeverity.ERROR)
    rejected = model_step(gate, ("beats_baselines", dg.AssetCheckSeverity.WARN))
    assert rejected_by_gate(rejected) and DemoProgress.healthy([rejected])
    other = model_step(gate, ("schema_matches", dg.AssetCheckSeverity.ERROR))
    assert not rejected_by_gate(other) and not DemoProgress.healthy([rejected, other])
    crashed = StepOutcome(Step(("scores",), date(2026, 5, 17)), False, [], [])
    assert not DemoProgress.healthy([crashed])
