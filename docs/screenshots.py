"""Regenerate the README's screenshots of the sales desk.

    .venv/bin/python docs/screenshots.py WAREHOUSE_DIR [OUT_DIR]

WAREHOUSE_DIR is any materialized warehouse, e.g. data/warehouse after ``make demo``; the
committed images come from a 45-day history run with the tests' small settings
(``churn_assets_tests.support``). The "today" of the freshness banner is the day after the
newest scores (a normal morning).
"""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

from churn_assets.desk.app import create_app
from churn_assets.desk.server import open_warehouse, running


def main(warehouse_dir: str, out: Path) -> None:
    warehouse = open_warehouse(warehouse_dir)
    days = warehouse.days("scores")
    newest = date.fromisoformat(days[-1])
    app = create_app(warehouse, today=lambda: newest + timedelta(days=1))
    # a customer scored on each of the last 28 days, high on the list
    ids = [warehouse.table("scores", d).column("customer_id").to_pylist() for d in days[-28:]]
    steady = [c for c in ids[-1] if all(c in set(day) for day in ids)]
    chromium = os.environ.get("CHURN_CHROMIUM", "/usr/bin/chromium")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with running(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        page.screenshot(path=out / "desk-list.png")
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.goto(f"{url}/day/{days[-1]}/customer/{steady[2]}")
        page.screenshot(path=out / "desk-customer.png")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent))
