"""``churn-assets``: generate landing data, run the demo backfill, check the data contracts."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
import warnings
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from churn_assets import contracts, s3_demo, stack
from churn_assets.core.generator import (
    BAD_LINE_REASONS,
    GeneratorConfig,
    MessProfile,
    generate_landing,
    parse_fault,
)
from churn_assets.next_day import (
    UPCOMING,
    NoUpcomingDay,
    landed_by,
    release_next_day,
    split_by_landing_time,
)
from churn_assets.resources.storage import LocalObjectStore

if TYPE_CHECKING:
    import dagster as dg

    from churn_assets.settings import PipelineSettings


def _date(text: str) -> date:
    return date.fromisoformat(text)


def write_landing(out: str, config: GeneratorConfig) -> object:
    store = LocalObjectStore(out)
    return generate_landing(store.put, config, delete=store.delete)


def mess_profile(args: argparse.Namespace) -> MessProfile:
    """The generator's mess profile from ``--bad-lines``, ``--bad-line REASON=SHARE``, ..."""
    mess = MessProfile()
    if args.bad_lines is not None:
        mess = mess.with_bad_lines(args.bad_lines)
    per_reason: dict[str, float] = {}
    for text in args.bad_line:
        reason, _, share = text.partition("=")
        if reason.strip() not in BAD_LINE_REASONS or not share:
            raise SystemExit(
                f"--bad-line {text!r}: expected REASON=SHARE, REASON one of "
                f"{', '.join(BAD_LINE_REASONS)}"
            )
        per_reason[reason.strip()] = float(share)
    shares = {
        name: getattr(args, name)
        for name in ("duplicates", "late", "anonymous", "burst")
        if getattr(args, name) is not None
    }
    return replace(mess, **per_reason, **shares)


def cmd_generate(args: argparse.Namespace) -> int:
    config = GeneratorConfig(
        start=args.start,
        days=args.days,
        customers=args.customers,
        seed=args.seed,
        faults=tuple(parse_fault(f) for f in args.fault),
        mess=mess_profile(args),
    )
    started = time.perf_counter()
    summary = write_landing(args.out, config)
    print(
        f"wrote {summary.keys_written:,} files to {args.out} in "
        f"{time.perf_counter() - started:.1f}s: {summary.billing_days} billing days, "
        f"{summary.clickstream_objects:,} clickstream objects, {summary.events:,} events "
        f"({summary.duplicates:,} duplicates, {summary.anonymous_lines:,} anonymous, "
        f"{sum(summary.bad_lines.values()):,} bad lines); faults: "
        f"{', '.join(summary.faults_applied) or 'none'}"
    )
    return 0


def quiet_dagster_warnings() -> None:
    """Hide Dagster's notices about the beta and preview APIs this project uses on purpose
    (partitioned checks, data versions, freshness): the README lists them once."""
    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def quiet_definitions(settings: PipelineSettings, environment: str) -> dg.Definitions:
    """``build_definitions`` in a backfill worker process, without the notices."""
    from churn_assets.definitions import build_definitions

    quiet_dagster_warnings()
    return build_definitions(settings=settings, environment=environment)


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to ./.dagster_home with the repository's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and Path("dagster.yaml").exists():
        shutil.copy("dagster.yaml", home / "dagster.yaml")
    return home


def cmd_demo(args: argparse.Namespace) -> int:
    from functools import partial

    from churn_assets.runner import plan_backfill, run_backfill
    from churn_assets.settings import PipelineSettings
    from churn_assets.summary import DemoProgress

    settings = PipelineSettings()
    data = Path(args.data)
    landing = data / "landing"
    if args.fresh and data.exists():
        shutil.rmtree(data)
    if not landing.exists():
        print(f"Generating {args.days} days of landing data for {args.customers} customers ...")
        started = time.perf_counter()
        config = GeneratorConfig(
            start=settings.history_start,
            days=args.days + args.ahead,
            customers=args.customers,
            seed=args.seed,
        )
        last_day = settings.history_start + timedelta(days=args.days - 1)
        write = split_by_landing_time(
            LocalObjectStore(landing), LocalObjectStore(data / UPCOMING), last_day
        )
        generate_landing(write, config)
        print(f"  {landing} ready in {time.perf_counter() - started:.0f}s", flush=True)
    os.environ.setdefault("CHURN_LANDING_URL", str(landing))
    os.environ.setdefault("CHURN_WAREHOUSE_URL", str(data / "warehouse"))
    os.environ.setdefault("CHURN_MODEL_STORE_URL", str(data / "models"))
    home = ensure_dagster_home()
    days = [settings.history_start + timedelta(days=i) for i in range(args.days)]
    total = len(plan_backfill(settings, days))
    print(f"Materializing the graph over {len(days)} days ({total} runs, {args.workers} wide) ...")
    progress = DemoProgress(total)
    outcomes = run_backfill(
        partial(quiet_definitions, settings=settings, environment="local"),
        settings,
        days,
        workers=args.workers,
        on_step=progress.update,
        tags={"churn/demo": "backfill"},
    )
    print(progress.summary(outcomes, warehouse=os.environ["CHURN_WAREHOUSE_URL"], home=home))
    return 0 if progress.healthy(outcomes) else 1


def cmd_next_day(args: argparse.Namespace) -> int:
    data = Path(args.data)
    landing = LocalObjectStore(data / "landing")
    try:
        released = release_next_day(landing, LocalObjectStore(data / UPCOMING))
    except NoUpcomingDay:
        print(
            f"No generated day is left in {data / UPCOMING}: `churn-assets demo --fresh "
            "--ahead N` simulates N days beyond the backfilled history."
        )
        return 1
    print(
        f"Landed {released.day} in {landing.url}: {released.clickstream_objects} clickstream "
        f"objects (arrived until {landed_by(released.day):%Y-%m-%d %H:%M} UTC) and its billing "
        f"extract ({released.billing_files} files, _SUCCESS last). With `make dev` running, "
        f"the landing sensors request raw_billing[{released.day}] and "
        f"raw_clickstream[{released.day}] on their next tick; automation carries the day to "
        "scores."
    )
    return 0


def cmd_desk(args: argparse.Namespace) -> int:
    """Serve the sales desk over the warehouse (read-only) until Ctrl-C."""
    from churn_assets.desk.app import DeskSettings, create_app
    from churn_assets.desk.server import address, bind, open_warehouse, serve

    url = args.warehouse or os.environ.get("CHURN_WAREHOUSE_URL", "data/warehouse")
    instance = None
    if os.environ.get("DAGSTER_HOME") or Path(".dagster_home/dagster.yaml").exists():
        import dagster as dg

        ensure_dagster_home()
        try:  # lets the banner name the blocking check behind missing scores
            instance = dg.DagsterInstance.get()
        except Exception as error:
            print(f"NOTE: no Dagster instance ({error}); the banner will not name checks.")
    warehouse, settings = open_warehouse(url), DeskSettings(dagster_url=args.dagster_url)
    app = create_app(warehouse, settings, instance=instance)
    threading.Thread(target=warehouse.warm, args=(settings.history_days,), daemon=True).start()
    sock = bind(args.host, args.port)
    print(f"Churn desk on {address(sock)}/ (warehouse {url}; read-only). Ctrl-C stops it.")
    serve(app, sock)  # uvicorn handles Ctrl-C and shuts down cleanly
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churn-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    generate = sub.add_parser("generate", help="write a synthetic landing zone (LANDING.md)")
    generate.add_argument("--start", type=_date, default=date(2026, 1, 1))
    generate.add_argument("--days", type=int, default=150)
    generate.add_argument("--customers", type=int, default=2000)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--out", default="data/landing")
    generate.add_argument(
        "--fault", action="append", default=[], help="KIND:YYYY-MM-DD, repeatable"
    )
    mess = generate.add_argument_group(
        "mess profile", "shares of the everyday mess of the clickstream (0.02 = 2%)"
    )
    mess.add_argument(
        "--bad-lines", type=float, help="bad lines in all, default mix of reasons (~0.02)"
    )
    mess.add_argument(
        "--bad-line",
        action="append",
        default=[],
        metavar="REASON=SHARE",
        help=f"one reason's share, repeatable ({', '.join(BAD_LINE_REASONS)})",
    )
    mess.add_argument("--duplicates", type=float, help="attributed events delivered twice")
    mess.add_argument("--late", type=float, help="events arriving after their window")
    mess.add_argument("--anonymous", type=float, help="events without a customer id")
    mess.add_argument("--burst", type=float, help="extra bad lines of a bad_lines_burst day")
    generate.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="generate a history and materialize the whole graph")
    demo.add_argument("--days", type=int, default=120)
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--data",
        default="data",
        help="folder for landing, warehouse and models (the UI reads ./data unless "
        "CHURN_LANDING_URL, CHURN_WAREHOUSE_URL and CHURN_MODEL_STORE_URL say otherwise)",
    )
    demo.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 2),
        help="runs at a time in the backfill (default: cores, at most 4)",
    )
    demo.add_argument("--fresh", action="store_true", help="delete --data first")
    demo.add_argument(
        "--ahead",
        type=int,
        default=7,
        help="days simulated beyond the history, kept in DATA/upcoming for `next-day`",
    )
    demo.set_defaults(func=cmd_demo)

    next_day = sub.add_parser(
        "next-day",
        help="land the demo's next day (clickstream, then billing) for the running daemon",
    )
    next_day.add_argument("--data", default="data", help="the demo's --data folder")
    next_day.set_defaults(func=cmd_next_day)

    check = sub.add_parser(
        "check",
        help="materialize a range of days and print every data-contract check; exit 1 when "
        "an ERROR check fails (--sample: on a generated clean history)",
    )
    contracts.add_arguments(check)
    check.set_defaults(func=contracts.check_command)

    desk = sub.add_parser(
        "desk", help="the sales desk: today's call list and each customer's story, in a browser"
    )
    desk.add_argument(
        "--warehouse", help="directory or s3://… (default: $CHURN_WAREHOUSE_URL or data/warehouse)"
    )
    desk.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    desk.add_argument("--port", type=int, default=8050, help="0 picks a free port")
    desk.add_argument(
        "--dagster-url", default="http://127.0.0.1:3000", help="the Dagster UI, for links"
    )
    desk.set_defaults(func=cmd_desk)

    s3_demo.add_parser(sub)
    stack.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_dagster_warnings()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
