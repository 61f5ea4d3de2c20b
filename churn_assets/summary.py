"""What the demo prints: one line per day while it runs, and a short summary at the end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from churn_assets.runner import StepOutcome
from churn_assets.settings import PipelineSettings


class DemoProgress:
    def __init__(self, settings: PipelineSettings, days: Sequence[date]):
        self.settings = settings
        self.days = list(days)
        self.started = time.perf_counter()
        self._line: list[str] = []
        self._day: date | None = None

    def update(self, outcome: StepOutcome) -> None:
        step = outcome.step
        if step.assets[0] == "raw_billing":
            self._flush()
            self._day = step.partition
        self._line.append(self._describe(outcome))

    def _describe(self, outcome: StepOutcome) -> str:
        name = outcome.step.assets[0] if len(outcome.step.assets) == 1 else "ingest"
        mark = "ok" if outcome.success else "FAILED"
        failed = [f"{c.asset_key.to_user_string()}:{c.check_name}" for c in outcome.failed_checks]
        detail = ""
        if name == "ingest":
            events = outcome.metadata.get("raw_clickstream", {}).get("valid")
            detail = f" {events:,} events" if isinstance(events, int) else ""
        elif name == "labels":
            rate = outcome.metadata.get("labels", {}).get("true_rate")
            detail = f"[{outcome.step.partition}] churn {rate:.1%}" if rate is not None else ""
        elif name == "model":
            meta = outcome.metadata.get("model", {})
            if "auc" in meta:
                detail = f" AUC {meta['auc']:.3f}" + ("" if meta.get("promoted") else " (kept old)")
        checks = f" checks failed: {', '.join(failed)}" if failed else ""
        return f"{name}{detail} {mark}{checks}"

    def _flush(self) -> None:
        if self._day is not None:
            index = self.days.index(self._day) + 1
            elapsed = time.perf_counter() - self.started
            print(
                f"[{index:>3}/{len(self.days)} {elapsed:5.0f}s] {self._day}: "
                + "; ".join(self._line)
            )
        self._line = []

    @staticmethod
    def healthy(outcomes: Sequence[StepOutcome]) -> bool:
        return all(o.success for o in outcomes)

    def summary(self, outcomes: Sequence[StepOutcome], warehouse: str, home: Path) -> str:
        self._flush()
        failed = [o for o in outcomes if not o.success]
        models = [o for o in outcomes if o.step.assets == ("model",) and o.success]
        scores = [o for o in outcomes if o.step.assets == ("scores",) and o.success]
        check_failures = sum(len(o.failed_checks) for o in outcomes)
        lines = [
            "",
            "=" * 72,
            f"Done in {time.perf_counter() - self.started:.0f}s: "
            f"{len(outcomes) - len(failed)}/{len(outcomes)} runs succeeded, "
            f"{check_failures} check evaluations failed.",
        ]
        if models:
            meta = models[-1].metadata["model"]
            lines.append(
                f"Model {meta.get('model_version')}: out-of-time AUC {meta.get('auc', float('nan')):.3f} "
                f"vs baseline {meta.get('baseline_auc', float('nan')):.3f}; "
                f"PR-AUC {meta.get('pr_auc', float('nan')):.3f} vs "
                f"{meta.get('baseline_pr_auc', float('nan')):.3f}; log loss "
                f"{meta.get('log_loss', float('nan')):.3f} vs {meta.get('baseline_log_loss', float('nan')):.3f}."
            )
        if scores:
            last = scores[-1].step.partition
            meta = scores[-1].metadata["scores"]
            lines.append(
                f"Scores for {last}: {meta.get('customers_scored')} customers, "
                f"{meta.get('high_risk')} high risk -> {Path(warehouse) / 'scores' / f'dt={last}'}"
            )
        for outcome in failed[:5]:
            lines.append(f"FAILED: {','.join(outcome.step.assets)} [{outcome.step.partition}]")
        lines += [
            "Open the UI on these materializations:",
            f"  DAGSTER_HOME={home} .venv/bin/dagster dev    (or: make dev)",
            "  then Assets -> churn graph -> any asset -> Partitions / Checks / Plots.",
            "=" * 72,
        ]
        return "\n".join(lines)
