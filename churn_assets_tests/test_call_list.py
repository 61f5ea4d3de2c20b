"""The daily call list: ranked rows, an exact CSV round trip, and its check evaluated."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from churn_assets.assets import build_assets
from churn_assets.core.call_list import (
    CALL_LIST_COLUMNS,
    call_list_csv,
    call_list_xlsx,
    ranked_call_list,
    read_call_list_csv,
)
from churn_assets.engines.embedded import EmbeddedEngine
from churn_assets.environments import storage_resources
from churn_assets.resources.exports import ExportStore
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.resources.warehouse import ParquetWarehouse
from churn_assets_tests.support import SMALL_SETTINGS, EndToEndRun

HOSTILE_NAMES = [
    'Öztürk "Labs", GmbH',
    "<script>window.__pwned = 1</script>",
    "=cmd|' /C calc'!A0",
    "Zoë & Søn\nsecond line",
    "NA",
    "+49 Trading; -1",
]


def scores_frame(ids: list[str], model_version: str = "2026-01-01-abc") -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "churn_probability": [0.9 - i / (n + 1) for i in range(n)],
            "risk_tier": ["high"] * n,
            "rank": list(range(1, n + 1)),
            "model_version": [model_version] * n,
            "reason_1": ["3 support calls in the last 28 days"] * n,
            "reason_2": [None] * n,
            "reason_3": [None] * n,
        }
    )


def billing_frame(ids: list[str], names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ids,
            "account_name": names,
            "plan": ["basic"] * len(ids),
            "seats": [2] * len(ids),
            "mrr": [49.5] * len(ids),
        }
    )


def test_names_survive_the_csv_round_trip_exactly() -> None:
    ids = [f"C{i:07d}" for i in range(len(HOSTILE_NAMES))]
    table = ranked_call_list(scores_frame(ids), billing_frame(ids, HOSTILE_NAMES))
    assert table.column_names == list(CALL_LIST_COLUMNS)
    back = read_call_list_csv(call_list_csv(table))
    assert back["account_name"].tolist() == HOSTILE_NAMES  # no quote prefix, no NA guessing
    assert back["customer_id"].tolist() == ids
    assert back["churn_probability"].tolist() == table.column("churn_probability").to_pylist()
    assert back["reason_2"].tolist() == [""] * len(ids)


def test_every_scored_customer_is_listed_even_without_billing_and_changes_are_weekly() -> None:
    scores = scores_frame(["C2", "C1", "C3"])
    billing = billing_frame(["C1", "C2"], ["One", "Two"])  # C3 has no billing row
    last_week = scores_frame(["C1", "C2"]).assign(churn_probability=[0.5, 0.1])
    table = ranked_call_list(scores, billing, last_week).to_pandas().set_index("customer_id")
    assert list(table.index) == ["C2", "C1", "C3"]  # rank order
    assert pd.isna(table.loc["C3", "account_name"])
    assert table.loc["C2", "change_since_last_week"] == pytest.approx(
        scores.loc[0, "churn_probability"] - 0.1
    )
    assert table.loc["C1", "change_since_last_week"] == pytest.approx(
        scores.loc[1, "churn_probability"] - 0.5
    )
    assert pd.isna(table.loc["C3", "change_since_last_week"])


def test_xlsx_keeps_formula_looking_names_as_text() -> None:
    ids = [f"C{i}" for i in range(len(HOSTILE_NAMES))]
    workbook = call_list_xlsx(
        ranked_call_list(scores_frame(ids), billing_frame(ids, HOSTILE_NAMES)), "list"
    )
    with zipfile.ZipFile(io.BytesIO(workbook)) as xlsx:
        sheet = xlsx.read("xl/worksheets/sheet1.xml").decode()
        strings = xlsx.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet  # no cell is a formula
    assert "=cmd|&apos; /C calc&apos;!A0" in strings or "=cmd|' /C calc'!A0" in strings


def _call_list_run(
    tmp_path: Path, scores: pd.DataFrame, billing: pd.DataFrame
) -> dg.ExecuteInProcessResult:
    """``call_list`` alone, its inputs written to a real warehouse directory first."""
    day = SMALL_SETTINGS.scores_start.isoformat()
    warehouse = ParquetWarehouse(url=str(tmp_path / "warehouse"), s3=S3Resource())
    warehouse.write_tables(warehouse.partition_prefix(["scores"], day), "v1", scores)
    warehouse.write_tables(warehouse.partition_prefix(["raw_billing"], day), "v1", billing)
    resources = storage_resources(
        landing_url=str(tmp_path / "landing"),
        warehouse_url=str(tmp_path / "warehouse"),
        model_store_url=str(tmp_path / "models"),
        engine=EmbeddedEngine(),
    )
    return dg.materialize(
        build_assets(SMALL_SETTINGS),
        selection=["call_list"],
        partition_key=day,
        resources=resources,
        raise_on_error=False,
    )


def test_call_list_asset_writes_the_csv_and_its_check_passes(tmp_path: Path) -> None:
    ids = ["C3", "C1", "C2"]
    result = _call_list_run(tmp_path, scores_frame(ids), billing_frame(ids, HOSTILE_NAMES[:3]))
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "holds_exactly_the_scored_customers"
    assert evaluation.passed
    [materialization] = result.asset_materializations_for_node("call_list")
    day = SMALL_SETTINGS.scores_start.isoformat()
    key = ExportStore.call_list_key(day)
    path = tmp_path / "warehouse" / key
    assert materialization.metadata["path"].value == str(path)
    assert materialization.metadata["dagster/row_count"].value == 3
    written = read_call_list_csv(path.read_bytes())
    assert written["customer_id"].tolist() == ids
    assert written["account_name"].tolist() == HOSTILE_NAMES[:3]


def test_call_list_check_fails_when_billing_lists_a_customer_twice(tmp_path: Path) -> None:
    ids = ["C1", "C2"]
    billing = billing_frame(["C1", "C1", "C2"], ["One", "One again", "Two"])
    result = _call_list_run(tmp_path, scores_frame(ids), billing)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["listed_twice"].value == 1
    assert evaluation.metadata["rows"].value == 3
    assert evaluation.metadata["scored_customers"].value == 2


def test_every_scored_day_has_a_call_list_that_matches_its_scores(end_to_end: EndToEndRun) -> None:
    warehouse = end_to_end.defs.resources["io_manager"]
    store = LocalObjectStore(end_to_end.root / "warehouse")
    scored = [o for o in end_to_end.outcomes if "scores" in o.step.assets]
    assert scored
    for outcome in scored:
        day = outcome.step.partition.isoformat()
        [check] = [
            c for c in outcome.checks if c.check_name == "holds_exactly_the_scored_customers"
        ]
        assert check.passed, day
        written = read_call_list_csv(store.get(ExportStore.call_list_key(day)))
        scores = warehouse.read_tables(warehouse.partition_prefix(["scores"], day))
        assert written["customer_id"].tolist() == scores.sort_values("rank")["customer_id"].tolist()
        assert outcome.metadata["call_list"]["dagster/row_count"] == len(scores)
    assert scored[0].step.partition == SMALL_SETTINGS.scores_start
