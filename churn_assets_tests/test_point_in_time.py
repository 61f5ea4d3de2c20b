"""Point-in-time correctness at the asset level: nothing dated after D reaches features[D],
and labels[D] is not produced before the billing extract of D+H+G exists."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pandas as pd

from churn_assets.core.landing_layout import parse_clickstream_arrival
from churn_assets.resources.warehouse import ParquetWarehouse
from churn_assets.runner import Step, run_step
from churn_assets_tests.support import SMALL_SETTINGS, EndToEndRun, local_definitions


def _rewrite_the_future(landing: Path, day) -> None:
    """Delete every billing extract after ``day`` and every object arriving after its window;
    add an object inside the window with events dated after ``day`` only."""
    lateness_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc)
    window_end = lateness_end + SMALL_SETTINGS.lateness
    for folder in (landing / "billing").iterdir():
        if folder.name > f"dt={day.isoformat()}":
            shutil.rmtree(folder)
    for path in (landing / "clickstream").rglob("*.gz"):
        arrival = parse_clickstream_arrival(path.relative_to(landing).as_posix())
        assert arrival is not None
        if arrival >= window_end:
            path.unlink()
    arrival = lateness_end + timedelta(minutes=30)
    key = (
        f"clickstream/{arrival:%Y/%m/%d/%H}/churn-clickstream-1-"
        f"{arrival:%Y-%m-%d-%H-%M-%S}-00000000-0000-0000-0000-000000000000.gz"
    )
    record = {
        "event_id": "w-future",
        "event": "click",
        "ts": (arrival).isoformat(),
        "customerId": "C0000001",
        "props": "{}",
    }
    (landing / key).parent.mkdir(parents=True, exist_ok=True)
    (landing / key).write_bytes(gzip.compress(json.dumps(record).encode() + b"\n"))


def test_data_dated_after_d_changes_nothing_in_features_and_labels_wait(
    end_to_end: EndToEndRun, tmp_path: Path
) -> None:
    day = SMALL_SETTINGS.model_start - timedelta(days=3)
    landing = tmp_path / "landing"
    shutil.copytree(end_to_end.history.landing, landing)
    _rewrite_the_future(landing, day)
    defs = local_definitions(tmp_path, landing, SMALL_SETTINGS)
    window = [day - timedelta(days=i) for i in reversed(range(SMALL_SETTINGS.feature_window_days))]
    with dg.DagsterInstance.ephemeral() as instance:
        for d in window:
            outcome = run_step(
                defs,
                instance,
                Step(("raw_billing", "raw_clickstream", "sessions", "features"), d),
                {},
            )
            assert outcome.success, (d, outcome.errors)
        labels = run_step(defs, instance, Step(("labels",), day - timedelta(days=1)), {})
    assert not labels.success and labels.materialized == []
    assert any("LabelsNotMature" in e or "extract" in e for e in labels.errors), labels.errors

    def features(run_defs: dg.Definitions) -> pd.DataFrame:
        warehouse: ParquetWarehouse = run_defs.resources["io_manager"]
        table = warehouse.read_tables(warehouse.partition_prefix(["features"], day.isoformat()))
        assert isinstance(table, pd.DataFrame)
        return table

    pd.testing.assert_frame_equal(features(defs), features(end_to_end.defs))
