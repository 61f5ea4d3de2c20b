"""The sales desk without a browser: queries against pandas, words, the instance, speed."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from churn_assets.core.call_list import read_call_list_csv
from churn_assets.desk import queries, status
from churn_assets.desk.app import DeskSettings, create_app
from churn_assets.desk.server import open_warehouse
from churn_assets.desk.warehouse import DeskWarehouse
from churn_assets_tests.desk_support import days_ending, synthetic_warehouse

pytest_plugins = [f"{__package__}.s3_server" if __package__ else "s3_server"]

LAST_DAY = date(2026, 3, 15)


def day_list(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    probability = rng.uniform(0, 1, n)
    names = np.array([f"Firm {i}" for i in range(n)], dtype=object)
    names[:4] = ["100% O'Neil_s", "Zoë & Søn, Ltd", "<b>bold</b>", None]
    frame = pd.DataFrame(
        {
            "rank": np.argsort(np.argsort(-probability)) + 1,
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "account_name": names,
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "seats": rng.integers(1, 30, n),
            "mrr": np.round(rng.uniform(5, 2000, n), 2),
            "churn_probability": probability,
            "risk_tier": np.select(
                [probability > 0.6, probability > 0.3], ["high", "medium"], "low"
            ),
            "change_since_last_week": np.where(
                rng.uniform(size=n) < 0.2, np.nan, rng.normal(0, 0.1, n)
            ),
        }
    )
    return frame


def test_a_page_is_the_filtered_sorted_slice_pandas_computes() -> None:
    frame = day_list()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    query = queries.ListQuery(
        tier="high", plan="pro", min_mrr=100.0, sort="mrr", descending=True, page=2, page_size=7
    )
    page = queries.list_page(table, query)
    expected = frame[(frame.risk_tier == "high") & (frame.plan == "pro") & (frame.mrr >= 100)]
    expected = expected.sort_values(["mrr", "rank"], ascending=[False, True])
    assert page.matching == len(expected)
    assert [r["customer_id"] for r in page.rows] == expected["customer_id"].iloc[7:14].tolist()
    totals = {t["risk_tier"]: t for t in page.totals}
    assert totals["high"]["customers"] == len(expected)
    assert totals["high"]["mrr"] == pytest.approx(expected["mrr"].sum())
    assert totals["low"]["customers"] == 0  # every tier is shown, even an empty one
    assert page.pages == -(-len(expected) // 7)


def test_nulls_sort_last_both_ways_and_search_is_literal() -> None:
    frame = day_list()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for descending in (False, True):
        rows = queries.filtered(
            table, queries.ListQuery(sort="change_since_last_week", descending=descending)
        )
        changes = rows.column("change_since_last_week").to_pylist()
        known = [c for c in changes if c is not None]
        assert changes[: len(known)] == sorted(known, reverse=descending)
        assert all(c is None for c in changes[len(known) :])
    # % _ and ' are text, not LIKE wildcards or SQL
    hits = queries.filtered(table, queries.ListQuery(search="0% o'neil_"))
    assert hits.column("account_name").to_pylist() == ["100% O'Neil_s"]
    assert queries.filtered(table, queries.ListQuery(search="c0000002")).num_rows == 1
    assert queries.filtered(table, queries.ListQuery(search="%")).num_rows == 1


def test_query_parameters_from_a_url_are_validated() -> None:
    bad = queries.ListQuery.from_params(
        {
            "sort": "rank; DROP TABLE day_list; --",
            "tier": "HIGH",
            "plan": "gold",
            "min_mrr": "abc",
            "page": "-4",
        }
    )
    assert bad == queries.ListQuery(tier="high")
    assert queries.ListQuery.from_params({"min_mrr": "nan", "page": "inf"}).min_mrr is None
    query = queries.ListQuery.from_params(
        {"q": "  Zoë ", "sort": "mrr", "dir": "desc", "page": "3"}
    )
    assert query.params() == {"q": "Zoë", "sort": "mrr", "dir": "desc", "page": "3"}
    assert query.params(page=1) == {"q": "Zoë", "sort": "mrr", "dir": "desc"}


def test_freshness_words() -> None:
    today = date(2026, 3, 20)
    blocked = [status.BlockedCheck("raw_billing", "schema", "2026-03-19", "missing column mrr")]
    stale = status.freshness(date(2026, 3, 17), date(2026, 3, 17), today, blocked)
    assert stale.level == "stale"
    assert "2026-03-19 is missing" in stale.message and "2 days older" in stale.message
    assert stale.blocked_by == blocked
    assert "has not landed" in status.freshness(date(2026, 3, 18), date(2026, 3, 18), today).message
    assert status.freshness(date(2026, 3, 19), date(2026, 3, 12), today).level == "past"
    assert status.freshness(date(2026, 3, 19), date(2026, 3, 19), today).level == "ok"


def test_trust_panel_words() -> None:
    unknown = status.trust(None)
    assert not unknown["known"] and "Not known yet" in unknown["sentences"][0]
    summary = {
        "day": pd.Timestamp("2026-02-01"),
        "precision_top_decile": 0.42,
        "churn_rate": 0.06,
        "flagged": 55,
        "flagged_churn_share": 0.31,
        "realised_auc": 0.71,
        "offline_auc": 0.80,
    }
    words = " ".join(status.trust(summary)["sentences"])
    assert "scores of 2026-02-01" in words
    assert "42% did churn, against 6% of all customers (7.0× better" in words
    assert "Of the 55 customers marked high risk, 31% churned." in words
    assert "AUC) 0.71" in words and "promised 0.80" in words and "below what was promised" in words


def checked_asset(asset: str, check: str, blocking: bool) -> dg.AssetsDefinition:
    """A stand-in for a project asset whose one check passes or fails as the run says."""

    daily = dg.DailyPartitionsDefinition("2026-03-01")

    @dg.asset(
        name=asset,
        partitions_def=daily,
        check_specs=[
            dg.AssetCheckSpec(check, asset=asset, blocking=blocking, partitions_def=daily)
        ],
        config_schema={"passed": bool},
    )
    def _asset(context):  # unannotated: a string annotation is refused here
        yield dg.Output(None)
        yield dg.AssetCheckResult(
            check_name=check,
            passed=context.op_execution_context.op_config["passed"],
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{check} on {context.partition_key}",
        )

    return _asset


def evaluate(
    instance: dg.DagsterInstance, asset: dg.AssetsDefinition, day: str, passed: bool
) -> None:
    dg.materialize(
        [asset],
        partition_key=day,
        instance=instance,
        resources={"io_manager": dg.mem_io_manager},
        run_config={"ops": {asset.op.name: {"config": {"passed": passed}}}},
        raise_on_error=False,
    )


def test_the_banner_names_the_blocking_check_that_stopped_the_scores(tmp_path: Path) -> None:
    days = days_ending(LAST_DAY, 2)
    warehouse = DeskWarehouse(synthetic_warehouse(tmp_path, 50, days))
    with dg.instance_for_test() as instance:
        billing = checked_asset("raw_billing", "schema", blocking=True)
        features = checked_asset("features", "inputs_complete", blocking=True)
        late = checked_asset("raw_clickstream", "late_events", blocking=False)
        evaluate(instance, billing, "2026-03-16", passed=False)
        evaluate(instance, features, "2026-03-16", passed=False)
        evaluate(instance, features, "2026-03-16", passed=True)  # a re-run fixed it
        evaluate(instance, late, "2026-03-16", passed=False)  # warns, stops nothing
        evaluate(instance, billing, "2026-03-10", passed=False)  # a day that has scores
        app = create_app(
            warehouse, DeskSettings(), instance=instance, today=lambda: date(2026, 3, 18)
        )
        html = TestClient(app).get(f"/day/{LAST_DAY}").text
        found = status.blocking_failures(instance, ["2026-03-16", "2026-03-17"])
    assert found == [
        status.BlockedCheck("raw_billing", "schema", "2026-03-16", "schema on 2026-03-16")
    ]
    assert "The list for 2026-03-17 is missing" in html
    assert "raw_billing · schema</strong> on 2026-03-16" in html
    assert "inputs_complete" not in html and "late_events" not in html


def test_unknown_days_and_customers_are_404_pages_and_nothing_but_get_is_served(
    tmp_path: Path,
) -> None:
    warehouse = DeskWarehouse(synthetic_warehouse(tmp_path, 20, [LAST_DAY]))
    client = TestClient(create_app(warehouse), raise_server_exceptions=False)
    for url in (
        "/day/2026-01-01",
        "/day/not-a-day",
        f"/day/{LAST_DAY}/customer/C9999999",
        f"/day/{LAST_DAY}/customer/%3Cscript%3E",
        "/pick?day=1999-01-01",
        "/nowhere",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Not found" in response.text and "Traceback" not in response.text
    assert "&lt;script&gt;" in client.get(f"/day/{LAST_DAY}/customer/%3Cscript%3E").text
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)(f"/day/{LAST_DAY}").status_code == 405


def test_an_empty_warehouse_says_how_to_run_the_demo(tmp_path: Path) -> None:
    response = TestClient(create_app(open_warehouse(str(tmp_path / "nothing")))).get("/")
    assert response.status_code == 200
    assert "No scores yet" in response.text and "make demo" in response.text
    assert not (tmp_path / "nothing").exists()  # looking did not create anything


def test_the_desk_reads_a_warehouse_on_s3(dagster_s3: Any, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/warehouse"
    synthetic_warehouse(url, 30, days_ending(LAST_DAY, 8), names=['Zoë, "Ltd"'], s3=dagster_s3)
    client = TestClient(create_app(open_warehouse(url, dagster_s3)))
    listing = client.get("/")
    assert listing.status_code == 200 and str(listing.url).endswith(f"/day/{LAST_DAY}")
    assert "Zoë, &#34;Ltd&#34;" in listing.text
    assert 'data-customer-id="C0000000"' in listing.text
    exported = read_call_list_csv(client.get(f"/day/{LAST_DAY}/call_list.csv").content)
    assert len(exported) == 30 and exported["change_since_last_week"].notna().all()
    page = client.get(f"/day/{LAST_DAY}/customer/C0000000").text
    assert page.count("<circle") == 8  # a week and a day of scores, all read from S3


def test_the_desk_command_serves_the_warehouse_on_loopback(tmp_path: Path) -> None:
    synthetic_warehouse(tmp_path / "warehouse", 10, [LAST_DAY])
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    command = [sys.executable, "-m", "churn_assets.cli", "desk", "--warehouse", "warehouse"]
    process = subprocess.Popen(
        [*command, "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        banner = process.stdout.readline() if process.stdout else ""
        address = re.search(r"http://127\.0\.0\.1:(\d+)/", banner)
        assert address, banner
        with urllib.request.urlopen(address.group(0), timeout=30) as response:
            html = response.read().decode()
        assert response.url.endswith(f"/day/{LAST_DAY}")
        assert 'data-customer-id="C0000000"' in html
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not (tmp_path / ".dagster_home").exists()


@pytest.fixture(scope="module")
def hundred_thousand(tmp_path_factory: pytest.TempPathFactory) -> DeskWarehouse:
    root = tmp_path_factory.mktemp("desk100k")
    return DeskWarehouse(synthetic_warehouse(root, 100_000, days_ending(LAST_DAY, 8)))


def test_pages_load_under_a_second_for_100000_customers(hundred_thousand: DeskWarehouse) -> None:
    """Asserted on the CPU time the process spends on a page (the app runs in it): wall time
    on a shared 2-core machine says more about the other jobs; it is printed too."""
    client = TestClient(create_app(hundred_thousand, DeskSettings(history_days=8)))

    def timed(url: str) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        assert response.status_code == 200, url
        return round(time.process_time() - cpu, 3), round(time.perf_counter() - wall, 3)

    cold = {
        "list": timed(f"/day/{LAST_DAY}"),
        "customer": timed(f"/day/{LAST_DAY}/customer/C0000042"),
    }
    warm = {
        "list": timed(f"/day/{LAST_DAY}"),
        "filtered": timed(f"/day/{LAST_DAY}?tier=high&plan=pro&min_mrr=200&sort=mrr&dir=desc"),
        "search": timed(f"/day/{LAST_DAY}?q=account%20999"),
        "last page by name": timed(f"/day/{LAST_DAY}?sort=account_name&page=2000"),
        "customer": timed(f"/day/{LAST_DAY}/customer/C0099999"),
    }
    print(f"100,000 customers, (cpu s, wall s): first {cold}, then {warm}")
    assert max(cpu for cpu, _ in warm.values()) < 1.0, warm
    assert max(cpu for cpu, _ in cold.values()) < 5.0, cold  # first reads of the parquet files


def test_exports_of_100000_customers(hundred_thousand: DeskWarehouse) -> None:
    client = TestClient(create_app(hundred_thousand))
    started = time.process_time()
    csv = client.get(f"/day/{LAST_DAY}/call_list.csv")
    assert time.process_time() - started < 3.0
    assert len(read_call_list_csv(csv.content)) == 100_000
    too_big = client.get(f"/day/{LAST_DAY}/call_list.xlsx")
    assert too_big.status_code == 400 and "100,000 customers" in too_big.text
    assert "filter to 10,000 or fewer" in client.get(f"/day/{LAST_DAY}").text
    query = "tier=high&plan=pro&min_mrr=1500"
    workbook = client.get(f"/day/{LAST_DAY}/call_list.xlsx?{query}")
    assert workbook.status_code == 200
    assert workbook.headers["content-disposition"].endswith(f'call_list_{LAST_DAY}_filtered.xlsx"')
    expected = read_call_list_csv(client.get(f"/day/{LAST_DAY}/call_list.csv?{query}").content)
    with zipfile.ZipFile(io.BytesIO(workbook.content)) as xlsx:
        sheet = xlsx.read("xl/worksheets/sheet1.xml").decode()
    assert 0 < len(expected) < 10_000
    assert sheet.count("<row ") == len(expected) + 1  # a header and one row per customer
