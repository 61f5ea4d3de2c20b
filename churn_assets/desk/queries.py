"""What the desk's pages ask of a day's call list: filter, sort, page, totals, history.

Every filter and sort runs in DuckDB over Arrow tables (a 100,000-row day answers in
milliseconds); user input only ever reaches SQL as bound parameters, and sort columns come
from a fixed list. No Dagster import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from churn_assets.core.billing import PLANS
from churn_assets.core.call_list import CALL_LIST_COLUMNS

TIERS: tuple[str, ...] = ("high", "medium", "low")
SORTABLE: tuple[str, ...] = tuple(
    c for c in CALL_LIST_COLUMNS if not c.startswith("reason_") and c != "model_version"
)
PAGE_SIZE = 50


@dataclass(frozen=True)
class ListQuery:
    """The list page's controls, validated: anything unknown falls back to the default."""

    tier: str | None = None
    plan: str | None = None
    min_mrr: float | None = None
    search: str | None = None
    sort: str = "rank"
    descending: bool = False
    page: int = 1
    page_size: int = PAGE_SIZE

    @classmethod
    def from_params(cls, params: Any) -> ListQuery:
        """From URL query parameters (a mapping of strings); bad values are ignored."""

        def pick(name: str, allowed: Sequence[str]) -> str | None:
            value = (params.get(name) or "").strip().lower()
            return value if value in allowed else None

        def number(name: str, default: float | None) -> float | None:
            try:
                value = float(params.get(name) or "")
            except ValueError:
                return default
            return value if value == value and abs(value) != float("inf") else default

        search = (params.get("q") or "").strip()[:200] or None
        page = number("page", 1)
        return cls(
            tier=pick("tier", TIERS),
            plan=pick("plan", PLANS),
            min_mrr=number("min_mrr", None),
            search=search,
            sort=pick("sort", SORTABLE) or "rank",
            descending=(params.get("dir") or "").lower() == "desc",
            page=max(1, int(page or 1)),
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """URL parameters of this query with ``changes`` applied (for links and forms)."""
        q = replace(self, **changes)
        out = {
            "tier": q.tier or "",
            "plan": q.plan or "",
            "min_mrr": "" if q.min_mrr is None else f"{q.min_mrr:g}",
            "q": q.search or "",
            "sort": q.sort,
            "dir": "desc" if q.descending else "asc",
            "page": str(q.page),
        }
        return {k: v for k, v in out.items() if v and not (k == "page" and v == "1")}


@dataclass(frozen=True)
class ListPage:
    rows: list[dict[str, Any]]
    matching: int
    totals: list[dict[str, Any]]  # per tier: customers, mrr (of the filtered list)
    page: int
    pages: int


_WHERE = """
    WHERE ($tier IS NULL OR risk_tier = $tier)
      AND ($plan IS NULL OR plan = $plan)
      AND ($min_mrr IS NULL OR mrr >= $min_mrr)
      AND ($search IS NULL
           OR contains(lower(coalesce(account_name, '')), lower($search))
           OR contains(lower(customer_id), lower($search)))
"""


def _bind(query: ListQuery) -> dict[str, Any]:
    return {
        "tier": query.tier,
        "plan": query.plan,
        "min_mrr": query.min_mrr,
        "search": query.search,
    }


def _order(query: ListQuery) -> str:
    direction = "DESC" if query.descending else "ASC"
    return f'ORDER BY "{query.sort}" {direction} NULLS LAST, rank ASC'  # sort: from SORTABLE


def filtered(day_list: pa.Table, query: ListQuery) -> pa.Table:
    """Every row matching the filters, in the query's order (what an export downloads)."""
    con = duckdb.connect()
    try:
        con.register("day_list", day_list)
        sql = f"SELECT * FROM day_list {_WHERE} {_order(query)}"
        return con.execute(sql, _bind(query)).fetch_arrow_table()
    finally:
        con.close()


def list_page(day_list: pa.Table, query: ListQuery) -> ListPage:
    """One page of the filtered, sorted list, the number of matches and MRR per tier."""
    con = duckdb.connect()
    try:
        con.register("day_list", day_list)
        bind = _bind(query)
        totals = (
            con.execute(
                f"""SELECT risk_tier, count(*) AS customers, coalesce(sum(mrr), 0) AS mrr
                FROM day_list {_WHERE} GROUP BY risk_tier""",
                bind,
            )
            .fetch_arrow_table()
            .to_pylist()
        )
        matching = sum(t["customers"] for t in totals)
        pages = max(1, -(-matching // query.page_size))
        page = min(query.page, pages)
        rows = (
            con.execute(
                f"SELECT * FROM day_list {_WHERE} {_order(query)} LIMIT $limit OFFSET $offset",
                bind | {"limit": query.page_size, "offset": (page - 1) * query.page_size},
            )
            .fetch_arrow_table()
            .to_pylist()
        )
    finally:
        con.close()
    by_tier = {t["risk_tier"]: t for t in totals}
    ordered = [
        {"risk_tier": tier, "customers": 0, "mrr": 0.0} | by_tier.get(tier, {}) for tier in TIERS
    ]
    return ListPage(rows=rows, matching=matching, totals=ordered, page=page, pages=pages)


def rows_of(table: pa.Table | None, customer_id: str, day: str) -> pa.Table | None:
    """The rows of ``customer_id`` in one day's table, with a ``day`` column in front."""
    if table is None:
        return None
    hit = table.filter(pc.equal(table["customer_id"], customer_id))
    if hit.num_rows == 0:
        return None
    return hit.add_column(0, "day", pa.array([day] * hit.num_rows, pa.string()))


def history(days: Sequence[tuple[str, pa.Table | None]], customer_id: str) -> list[dict]:
    """One customer's rows over several days' tables, oldest first."""
    found = [t for day, table in days if (t := rows_of(table, customer_id, day)) is not None]
    if not found:
        return []
    return pa.concat_tables(found, promote_options="default").to_pylist()
