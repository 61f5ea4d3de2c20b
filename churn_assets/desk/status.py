"""The desk's words about the data: how fresh it is, what stopped it, how good it has been.

``freshness`` and ``trust`` are pure; ``blocking_failures`` asks a Dagster instance (when
the desk has one) which blocking check failed on the days that have no scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

UPSTREAM_OF_SCORES: tuple[str, ...] = (
    "raw_billing",
    "raw_clickstream",
    "sessions",
    "features",
    "model",
    "scores",
)


@dataclass(frozen=True)
class BlockedCheck:
    """A blocking check whose latest evaluation on ``day`` failed (ERROR severity)."""

    asset: str
    check: str
    day: str
    description: str = ""


@dataclass(frozen=True)
class Freshness:
    level: str  # "ok", "stale" (scores missing for recent days) or "past" (an older day shown)
    message: str
    blocked_by: list[BlockedCheck] = field(default_factory=list)


def expected_latest(today: date) -> date:
    """The newest day that should be scored by now: D is scored once D's data has landed
    (the billing extract and clickstream window close early on D+1)."""
    return today - timedelta(days=1)


def freshness(
    latest: date, shown: date, today: date, blocked_by: Sequence[BlockedCheck] = ()
) -> Freshness:
    """What the banner says about ``shown`` given the newest scored day and the date."""
    expected = expected_latest(today)
    if latest < expected:
        late = (expected - latest).days
        message = (
            f"The list for {expected.isoformat()} is missing: the newest scores are of "
            f"{latest.isoformat()}, {late} day{'s' if late != 1 else ''} older than they "
            "should be."
        )
        if not blocked_by:
            message += " No failed blocking check was found: the data has not landed yet."
        return Freshness("stale", message, list(blocked_by))
    if shown < latest:
        return Freshness(
            "past", f"You are looking at {shown.isoformat()}; the newest is {latest.isoformat()}."
        )
    return Freshness("ok", f"Up to date: scores of {latest.isoformat()}.")


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def trust(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The "how good is this" panel from one row of ``online_metrics``'s summary, in words."""
    if summary is None:
        return {
            "known": False,
            "sentences": [
                "Not known yet. Whether a scored customer churned is only final some weeks "
                "later (the churn horizon plus the grace period for re-activations); no "
                "scored day is that old yet."
            ],
        }

    def number(key: str) -> float:
        value = summary.get(key)
        return math.nan if value is None else float(value)

    day = str(summary.get("day", ""))[:10]
    sentences = [f"Measured on the scores of {day}, now that their outcomes are known."]
    precision, rate = number("precision_top_decile"), number("churn_rate")
    if not math.isnan(precision):
        line = f"Of the 10% of customers ranked riskiest, {_percent(precision)} did churn"
        if not math.isnan(rate) and rate > 0:
            line += f", against {_percent(rate)} of all customers ({precision / rate:.1f}× better"
            line += " than calling at random)"
        sentences.append(line + ".")
    flagged, share = number("flagged"), number("flagged_churn_share")
    if not math.isnan(share) and flagged > 0:
        sentences.append(
            f"Of the {flagged:.0f} customers marked high risk, {_percent(share)} churned."
        )
    auc, offline = number("realised_auc"), number("offline_auc")
    if not math.isnan(auc):
        line = f"Ranking quality (AUC) {auc:.2f}: 0.5 is a coin toss, 1.0 ranks every churner first"
        if not math.isnan(offline):
            verdict = "as promised" if auc >= offline - 0.05 else "below what was promised"
            line += f"; the model promised {offline:.2f} when it was trained ({verdict})"
        sentences.append(line + ".")
    return {"known": True, "sentences": sentences, "day": day}


def blocking_failures(instance: Any, days: Sequence[str], limit: int = 5000) -> list[BlockedCheck]:
    """Blocking checks of the assets upstream of ``scores`` whose latest evaluation on one
    of ``days`` failed with ERROR severity, newest day first.

    Reads the newest ``limit`` check evaluations of the instance (the event-log filters on
    asset and partition do not apply to check evaluations) and keeps the latest per check
    and day, so a failure that a re-run fixed is not reported.
    """
    import dagster as dg

    wanted = set(days)
    if not wanted:
        return []
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION),
        limit=limit,
        ascending=False,
    )
    latest: dict[tuple[str, str, str], Any] = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        asset = evaluation.asset_key.to_user_string()
        if asset in UPSTREAM_OF_SCORES and evaluation.partition in wanted:
            latest.setdefault((asset, evaluation.check_name, evaluation.partition), evaluation)
    failed = [
        BlockedCheck(asset, check, day, str(evaluation.description or ""))
        for (asset, check, day), evaluation in latest.items()
        if evaluation.blocking
        and not evaluation.passed
        and evaluation.severity == dg.AssetCheckSeverity.ERROR
    ]
    return sorted(failed, key=lambda b: (b.day, b.asset, b.check), reverse=True)
