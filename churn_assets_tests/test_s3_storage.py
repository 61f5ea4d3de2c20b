"""The warehouse, the model store and the object store on s3://, against a real S3 API.

A moto server subprocess stands in for S3; the project's own resources talk to it through
dagster-aws's S3Resource exactly as they would to AWS.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from churn_assets.core.daily_model import ModelArtifact
from churn_assets.partitions import window_input
from churn_assets.resources.model_store import ModelStore
from churn_assets.resources.storage import ObjectStore, S3ObjectStore
from churn_assets.resources.warehouse import POINTER, ParquetWarehouse

pytest_plugins = [f"{__package__}.s3_server" if __package__ else "s3_server"]

DAILY = dg.DailyPartitionsDefinition(start_date="2026-03-01", timezone="UTC")


def typed_table(partition: str) -> pd.DataFrame:
    """Every dtype the assets hand over: tz-aware timestamps, bytes, nullable strings, ..."""
    return pd.DataFrame(
        {
            "customer_id": pd.Series(["C0000001", None, 'Müller, "Ltd"'], dtype=object),
            "event_time": pd.to_datetime(
                ["2026-03-01T10:00:00.123Z", "2026-03-01T23:59:59.999Z", None], utc=True
            ),
            "raw_line": pd.Series([b"\x1f\x8b\x00 not gzip", b"", b'{"a": 1}'], dtype=object),
            "line_no": np.array([1, 2, 3], dtype="int64"),
            "mrr": [49.5, np.nan, 0.0],
            "is_subscribe": [True, False, True],
            "snapshot_date": pd.to_datetime([partition] * 3),
            "cancelled_at": pd.to_datetime([None, "2026-02-27", None]),
        }
    )


def empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "object_key": pd.Series([], dtype=object),
            "line_no": pd.Series([], dtype="int64"),
            "event_time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "raw_line": pd.Series([], dtype=object),
        }
    )


@pytest.fixture
def warehouse(dagster_s3: Any, s3_bucket: str) -> ParquetWarehouse:
    return ParquetWarehouse(url=f"s3://{s3_bucket}/warehouse", s3=dagster_s3)


def test_object_store_lists_and_deletes_past_1000_keys(s3: Any, s3_bucket: str) -> None:
    store = S3ObjectStore(s3, s3_bucket, "root/")
    keys = [f"many/{i:05d}" for i in range(1105)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: store.put(key, key.encode()), keys))
    store.put("other/x", b"x")

    listed = list(store.list("many/"))
    assert [o.key for o in listed] == keys  # every key, in key order, prefix stripped
    assert store.get("many/00042") == b"many/00042"
    assert store.head("many/00042").size == len(b"many/00042")  # type: ignore[union-attr]
    assert store.head("many/missing") is None
    with pytest.raises(KeyError):
        store.get("many/missing")

    store.delete_prefix("many/")
    assert list(store.list("many/")) == []
    assert store.exists("other/x")
    assert store.uri("other/x") == f"s3://{s3_bucket}/root/other/x"


def test_io_manager_round_trips_every_asset_value_type_on_s3(
    warehouse: ParquetWarehouse,
) -> None:
    @dg.asset(partitions_def=DAILY)
    def table(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return typed_table(context.partition_key)

    @dg.asset(partitions_def=DAILY)
    def bundle(context: dg.AssetExecutionContext) -> dict[str, pd.DataFrame]:
        return {"events": typed_table(context.partition_key), "quarantine": empty_quarantine()}

    seen: dict[str, Any] = {}

    @dg.asset(partitions_def=DAILY, ins={"table": window_input(-2, 0)})
    def reader(
        context: dg.AssetExecutionContext,
        table: dict[str, pd.DataFrame],
        bundle: dict[str, pd.DataFrame],
    ) -> pd.DataFrame:
        seen["window"], seen["bundle"] = table, bundle
        return pd.DataFrame({"days_read": [len(table)]})

    for key in ("2026-03-01", "2026-03-02"):
        result = dg.materialize(
            [table, bundle, reader], partition_key=key, resources={"io_manager": warehouse}
        )
        assert result.success

    # the window input of 03-02 reads 02-28 (before the start: skipped), 03-01 and 03-02
    assert sorted(seen["window"]) == ["2026-03-01", "2026-03-02"]
    for key, frame in seen["window"].items():
        pd.testing.assert_frame_equal(frame, typed_table(key))
    assert set(seen["bundle"]) == {"events", "quarantine"}
    pd.testing.assert_frame_equal(seen["bundle"]["events"], typed_table("2026-03-02"))
    pd.testing.assert_frame_equal(seen["bundle"]["quarantine"], empty_quarantine())

    # a fresh manager (another process) reads the same values back from the bucket
    fresh = ParquetWarehouse(url=warehouse.url, s3=warehouse.s3)
    stored = fresh.read_tables(fresh.partition_prefix(["table"], "2026-03-01"))
    assert isinstance(stored, pd.DataFrame)
    assert str(stored["event_time"].dtype) == "datetime64[ns, UTC]"
    assert stored["raw_line"].tolist() == [b"\x1f\x8b\x00 not gzip", b"", b'{"a": 1}']
    assert stored["customer_id"].tolist() == ["C0000001", None, 'Müller, "Ltd"']
    assert fresh.read_tables(fresh.partition_prefix(["reader"], "2026-03-02"))[
        "days_read"
    ].tolist() == [2]


class FailingStore:
    """An object store whose put raises for chosen keys: a process dying mid-write."""

    def __init__(self, inner: ObjectStore, fails: Callable[[str], bool]):
        self.inner = inner
        self.fails = fails

    def put(self, key: str, data: bytes) -> None:
        if self.fails(key):
            raise ConnectionError(f"simulated crash while writing {key}")
        self.inner.put(key, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CrashingWarehouse(ParquetWarehouse):
    """The real IO manager, but its store crashes on keys ending with ``crash_on``."""

    crash_on: str

    @property
    def store(self) -> Any:
        return FailingStore(super().store, lambda key: key.endswith(self.crash_on))


@pytest.mark.parametrize("crash_on", [POINTER, "quarantine.parquet"])
def test_a_crash_mid_write_leaves_the_previous_partition_readable(
    warehouse: ParquetWarehouse, crash_on: str
) -> None:
    version = {"n": 1}

    @dg.asset(partitions_def=DAILY)
    def raw_clickstream() -> dict[str, pd.DataFrame]:
        events = typed_table("2026-03-01").assign(line_no=version["n"])
        return {"events": events, "quarantine": empty_quarantine()}

    def run(io_manager: ParquetWarehouse) -> bool:
        return dg.materialize(
            [raw_clickstream],
            partition_key="2026-03-01",
            resources={"io_manager": io_manager},
            raise_on_error=False,
        ).success

    prefix = warehouse.partition_prefix(["raw_clickstream"], "2026-03-01")
    assert run(warehouse)
    version["n"] = 2
    crashing = CrashingWarehouse(url=warehouse.url, s3=warehouse.s3, crash_on=crash_on)
    assert not run(crashing)  # the run fails part-way through writing version 2

    after_crash = ParquetWarehouse(url=warehouse.url, s3=warehouse.s3).read_tables(prefix)
    assert isinstance(after_crash, dict)
    assert after_crash["events"]["line_no"].tolist() == [1, 1, 1]  # still version 1, whole

    def versions() -> set[str]:
        return {o.key[len(prefix) :].split("/")[0] for o in warehouse.store.list(prefix)} - {
            POINTER
        }

    version["n"] = 3
    assert run(warehouse)  # the next successful run replaces version 1 and deletes it
    current = warehouse.read_tables(prefix)
    assert current["events"]["line_no"].tolist() == [3, 3, 3]  # type: ignore[index]
    # the crashed write's debris is not current; while young it may be another writer's
    # version in progress, so it stays until stale_version_after_seconds have passed
    assert len(versions()) == 2
    version["n"] = 4
    assert run(ParquetWarehouse(url=warehouse.url, s3=warehouse.s3, stale_version_after_seconds=0))
    assert len(versions()) == 1


def artifact(partition: str, version: str, promoted: bool) -> ModelArtifact:
    return ModelArtifact(
        partition=partition,
        version=version,
        booster_bytes=f'{{"learner": "{version}"}}'.encode(),
        card={"promoted": promoted, "threshold": 0.25, "auc": 0.7},
    )


def test_model_store_saves_loads_and_picks_the_serving_model_on_s3(
    dagster_s3: Any, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/models"
    store = ModelStore(url=url, s3=dagster_s3)
    assert store.save(artifact("2026-03-05", "m-05", promoted=True)).startswith(f"{url}/")
    store.save(artifact("2026-03-06", "m-06", promoted=False))
    store.save(artifact("2026-03-07", "m-07", promoted=True))
    # a model written without its card (a crash before the card) is not complete
    store.store.put("models/dt=2026-03-08/model.json", b"{}")

    fresh = ModelStore(url=url, s3=dagster_s3)
    assert fresh.partitions() == ["2026-03-05", "2026-03-06", "2026-03-07"]
    loaded = fresh.load("2026-03-06")
    assert loaded is not None
    assert (loaded.version, loaded.booster_bytes) == ("m-06", b'{"learner": "m-06"}')
    assert loaded.card["threshold"] == 0.25 and not loaded.promoted
    assert fresh.load("2026-03-08") is None

    def serving(as_of: date, pinned: str = "") -> str | None:
        model = ModelStore(url=url, s3=dagster_s3, pinned_version=pinned).serving_model(as_of)
        return None if model is None else model.version

    assert serving(date(2026, 3, 5)) is None  # nothing trained before the 5th
    assert serving(date(2026, 3, 7)) == "m-05"  # the 6th was not promoted
    assert serving(date(2026, 3, 9)) == "m-07"
    assert serving(date(2026, 3, 9), pinned="m-06") == "m-06"  # an operator's rollback


def test_spark_reads_s3_landing_objects_through_s3a_with_globs_escaped(tmp_path: Any) -> None:
    from churn_assets.engines.spark import spark_uri

    key = "landing/clickstream/2026/01/01/web-{1}[a]*.gz"
    assert (
        spark_uri(f"s3://bucket/{key}")
        == r"s3a://bucket/landing/clickstream/2026/01/01/web-\{1\}\[a\]\*.gz"
    )
    assert spark_uri("s3://bucket/x.gz", s3_scheme="s3") == "s3://bucket/x.gz"  # EMRFS
    assert spark_uri(str(tmp_path / "x.gz")) == f"file://{tmp_path}/x.gz"
    assert spark_uri("s3a://bucket/x.gz") == "s3a://bucket/x.gz"
