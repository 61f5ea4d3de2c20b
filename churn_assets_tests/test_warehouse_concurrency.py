"""Two runs writing the same partition at once (a sensor's run and a manual re-run).

Two writer processes write the same partition many times over, as fast as they can, while
the test process reads it in a loop: every read must be one complete version (both tables,
from the same write, with all their rows), the pointer must never name a deleted version,
and at the end the partition is readable. On a local directory and on S3 (moto's server).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from churn_assets.resources.warehouse import POINTER, ParquetWarehouse

pytest_plugins = [f"{__package__}.s3_server" if __package__ else "s3_server"]

PREFIX = "raw_clickstream/dt=2026-03-01/"
ROWS = 50


def open_warehouse(url: str, endpoint: str | None, **config: Any) -> ParquetWarehouse:
    if endpoint is None:
        return ParquetWarehouse(url=url, s3=S3Resource(), **config)
    from churn_assets_tests.s3_server import s3_resource

    return ParquetWarehouse(url=url, s3=s3_resource(endpoint), **config)


def write_many(url: str, endpoint: str | None, writer: str, writes: int, start: Any) -> None:
    """One writer process: ``writes`` versions of the partition, each marked with its name."""
    warehouse = open_warehouse(url, endpoint)
    start.wait()
    for i in range(writes):
        marker = f"{writer}-{i}"
        events = pd.DataFrame({"marker": [marker] * ROWS, "row": range(ROWS)})
        tables = {"events": events, "quarantine": events.head(ROWS // 2)}
        warehouse.write_tables(PREFIX, f"{marker}-version", tables)


@pytest.fixture(params=["local", "s3"])
def location(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, str | None, int]]:
    """(warehouse URL, S3 endpoint or None, writes per writer)."""
    if request.param == "local":
        yield str(tmp_path / "warehouse"), None, 100
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        yield f"s3://{bucket}/warehouse", endpoint, 20


def test_concurrent_writers_never_leave_a_reader_without_one_complete_version(
    location: tuple[str, str | None, int],
) -> None:
    url, endpoint, writes = location
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    writers = [
        context.Process(target=write_many, args=(url, endpoint, name, writes, start))
        for name in ("sensor", "manual")
    ]
    for process in writers:
        process.start()
    warehouse = open_warehouse(url, endpoint)
    seen: set[str] = set()
    reads = 0
    while any(process.is_alive() for process in writers):
        value = warehouse.read_tables(PREFIX)
        if value is None:
            continue  # nothing written yet
        assert isinstance(value, dict) and set(value) == {"events", "quarantine"}
        markers = set(value["events"]["marker"]) | set(value["quarantine"]["marker"])
        assert len(markers) == 1, f"a read mixed two writes: {markers}"
        assert (len(value["events"]), len(value["quarantine"])) == (ROWS, ROWS // 2)
        seen |= markers
        reads += 1
    for process in writers:
        process.join()
        assert process.exitcode == 0

    assert reads > 0 and {m.split("-")[0] for m in seen} == {"sensor", "manual"}, seen
    final = warehouse.read_tables(PREFIX)
    assert isinstance(final, dict) and len(set(final["events"]["marker"])) == 1
    assert final["events"]["marker"].iloc[0].endswith(f"-{writes - 1}")  # someone's last write

    # writes that lost a race may leave their version behind; once it is older than
    # stale_version_after_seconds the next write deletes it
    def versions() -> set[str]:
        return {o.key[len(PREFIX) :].split("/")[0] for o in warehouse.store.list(PREFIX)} - {
            POINTER
        }

    print(f"{reads} reads; {len(versions())} versions left of {2 * writes} writes")
    cleaner = open_warehouse(url, endpoint, stale_version_after_seconds=0)
    cleaner.write_tables(PREFIX, "last-version", final)
    assert versions() == {"last-version"}
