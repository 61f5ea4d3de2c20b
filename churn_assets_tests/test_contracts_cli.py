"""``churn-assets check``: the table of check results and the exit code, on real runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from churn_assets.cli import main
from churn_assets.contracts import (
    CheckRow,
    ContractReport,
    check_rows,
    format_table,
    key_numbers,
    summary_line,
)
from churn_assets.core.generator import Fault, GeneratorConfig, generate_landing
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.runner import Step, StepOutcome

START = date(2026, 1, 5)  # a Monday
DAYS = 6
SMALL = ["--horizon-days", "2", "--grace-days", "1", "--feature-window-days", "3"]
SMALL += ["--training-window-days", "20"]  # no model in 6 days: the CLI tests stay fast


@pytest.fixture(scope="module", autouse=True)
def no_fsync() -> Iterator[None]:
    """Temporary files need no durability: skip the store's fsync."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        yield


def evaluation(
    asset: str, check: str, day: str, passed: bool, severity: str = "ERROR"
) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset),
        check_name=check,
        passed=passed,
        metadata={
            "rows": dg.MetadataValue.int(3),
            "share": dg.MetadataValue.float(0.25),
            "note": "x",
        },
        severity=dg.AssetCheckSeverity(severity),
        partition=day,
    )


def outcome(day: str, *checks: dg.AssetCheckEvaluation, success: bool = True) -> StepOutcome:
    return StepOutcome(Step(("raw_billing",), date.fromisoformat(day)), success, [], list(checks))


def test_rows_keep_the_latest_evaluation_and_the_numbers() -> None:
    first = outcome("2026-01-05", evaluation("raw_billing", "schema", "2026-01-05", False))
    again = outcome("2026-01-05", evaluation("raw_billing", "schema", "2026-01-05", True))
    (row,) = check_rows([first, again])
    assert row == CheckRow(
        "raw_billing", "schema", "2026-01-05", "ERROR", True, "rows=3 share=0.25"
    )
    assert key_numbers({"flag": dg.MetadataValue.bool(True), "n": dg.MetadataValue.int(1)}) == "n=1"


def test_the_exit_code_follows_failed_error_checks_within_the_gate() -> None:
    rows = [
        CheckRow("raw_billing", "schema", "2026-01-05", "ERROR", True, ""),
        CheckRow("raw_billing", "values_in_range", "2026-01-05", "WARN", False, "negative_mrr=5"),
    ]
    assert ContractReport(rows, []).exit_code() == 0  # a warning does not fail
    drift = CheckRow("drift", "feature_drift", "2026-01-05", "ERROR", False, "")
    assert ContractReport([*rows, drift], []).exit_code() == 1
    assert ContractReport([*rows, drift], [], gate="contracts").exit_code() == 0
    assert "outside the gate" in summary_line(ContractReport([*rows, drift], [], gate="contracts"))
    table = format_table(rows)
    assert table.splitlines()[0].split() == [
        "asset",
        "check",
        "partition",
        "severity",
        "passed",
        "key",
        "numbers",
    ]
    assert "values_in_range" in format_table(rows, failures_only=True)
    assert "schema" not in format_table(rows, failures_only=True)


def test_sample_runs_the_graph_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--sample",
            "--days",
            str(DAYS),
            "--customers",
            "150",
            "--workdir",
            str(tmp_path),
            *SMALL,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK: no ERROR check failed" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("asset "))
    rows = [
        line.split()
        for line in lines[header + 2 :]
        if line
        and line.split()[0] in {"raw_billing", "raw_clickstream", "sessions", "features", "labels"}
    ]
    checked = {(r[0], r[1]) for r in rows}
    assert {
        ("raw_billing", "schema"),
        ("raw_clickstream", "row_accounting"),
        ("features", "finite_values"),
    } <= checked
    assert {r[2] for r in rows if r[:2] == ["raw_billing", "schema"]} == {
        (START + timedelta(days=i)).isoformat() for i in range(DAYS)
    }
    assert all(r[4] == "yes" for r in rows)
    # The work directory kept the instance and the warehouse.
    assert (tmp_path / "warehouse" / "raw_billing").is_dir()
    assert (tmp_path / "dagster_home").is_dir()


@pytest.fixture(scope="module")
def burst_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six days whose fourth has a burst of 3,000 malformed lines (most of its lines)."""
    landing = tmp_path_factory.mktemp("burst") / "landing"
    store = LocalObjectStore(landing)
    config = GeneratorConfig(
        start=START, days=DAYS, customers=150, seed=5, faults=(Fault("malformed_burst", BURST),)
    )
    generate_landing(store.put, config, delete=store.delete)
    return landing


BURST = START + timedelta(days=3)
RANGE = ["--start", START.isoformat(), "--end", (START + timedelta(days=DAYS - 1)).isoformat()]


def test_a_faulted_landing_fails_and_names_the_check(
    burst_landing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", *RANGE, "--landing", str(burst_landing), "--failures-only", *SMALL])
    out = capsys.readouterr().out
    assert code == 1
    failing = [line.split() for line in out.splitlines() if line.startswith("raw_clickstream")]
    assert ["raw_clickstream", "quarantine_share", BURST.isoformat(), "ERROR", "NO"] in [
        f[:5] for f in failing
    ]
    assert "FAILED: an ERROR check failed" in out
    assert "Raw-layer thresholds: the defaults" in out


def test_the_operators_thresholds_file_is_in_force(
    burst_landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A producer whose bursts are normal: its operator raises the ceiling and the margin."""
    thresholds = tmp_path / "contracts.yaml"
    thresholds.write_text("quarantine_share:\n  ceiling: 0.99\n  min_margin: 0.99\n")
    args = ["check", *RANGE, "--landing", str(burst_landing), "--contracts", str(thresholds)]
    code = main([*args, "--failures-only", *SMALL])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Raw-layer thresholds: {thresholds}" in out
    assert "quarantine_share" not in out  # no failure to list


def test_a_range_needs_a_landing_zone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--start", "2026-01-05", "--end", "2026-01-06"]) == 2
    assert "--landing" in capsys.readouterr().out
