"""A producer's steady mess passes every day; a burst on top of it blocks that day alone.

Three producers send 0.5%, 2% and 5% of bad lines every day (the generator's mess profile),
and on one day 5 points more (a ``bad_lines_burst``). Each history runs to ``scores`` through
the ``churn-assets check`` runner, with the production thresholds (the default
``RawContracts``) and small time settings. The raw layer judges each day against the
stream's own history: every steady day passes, the burst day fails ``quarantine_share``
(blocking: its sessions, features and scores are not built), and the days after it run again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from churn_assets.contracts import ContractReport, run_contracts, small_settings
from churn_assets.core.generator import Fault, GeneratorConfig, MessProfile, generate_landing
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.runner import StepOutcome

START = date(2026, 1, 5)  # a Monday
DAYS = 20
BURST = START + timedelta(days=15)  # a Tuesday, with 15 days of history before it
"""Late enough that no training window of a served model holds it (model-layer noise on a
small sample is not what this module tests), early enough to be followed by scored days."""
SETTINGS = small_settings(START)
EVERY_DAY = [START + timedelta(days=i) for i in range(DAYS)]


@dataclass
class Checked:
    level: float
    report: ContractReport
    outcomes: list[StepOutcome]

    def quarantine_share(self, day: date) -> dg.AssetCheckEvaluation:
        (found,) = [
            c
            for o in self.outcomes
            for c in o.checks
            if c.check_name == "quarantine_share" and c.partition == day.isoformat()
        ]
        return found

    def materialized(self, asset: str) -> set[date]:
        return {o.step.partition for o in self.outcomes if asset in o.materialized}


@pytest.fixture(scope="module", autouse=True)
def no_fsync() -> Iterator[None]:
    """Temporary files need no durability: skip the store's fsync."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        yield


@pytest.fixture(scope="module", params=[0.005, 0.02, 0.05], ids=["bad0.5pct", "bad2pct", "bad5pct"])
def checked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Checked:
    level: float = request.param
    root: Path = tmp_path_factory.mktemp(f"mess_{level}")
    config = GeneratorConfig(
        start=START,
        days=DAYS,
        customers=600,
        seed=13,
        mess=MessProfile().with_bad_lines(level),
        faults=(Fault("bad_lines_burst", BURST),),
        horizon_days=SETTINGS.horizon_days,
        grace_days=SETTINGS.grace_days,
    )
    generate_landing(LocalObjectStore(root / "landing").put, config)
    report, outcomes = run_contracts(
        SETTINGS, EVERY_DAY, str(root / "landing"), root, gate="contracts"
    )
    return Checked(level, report, outcomes)


def test_only_the_burst_day_fails_a_blocking_contract(checked: Checked) -> None:
    failed = {(r.asset, r.check, r.partition) for r in checked.report.failed_errors}
    assert failed == {("raw_clickstream", "quarantine_share", BURST.isoformat())}
    assert checked.report.problems == []


def test_the_steady_share_is_the_baseline_and_the_burst_departs_from_it(checked: Checked) -> None:
    burst = checked.quarantine_share(BURST)
    assert not burst.passed and burst.blocking
    value = burst.metadata["quarantine_share"].value
    baseline = burst.metadata["quarantine_share_baseline"].value
    assert baseline == pytest.approx(checked.level, rel=0.35, abs=0.002)
    assert value == pytest.approx(checked.level + 0.05, abs=0.015)
    assert burst.metadata["quarantine_share_ceiling"].value == 0.25
    assert burst.metadata["quarantine_share_history_days"].value == 15
    # The day after: the burst is in the window, but the baseline has not moved.
    after = checked.quarantine_share(BURST + timedelta(days=1))
    assert after.passed
    assert after.metadata["quarantine_share_baseline"].value == pytest.approx(baseline, rel=0.2)


def test_the_graph_runs_to_scores_around_the_blocked_day(checked: Checked) -> None:
    for asset in ("raw_billing", "raw_clickstream"):
        assert checked.materialized(asset) == set(EVERY_DAY), asset
    for asset in ("sessions", "features"):
        assert checked.materialized(asset) == set(EVERY_DAY) - {BURST}, asset
    scored = {d for d in EVERY_DAY if d >= SETTINGS.scores_start}
    assert scored and checked.materialized("scores") == scored
