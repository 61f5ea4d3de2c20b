"""What the demo prints: progress while the backfill runs, and a short summary at the end."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from churn_assets.runner import StepOutcome


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a"


def rejected_by_gate(outcome: StepOutcome) -> bool:
    """A model run whose only failure is its blocking champion gate: the candidate was
    trained and recorded, and the previous model keeps serving. That is the gate doing its
    job, not a broken run."""
    blocking = [c.check_name for c in outcome.failed_checks if c.severity.value == "ERROR"]
    is_model = outcome.step.assets == ("model",)
    return not outcome.success and is_model and blocking == ["champion_gate"]


class DemoProgress:
    """Prints a line per failed step, per model and every ``every`` steps of a phase."""

    def __init__(self, total_steps: int, every: int = 25):
        self.total = total_steps
        self.every = every
        self.done = 0
        self.started = time.perf_counter()

    def update(self, outcome: StepOutcome) -> None:
        self.done += 1
        step = outcome.step
        name = "+".join(step.assets)
        elapsed = time.perf_counter() - self.started
        head = f"[{self.done:>4}/{self.total} {elapsed:5.0f}s] {step.partition} {name}"
        failed = [f"{c.asset_key.to_user_string()}.{c.check_name}" for c in outcome.failed_checks]
        if rejected_by_gate(outcome):
            print(f"{head}: rejected by the champion gate, previous model serves", flush=True)
        elif not outcome.success:
            print(f"{head}: FAILED {'; '.join(failed)}", flush=True)
        elif step.assets == ("model",):
            meta = outcome.metadata.get("model", {})
            verdict = "promoted" if meta.get("promoted") else "rejected, previous model serves"
            print(f"{head}: test AUC {_fmt(meta.get('auc'))} ({verdict})", flush=True)
        elif failed or self.done % self.every == 0:
            note = f" (warnings: {', '.join(failed)})" if failed else ""
            print(f"{head}: ok{note}", flush=True)

    @staticmethod
    def healthy(outcomes: Sequence[StepOutcome]) -> bool:
        return all(o.success or rejected_by_gate(o) for o in outcomes)

    def summary(self, outcomes: Sequence[StepOutcome], warehouse: str, home: Path) -> str:
        failed = [o for o in outcomes if not o.success and not rejected_by_gate(o)]
        rejected = sum(rejected_by_gate(o) for o in outcomes)
        gate_note = f" ({rejected} candidates rejected by the champion gate)" if rejected else ""
        warnings = Counter(
            f"{c.asset_key.to_user_string()}.{c.check_name}"
            for o in outcomes
            for c in o.failed_checks
        )
        models = [o for o in outcomes if o.step.assets == ("model",) and o.success]
        scores = [o for o in outcomes if "scores" in o.step.assets and o.success]
        rule = "=" * 76
        lines = [
            "",
            rule,
            f"Done in {time.perf_counter() - self.started:.0f}s: "
            f"{len(outcomes) - len(failed)}/{len(outcomes)} runs succeeded" + f"{gate_note}.",
        ]
        if models:
            meta = models[-1].metadata["model"]
            lines.append(
                f"Model {meta.get('model_version')} (held-out test days): "
                f"AUC {_fmt(meta.get('auc'))} vs base rate {_fmt(meta.get('baseline_auc'))}, "
                f"PR-AUC {_fmt(meta.get('pr_auc'))} vs {_fmt(meta.get('baseline_pr_auc'))}, "
                f"log loss {_fmt(meta.get('log_loss'))} vs {_fmt(meta.get('baseline_log_loss'))}."
            )
        if scores:
            last = scores[-1].step.partition
            meta = scores[-1].metadata["scores"]
            lines.append(
                f"Scores of {last}: {meta.get('customers_scored')} customers, "
                f"{meta.get('high_risk')} high risk, in "
                f"{Path(warehouse).resolve() / 'scores' / f'dt={last}'}"
            )
        if warnings:
            top = ", ".join(f"{name} x{n}" for name, n in warnings.most_common(5))
            lines.append(f"Checks that did not pass (see the UI for each day): {top}")
        lines += [f"FAILED: {'+'.join(o.step.assets)} [{o.step.partition}]" for o in failed[:5]]
        lines += [
            "",
            "See it in the Dagster UI (assets, partitions, checks, metadata plots):",
            f"  make dev      (= DAGSTER_HOME={home} .venv/bin/dagster dev)",
            "  then open http://127.0.0.1:3000 -> Assets -> View lineage",
            "Watch the sensors carry a new day to scores while it runs:",
            "  .venv/bin/churn-assets next-day",
            "",
            "The sales desk (today's call list, each customer's story, CSV/Excel export):",
            "  make desk     (= .venv/bin/churn-assets desk)",
            "  then open http://127.0.0.1:8050",
            rule,
        ]
        return "\n".join(lines)
