"""The sales desk in a real browser: Debian's Chromium driven by Playwright.

One materialized history (the session's end-to-end run) is copied once per module, and
the newest day's billing gets account names that try to break out of HTML and CSV. The
app runs on a free port of 127.0.0.1; the browser is the machine's own (``make setup``
installs it), never a download.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import sync_playwright

from churn_assets.core.call_list import read_call_list_csv
from churn_assets.desk.app import create_app
from churn_assets.desk.server import open_warehouse, running
from churn_assets_tests.support import EndToEndRun

CHROMIUM = os.environ.get("CHURN_CHROMIUM", "/usr/bin/chromium")
HOSTILE = {
    1: '<script>window.__pwned = 1</script> "Quote", Ltd',
    2: '<img src=x onerror="window.__pwned = 2">Zoë & Søn',
    3: "=cmd|' /C calc'!A0",
}
"""rank -> account name given to the customer at that rank on the newest day."""


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def scored_days(root: Path) -> list[str]:
    return sorted(p.name.removeprefix("dt=") for p in (root / "scores").iterdir())


def read(root: Path, asset: str, day: str) -> pd.DataFrame:
    store = open_warehouse(str(root)).warehouse
    return store.read_tables(store.partition_prefix([asset], day))


@pytest.fixture(scope="module")
def warehouse(end_to_end: EndToEndRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the end-to-end warehouse with hostile names on the newest day."""
    root = tmp_path_factory.mktemp("desk") / "warehouse"
    shutil.copytree(end_to_end.root / "warehouse", root)
    day = scored_days(root)[-1]
    scores, billing = read(root, "scores", day), read(root, "raw_billing", day)
    for rank, name in HOSTILE.items():
        customer = scores.loc[scores["rank"] == rank, "customer_id"].item()
        billing.loc[billing["customer_id"] == customer, "account_name"] = name
    store = open_warehouse(str(root)).warehouse
    store.write_tables(store.partition_prefix(["raw_billing"], day), "hostile-names", billing)
    return root


@pytest.fixture(scope="module")
def newest(warehouse: Path) -> tuple[str, pd.DataFrame]:
    day = scored_days(warehouse)[-1]
    return day, read(warehouse, "scores", day)


@pytest.fixture(scope="module")
def desk(warehouse: Path) -> Iterator[str]:
    before = tree(warehouse)
    with running(create_app(open_warehouse(str(warehouse)))) as url:
        yield url
    assert tree(warehouse) == before  # the desk wrote nothing, changed nothing


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make setup` (apt-get install chromium)")
    with sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})
    yield context.new_page()
    context.close()


def cells(page, css: str) -> list[str]:
    return [t.strip() for t in page.locator(css).all_inner_texts()]


def test_the_list_shows_the_newest_day_ranked_and_filters_and_sorts(page, desk, newest) -> None:
    day, scores = newest
    page.goto(desk + "/")
    assert page.url.endswith(f"/day/{day}")
    ids = page.locator("#customers tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.customerId)"
    )
    assert ids == scores.sort_values("rank")["customer_id"].head(50).tolist()
    assert page.locator("#matching").inner_text() == str(len(scores))
    high = int((scores["risk_tier"] == "high").sum())
    assert page.locator('#totals [data-tier="high"] .count').inner_text() == str(high)

    page.select_option("select[name=tier]", "medium")
    page.click("#filters button[type=submit]")
    medium = scores[scores["risk_tier"] == "medium"]
    assert page.locator("#matching").inner_text() == str(len(medium))
    assert set(cells(page, "#customers tbody td .tier")) <= {"medium"}

    page.click('th a[data-sort="mrr"]')  # first click on a number: largest first
    assert "sort=mrr" in page.url and "tier=medium" in page.url
    mrr = [
        float(m.replace("$", "").replace(",", ""))
        for m in cells(page, "#customers tbody td.num:nth-child(6)")
    ]
    assert mrr == sorted(mrr, reverse=True) and len(mrr) == min(50, len(medium))
    page.click('th a[data-sort="mrr"]')
    mrr = [
        float(m.replace("$", "").replace(",", ""))
        for m in cells(page, "#customers tbody td.num:nth-child(6)")
    ]
    assert mrr == sorted(mrr)

    customer = scores.sort_values("rank")["customer_id"].iloc[10]
    page.goto(f"{desk}/day/{day}")
    page.fill("input[name=q]", customer.lower())
    page.click("#filters button[type=submit]")
    assert page.locator("#customers tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.customerId)"
    ) == [customer]


def test_a_customer_page_tells_the_story(page, desk, newest, warehouse: Path) -> None:
    day, scores = newest
    row = scores.sort_values("rank").iloc[4]
    page.goto(f"{desk}/day/{day}")
    page.locator(f'#customers tr[data-customer-id="{row.customer_id}"] td.account a').click()
    assert page.url.endswith(f"/day/{day}/customer/{row.customer_id}")
    assert page.locator("#probability").inner_text() == f"{row.churn_probability * 100:.1f}%"
    reasons = [r for r in (row.reason_1, row.reason_2, row.reason_3) if isinstance(r, str)]
    assert cells(page, "#reasons li") == reasons
    history = [
        d
        for d in scored_days(warehouse)
        if row.customer_id in set(read(warehouse, "scores", d)["customer_id"])
    ][-28:]
    assert page.locator("#score-chart circle").count() == len(history)
    assert cells(page, "#history tbody tr td:first-child") == list(reversed(history))
    billing = read(warehouse, "raw_billing", day).set_index("customer_id").loc[row.customer_id]
    seats = f"{billing.seats} seat{'s' if billing.seats != 1 else ''}"
    assert page.locator("#billing dd").first.inner_text() == f"{billing.plan}, {seats}"
    assert page.locator("#activity tbody tr").count() >= 1


def test_the_csv_download_is_the_scores_table(page, desk, newest) -> None:
    day, scores = newest
    page.goto(f"{desk}/day/{day}")
    with page.expect_download() as download:
        page.click("#export-csv")
    assert download.value.suggested_filename == f"call_list_{day}.csv"
    written = read_call_list_csv(Path(download.value.path()).read_bytes())
    expected = scores.sort_values("rank").reset_index(drop=True)
    assert written["customer_id"].tolist() == expected["customer_id"].tolist()
    assert written["rank"].tolist() == expected["rank"].tolist()
    assert written["churn_probability"].tolist() == expected["churn_probability"].tolist()
    assert written["model_version"].tolist() == expected["model_version"].tolist()
    for rank, name in HOSTILE.items():
        assert written.loc[written["rank"] == rank, "account_name"].item() == name

    page.select_option("select[name=tier]", "high")
    page.click("#filters button[type=submit]")
    with page.expect_download() as download:
        page.click("#export-csv")
    assert download.value.suggested_filename == f"call_list_{day}_filtered.csv"
    high = read_call_list_csv(Path(download.value.path()).read_bytes())
    assert (
        high["customer_id"].tolist()
        == expected.loc[expected["risk_tier"] == "high", "customer_id"].tolist()
    )


def test_account_names_render_as_text(page, desk, newest) -> None:
    day = newest[0]
    page.goto(f"{desk}/day/{day}")
    assert page.locator("script").count() == 0
    assert page.locator("#customers img").count() == 0
    shown = page.locator("#customers tbody tr").evaluate_all(
        "rows => rows.map(r => r.querySelector('td.account').innerText)"
    )
    for rank, name in HOSTILE.items():
        assert shown[rank - 1] == name
    page.locator("#customers tbody tr td.account a").first.click()
    assert page.locator("#account-name").inner_text() == HOSTILE[1]
    assert page.title().startswith(HOSTILE[1])
    assert page.evaluate("window.__pwned") is None


def test_unknown_pages_and_an_empty_warehouse(page, desk, browser, tmp_path: Path) -> None:
    response = page.goto(f"{desk}/day/1999-01-01")
    assert response.status == 404 and "No scores for the day" in page.inner_text("#error")
    response = page.goto(f"{desk}/day/{page.url.split('/')[-1]}/customer/NOBODY")
    assert response.status == 404
    with running(create_app(open_warehouse(str(tmp_path / "empty")))) as empty:
        page.goto(empty + "/")
        assert "make demo" in page.inner_text("#empty")
