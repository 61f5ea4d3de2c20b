"""``churn-assets``: generate landing data, run the demo backfill, check the data contracts."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from churn_assets import contracts, s3_demo, stack
from churn_assets.core.generator import GeneratorConfig, generate_landing, parse_fault
from churn_assets.resources.storage import LocalObjectStore

if TYPE_CHECKING:
    import dagster as dg

    from churn_assets.settings import PipelineSettings


def _date(text: str) -> date:
    return date.fromisoformat(text)


def write_landing(out: str, config: GeneratorConfig) -> object:
    store = LocalObjectStore(out)
    return generate_landing(store.put, config, delete=store.delete)


def cmd_generate(args: argparse.Namespace) -> int:
    config = GeneratorConfig(
        start=args.start,
        days=args.days,
        customers=args.customers,
        seed=args.seed,
        faults=tuple(parse_fault(f) for f in args.fault),
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
            start=settings.history_start, days=args.days, customers=args.customers, seed=args.seed
        )
        write_landing(str(landing), config)
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
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser(
        "check",
        help="materialize a range of days and print every data-contract check; exit 1 when "
        "an ERROR check fails (--sample: on a generated clean history)",
    )
    contracts.add_arguments(check)
    check.set_defaults(func=contracts.check_command)

    s3_demo.add_parser(sub)
    stack.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_dagster_warnings()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
