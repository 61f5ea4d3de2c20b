"""The sales desk's pages: today's call list, a customer's story, exports. GET only.

Server-side Jinja2 templates (autoescaped) and no JavaScript at all; a Content Security
Policy forbids scripts outright, so a name like ``<script>`` is text twice over. Filters,
sorting and paging are links and a GET form, so every view has a URL a salesperson can
share. Endpoints are plain functions: Starlette runs them in its thread pool, so reading
the warehouse never blocks the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from churn_assets.core.call_list import call_list_csv, call_list_xlsx
from churn_assets.core.scoring import SCORE_COLUMNS
from churn_assets.desk import queries, status
from churn_assets.desk.chart import score_chart
from churn_assets.desk.warehouse import ACTIVITY_COLUMNS, DESK_BILLING_COLUMNS, DeskWarehouse

log = logging.getLogger(__name__)

BLOCKED_CHECKS_TTL_S = 60.0
XLSX_MAX_ROWS = 10_000
"""Excel files are written cell by cell in Python (seconds per 10,000 rows); a call list
for people is a filtered one, and the CSV has no limit."""
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class DeskSettings:
    """How the desk links out and how much history a customer page shows."""

    dagster_url: str = "http://127.0.0.1:3000"
    history_days: int = 28
    activity_weeks: int = 8
    demo_command: str = "make demo"


def _money(value: Any) -> str:
    return "" if value is None else f"${float(value):,.0f}"


def _percent(value: Any) -> str:
    return "" if value is None else f"{float(value) * 100:.1f}%"


def _points(value: Any) -> str:
    """A change of probability in percentage points, signed ('+4.2 pts')."""
    return "" if value is None else f"{float(value) * 100:+.1f} pts"


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # every value is text unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(money=_money, percent=_percent, points=_points)
    env.globals["quote"] = lambda value: quote(str(value), safe="")
    env.globals["urlencode"] = urlencode
    return env


def create_app(
    warehouse: DeskWarehouse,
    settings: DeskSettings | None = None,
    instance: Any = None,
    today: Callable[[], date] = utc_today,
) -> Starlette:
    """The desk over ``warehouse``; ``instance`` (a DagsterInstance, optional) lets the
    freshness banner name the blocking check that stopped a day's scores."""
    settings = settings or DeskSettings()
    env = templates()

    def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("warehouse_url", warehouse.url)
        context.setdefault("dagster_url", settings.dagster_url)
        html = env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    def scored_day(request: Request) -> tuple[str, list[str]]:
        days = warehouse.days("scores")
        day = request.path_params["day"]
        if day not in days:
            raise HTTPException(404, f"No scores for the day {day!r}.")
        return day, days

    def banner(day: str, days: list[str]) -> status.Freshness:
        latest = date.fromisoformat(days[-1])
        expected = status.expected_latest(today())
        blocked: list[status.BlockedCheck] = []
        if instance is not None and latest < expected:
            missing = tuple(
                (latest + timedelta(days=i)).isoformat()
                for i in range(1, min((expected - latest).days, 14) + 1)
            )
            blocked = blocked_on(missing)
        return status.freshness(latest, date.fromisoformat(day), today(), blocked)

    checked: dict[tuple[str, ...], tuple[float, list[status.BlockedCheck]]] = {}

    def blocked_on(days: tuple[str, ...]) -> list[status.BlockedCheck]:
        """The instance's answer for ``days``, asked at most once a minute."""
        now = time.monotonic()
        if days in checked and now - checked[days][0] < BLOCKED_CHECKS_TTL_S:
            return checked[days][1]
        try:
            found = status.blocking_failures(instance, days)
        except Exception:  # the banner still shows, without the instance's details
            log.exception("could not read check evaluations from the Dagster instance")
            found = []
        checked.clear()
        checked[days] = (now, found)
        return found

    def trust_panel(day: str) -> dict[str, Any]:
        matured = [d for d in warehouse.days("online_metrics") if d <= day]
        summary = None
        if matured:
            table = warehouse.table("online_metrics", matured[-1], table="summary")
            rows = table.to_pylist() if table is not None else []
            summary = rows[0] if rows else None
        return status.trust(summary)

    def home(request: Request) -> Response:
        days = warehouse.days("scores")
        if not days:
            return page("empty.html", status_code=200)
        return RedirectResponse(f"/day/{days[-1]}", status_code=302)

    def pick(request: Request) -> Response:
        day = request.query_params.get("day", "")
        if day not in warehouse.days("scores"):
            raise HTTPException(404, f"No scores for the day {day!r}.")
        return RedirectResponse(f"/day/{day}", status_code=302)

    def day_list_or_404(day: str) -> Any:
        table = warehouse.day_list(day)
        if table is None:
            raise HTTPException(404, f"No scores for the day {day!r}.")
        return table

    def day_page(request: Request) -> Response:
        day, days = scored_day(request)
        table = day_list_or_404(day)
        query = queries.ListQuery.from_params(request.query_params)
        result = queries.list_page(table, query)
        versions = sorted(v for v in table.column("model_version").unique().to_pylist() if v)
        return page(
            "list.html",
            day=day,
            days=days,
            query=query,
            result=result,
            total_customers=table.num_rows,
            model_versions=versions,
            freshness=banner(day, days),
            trust=trust_panel(day),
            tiers=queries.TIERS,
            plans=queries.PLANS,
            written_at=warehouse.written_at("scores", day),
            xlsx_max_rows=XLSX_MAX_ROWS,
        )

    def export(request: Request, kind: str) -> Response:
        day, _ = scored_day(request)
        query = queries.ListQuery.from_params(request.query_params)
        rows = queries.filtered(day_list_or_404(day), query)
        filters = any((query.tier, query.plan, query.min_mrr is not None, query.search))
        name = f"call_list_{day}{'_filtered' if filters else ''}"
        if kind == "xlsx":
            if rows.num_rows > XLSX_MAX_ROWS:
                return page(
                    "error.html",
                    status_code=400,
                    title="Too many rows for Excel",
                    detail=f"This list has {rows.num_rows:,} customers; the Excel download "
                    f"holds up to {XLSX_MAX_ROWS:,}. Filter the list, or download the CSV.",
                )
            body = call_list_xlsx(rows, sheet=f"call list {day}")
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            body, media = call_list_csv(rows), "text/csv; charset=utf-8"
        headers = {"Content-Disposition": f'attachment; filename="{name}.{kind}"'}
        return Response(body, media_type=media, headers=SECURITY_HEADERS | headers)

    def export_csv(request: Request) -> Response:
        return export(request, "csv")

    def export_xlsx(request: Request) -> Response:
        return export(request, "xlsx")

    def customer_page(request: Request) -> Response:
        day, days = scored_day(request)
        customer_id = request.path_params["customer_id"]
        today_rows = queries.history([(day, day_list_or_404(day))], customer_id)
        if not today_rows:
            raise HTTPException(404, f"No customer {customer_id!r} was scored on {day}.")
        first = (date.fromisoformat(day) - timedelta(days=settings.history_days - 1)).isoformat()
        window = [d for d in days if first <= d <= day]
        scored = queries.history(
            [(d, warehouse.table("scores", d, SCORE_COLUMNS)) for d in window], customer_id
        )
        weeks = [
            (date.fromisoformat(day) - timedelta(days=7 * w)).isoformat()
            for w in range(settings.activity_weeks)
        ]
        activity = queries.history(
            [(d, warehouse.table("features", d, ACTIVITY_COLUMNS)) for d in weeks], customer_id
        )
        billing = queries.history(
            [(day, warehouse.table("raw_billing", day, DESK_BILLING_COLUMNS))], customer_id
        )
        return page(
            "customer.html",
            day=day,
            days=days,
            customer=today_rows[0],
            history=list(reversed(scored)),
            chart=score_chart(scored),
            activity=list(reversed(activity)),
            billing=billing[0] if billing else None,
            history_days=settings.history_days,
            freshness=banner(day, days),
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "") or "There is no such page."
        return page("error.html", status_code=404, title="Not found", detail=detail)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("desk page failed", exc_info=exc)
        return page(
            "error.html",
            status_code=500,
            title="Something went wrong",
            detail="The page could not be built; the error is in the desk's log.",
        )

    routes = [
        Route("/", home, methods=["GET"]),
        Route("/pick", pick, methods=["GET"]),
        Route("/day/{day}", day_page, methods=["GET"]),
        Route("/day/{day}/call_list.csv", export_csv, methods=["GET"]),
        Route("/day/{day}/call_list.xlsx", export_xlsx, methods=["GET"]),
        Route("/day/{day}/customer/{customer_id}", customer_page, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={404: not_found, 500: server_error, Exception: server_error},
    )
