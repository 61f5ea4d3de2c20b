"""``churn-assets check``: materialize a range of days and report every data-contract check.

The command runs the graph day by day through ``churn_assets.runner.run_days`` against a real
Dagster instance (a temporary one unless told otherwise), so each check is evaluated exactly
as in production, inside its asset's step, per partition. It prints one row per check
evaluation and fails (exit 1) when any check of ERROR severity failed. ``--sample`` first
generates a small clean history, so CI proves the pipeline's own contracts hold end to end.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module to build its parser: keep that light
    import dagster as dg

    from churn_assets.resources.contracts import RawContracts
    from churn_assets.runner import StepOutcome
    from churn_assets.settings import PipelineSettings

KEY_NUMBERS = 3
CONTRACT_ASSETS = frozenset(
    {"raw_billing", "raw_clickstream", "sessions", "labels", "features", "scores", "call_list"}
)
"""Assets whose checks are data contracts (inputs and outputs). The others (model, drift,
online metrics) monitor model quality: on a small sample they are statistically noisy."""
SEVERITY_ORDER = {"ERROR": 0, "WARN": 1}


@dataclass(frozen=True)
class CheckRow:
    """One check evaluation, flattened for a table."""

    asset: str
    check: str
    partition: str
    severity: str
    passed: bool
    numbers: str

    @property
    def failed_error(self) -> bool:
        return not self.passed and self.severity == "ERROR"


@dataclass(frozen=True)
class StepProblem:
    """A step that failed without a failing check to explain it (e.g. a day not landed)."""

    assets: str
    partition: str
    message: str


@dataclass
class ContractReport:
    rows: list[CheckRow]
    problems: list[StepProblem]
    gate: str = "all"

    def gated(self, row: CheckRow) -> bool:
        """Does this row count for the exit code? (``gate``: 'all' or 'contracts')."""
        return self.gate == "all" or row.asset in CONTRACT_ASSETS

    @property
    def failed_errors(self) -> list[CheckRow]:
        return [r for r in self.rows if r.failed_error and self.gated(r)]

    @property
    def ok(self) -> bool:
        return not self.failed_errors

    def exit_code(self) -> int:
        return 0 if self.ok else 1


def key_numbers(metadata: Mapping[str, dg.MetadataValue], limit: int = KEY_NUMBERS) -> str:
    """The first few numeric metadata entries, ``name=value``, as a short string."""
    shown = []
    for name, value in metadata.items():
        raw = value.value
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            continue
        shown.append(f"{name}={raw:.4g}" if isinstance(raw, float) else f"{name}={raw}")
        if len(shown) == limit:
            break
    return " ".join(shown)


def check_rows(outcomes: Iterable[StepOutcome]) -> list[CheckRow]:
    """Every check evaluation of ``outcomes``; a check re-run later replaces the earlier row."""
    latest: dict[tuple[str, str, str], CheckRow] = {}
    for outcome in outcomes:
        for evaluation in outcome.checks:
            row = CheckRow(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                partition=evaluation.partition or outcome.step.partition.isoformat(),
                severity=evaluation.severity.value,
                passed=evaluation.passed,
                numbers=key_numbers(evaluation.metadata),
            )
            latest[(row.asset, row.check, row.partition)] = row
    return sorted(latest.values(), key=lambda r: (r.partition, r.asset, r.check))


def step_problems(outcomes: Iterable[StepOutcome]) -> list[StepProblem]:
    """Failed steps whose failure no failing check explains (a day that did not land...)."""
    problems = []
    for outcome in outcomes:
        if outcome.success or outcome.failed_checks:
            continue
        problems.append(
            StepProblem(
                assets=",".join(outcome.step.assets),
                partition=outcome.step.partition.isoformat(),
                message="; ".join(outcome.errors)[:300] or "step failed",
            )
        )
    return problems


def report(outcomes: Sequence[StepOutcome], gate: str = "all") -> ContractReport:
    return ContractReport(rows=check_rows(outcomes), problems=step_problems(outcomes), gate=gate)


def format_table(rows: Sequence[CheckRow], failures_only: bool = False) -> str:
    """A plain-text table: asset, check, partition, severity, passed, key numbers."""
    shown = [r for r in rows if not failures_only or not r.passed]
    header = ("asset", "check", "partition", "severity", "passed", "key numbers")
    cells = [
        (r.asset, r.check, r.partition, r.severity, "yes" if r.passed else "NO", r.numbers)
        for r in shown
    ]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(header[:-1])]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths, strict=True)]
        return "  ".join([*padded, values[-1]])

    lines = [line(header), line(["-" * w for w in widths] + ["-" * len(header[-1])])]
    lines += [line(cell) for cell in cells]
    return "\n".join(lines)


def summary_line(result: ContractReport) -> str:
    failed = [r for r in result.rows if not r.passed]
    errors = [r for r in failed if r.failed_error]
    ungated = [r for r in errors if not result.gated(r)]
    return (
        f"{len(result.rows)} check evaluations: {len(result.rows) - len(failed)} passed, "
        f"{len(errors)} ERROR failed"
        + (f" ({len(ungated)} of them outside the gate '{result.gate}')" if ungated else "")
        + f", {len(failed) - len(errors)} WARN failed"
        + (f"; {len(result.problems)} steps failed without a check" if result.problems else "")
    )


# running ----------------------------------------------------------------------------------


def local_resources(
    landing_url: str,
    warehouse_url: str,
    models_url: str,
    raw_contracts: RawContracts | None = None,
) -> dict[str, Any]:
    """The local environment's resources at the given locations (embedded engine)."""
    from churn_assets.engines.embedded import EmbeddedEngine
    from churn_assets.environments import storage_resources

    return storage_resources(
        landing_url=landing_url,
        warehouse_url=warehouse_url,
        model_store_url=models_url,
        engine=EmbeddedEngine(),
        contracts=raw_contracts,
    )


SAMPLE_START = date(2026, 1, 5)
SAMPLE_DAYS = 20
# The honest split holds a quarter of the customers out for validation on its days: with 600,
# those rows can hold no churner on the small settings and the model cannot be trained.
SAMPLE_CUSTOMERS = 1500


def small_settings(
    start: date,
    horizon_days: int = 3,
    grace_days: int = 2,
    feature_window_days: int = 5,
    training_window_days: int = 8,
) -> PipelineSettings:
    """Small time settings: a few weeks of history reach labels, models and scores."""
    from churn_assets.core.daily_model import TrainingConfig
    from churn_assets.core.tuning import TuningConfig
    from churn_assets.settings import PipelineSettings

    return PipelineSettings(
        history_start=start,
        horizon_days=horizon_days,
        grace_days=grace_days,
        feature_window_days=feature_window_days,
        training_window_days=training_window_days,
        training=TrainingConfig(
            validation_days=2, test_days=2, tuning=TuningConfig(max_trials=2, time_budget_s=20)
        ),
    )


def generate_sample(
    landing: Path, start: date, days: int, customers: int, seed: int, settings: PipelineSettings
) -> None:
    """A clean generated history (no faults) in ``landing``."""
    from churn_assets.core.generator import GeneratorConfig, generate_landing
    from churn_assets.resources.storage import LocalObjectStore

    store = LocalObjectStore(landing)
    config = GeneratorConfig(
        start=start,
        days=days,
        customers=customers,
        seed=seed,
        horizon_days=settings.horizon_days,
        grace_days=settings.grace_days,
    )
    generate_landing(store.put, config, delete=store.delete)


def run_contracts(
    settings: PipelineSettings,
    days: Sequence[date],
    landing_url: str,
    workdir: Path,
    instance: dg.DagsterInstance | None = None,
    on_step: Any = None,
    gate: str = "all",
    raw_contracts: RawContracts | None = None,
) -> tuple[ContractReport, list[StepOutcome]]:
    """Materialize ``days`` against ``instance`` (a temporary one by default) and report."""
    import dagster as dg

    from churn_assets.definitions import build_definitions
    from churn_assets.runner import run_days

    resources = local_resources(
        landing_url, str(workdir / "warehouse"), str(workdir / "models"), raw_contracts
    )
    defs = build_definitions(settings=settings, resources=resources)
    if instance is not None:
        outcomes = run_days(defs, instance, settings, days, on_step=on_step)
    else:
        with dg.DagsterInstance.ephemeral() as temporary:
            outcomes = run_days(defs, temporary, settings, days, on_step=on_step)
    return report(outcomes, gate), outcomes


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def temporary_workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="churn-contracts-")


# the command ------------------------------------------------------------------------------


def add_arguments(parser: Any) -> None:
    """The ``check`` subcommand's options (an argparse parser)."""
    parser.add_argument("--start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, help="last day, included")
    parser.add_argument("--landing", help="landing zone: a directory or s3://bucket/prefix")
    parser.add_argument(
        "--contracts",
        help="YAML thresholds of the raw layer's checks (default: $CHURN_CONTRACTS_FILE, "
        "else the defaults; see contracts.yaml)",
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="generate a small clean history in a temporary directory and check it",
    )
    parser.add_argument(
        "--workdir",
        help="keep the warehouse, models and Dagster instance here (default: temporary)",
    )
    parser.add_argument("--history-start", type=date.fromisoformat, help="default: --start")
    parser.add_argument("--horizon-days", type=int, default=None)
    parser.add_argument("--grace-days", type=int, default=None)
    parser.add_argument("--feature-window-days", type=int, default=None)
    parser.add_argument("--training-window-days", type=int, default=None)
    parser.add_argument("--days", type=int, default=SAMPLE_DAYS, help="--sample: days")
    parser.add_argument("--customers", type=int, default=SAMPLE_CUSTOMERS, help="--sample")
    parser.add_argument("--seed", type=int, default=7, help="--sample: generator seed")
    parser.add_argument(
        "--failures-only", action="store_true", help="print only the checks that failed"
    )
    parser.add_argument(
        "--gate",
        choices=("all", "contracts"),
        default="all",
        help="which ERROR checks set the exit code: every check (default), or only the data "
        f"contracts of {', '.join(sorted(CONTRACT_ASSETS))} (model-quality monitors are "
        "still printed)",
    )


def settings_from(args: Any, start: date) -> PipelineSettings:
    """--sample uses the small settings, a given landing the production ones; flags override."""
    from dataclasses import replace

    from churn_assets.settings import PipelineSettings

    overrides = {
        name: getattr(args, name)
        for name in ("horizon_days", "grace_days", "feature_window_days", "training_window_days")
        if getattr(args, name) is not None
    }
    history_start = args.history_start or start
    if args.sample:
        return small_settings(history_start, **overrides)
    return replace(PipelineSettings(history_start=history_start), **overrides)


def raw_contracts_from(args: Any) -> RawContracts:
    """``--contracts FILE``, else the environment's file, else the defaults."""
    import os

    from churn_assets.resources.contracts import CONTRACTS_FILE_VARIABLE, RawContracts

    source = args.contracts or os.environ.get(CONTRACTS_FILE_VARIABLE)
    print(f"Raw-layer thresholds: {source or 'the defaults (as in contracts.yaml)'}")
    return RawContracts.from_file(source) if source else RawContracts()


def check_command(args: Any) -> int:
    """Run ``churn-assets check``; returns the exit code (1 when an ERROR check failed)."""
    import dagster as dg

    raw_contracts = raw_contracts_from(args)
    with temporary_workdir() as scratch:
        workdir = Path(args.workdir) if args.workdir else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.sample:
            start = args.start or SAMPLE_START
            end = args.end or start + timedelta(days=args.days - 1)
            settings = settings_from(args, start)
            landing = args.landing or str(workdir / "landing")
            days = (end - start).days + 1
            print(
                f"Generating a clean sample: {days} days from {start}, {args.customers} customers"
            )
            generate_sample(Path(landing), start, days, args.customers, args.seed, settings)
        else:
            if not (args.start and args.end and args.landing):
                print("check: --start, --end and --landing are required (or use --sample)")
                return 2
            start, end, landing = args.start, args.end, args.landing
            settings = settings_from(args, start)
        days_to_run = date_range(start, end)
        print(
            f"Materializing {start} .. {end} ({len(days_to_run)} days) from {landing} "
            f"(horizon {settings.horizon_days}, grace {settings.grace_days}, feature window "
            f"{settings.feature_window_days}, training window {settings.training_window_days})"
        )
        if args.workdir:
            home = workdir / "dagster_home"
            home.mkdir(exist_ok=True)
            with dg.DagsterInstance.local_temp(str(home)) as instance:
                result, _ = run_contracts(
                    settings,
                    days_to_run,
                    landing,
                    workdir,
                    instance,
                    gate=args.gate,
                    raw_contracts=raw_contracts,
                )
        else:
            result, _ = run_contracts(
                settings, days_to_run, landing, workdir, gate=args.gate, raw_contracts=raw_contracts
            )
    print(format_table(result.rows, failures_only=args.failures_only))
    for problem in result.problems:
        print(f"step failed without a failing check: {problem.assets}[{problem.partition}]")
    print(summary_line(result))
    scope = "" if args.gate == "all" else f" of the gate '{args.gate}'"
    print(
        f"FAILED: an ERROR check{scope} failed"
        if not result.ok
        else f"OK: no ERROR check{scope} failed"
    )
    return result.exit_code()
