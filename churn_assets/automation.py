"""Declarative automation of everything downstream of the raw layer, as one policy.

The landing sensors materialize ``raw_billing`` and ``raw_clickstream``; from there each
asset follows by an ``AutomationCondition``, evaluated by one automation condition sensor.
``AutomationCondition.eager()`` does not fit this graph: it only looks at the latest time
partition, while here a billing day completes the label window of the day H+G earlier, a
late re-delivery changes days in the past, and a missing extract must not block the days
around it. So each condition targets the partitions whose upstream actually changed, within
a bounded lookback, and waits for exactly the upstream days its asset cannot run without:

- ``sessions[D]``: ``raw_clickstream[D]`` updated, and its blocking checks passed.
- ``features[D]``: any billing or sessions day of its window updated, once the day's own
  inputs ``raw_billing[D]`` and ``sessions[D]`` exist (other missing days of the window are
  tolerated and reported by the asset; a day whose own input is missing would fail its
  blocking ``inputs_complete`` check).
- ``labels[D]``: any billing day of D..F updated, once ``raw_billing[D]`` exists and a
  billing day F in D+H+G .. D+H+G+fallback has landed (the label is final; F is the first
  one, usually D+H+G itself: a missing or rejected extract is replaced by the next valid
  one, and the days after F change nothing).
- ``model[D]``: once per day, when the newest day of its training window (D-H-G) has both
  labels and features: the daily model, trained once (a model version is an immutable
  artifact; corrections reach the next day's model).
- ``scores[D]``: ``features[D]`` or the previous day's model updated, once ``features[D]``
  exists and some model trained before D exists (the serving model).
- ``drift[D]``: with the scores of D (once ``scores[D]`` and ``features[D]`` exist);
  ``call_list[D]``: with the scores of D;
  ``online_metrics[D]``: once both ``scores[D]`` and the matured ``labels[D]`` exist.

Every condition looks back a bounded number of days from the newest materialized raw day
(the landing's own clock), not from the wall clock: a history that ended months before
today (the demo's) still carries a newly landed day through to ``scores``.

All of them wait while an upstream partition they read is in progress or requested in the
same tick (so no run reads a half-written window), and never run twice at once. Conditions
that need partition offsets (D+H+G, "some model before D") are small custom conditions,
so the sensor evaluates in the user code server (``use_user_code_server=True``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg

from churn_assets.settings import PipelineSettings

AUTOMATION_SENSOR = "churn_automation_sensor"
LOOKBACK_SLACK_DAYS = 2
"""Days beyond the re-processing horizon: a clickstream window closes the day after D."""


class DepDaysMaterialized(dg.AutomationCondition):
    """True for partition D when ``dep`` has a materialized day in [D+start, D+end].

    ``None`` leaves that side open: (raw_billing, H+G, None) is "a billing day D+H+G or later
    has landed"; (model, None, -1) is "some model trained before D exists". Built-in dep
    conditions cannot say this: they look at every mapped upstream day at once.
    """

    def __init__(self, dep: str, start_offset: int | None, end_offset: int | None):
        self.dep = dep
        self.start_offset = start_offset
        self.end_offset = end_offset

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def name(self) -> str:
        lo = "" if self.start_offset is None else f"D{self.start_offset:+d}"
        hi = "" if self.end_offset is None else f"D{self.end_offset:+d}"
        return f"{self.dep}_materialized_in[{lo}..{hi}]"

    @property
    def description(self) -> str:
        return f"{self.dep} has a materialized partition in {self.name.split('_in', 1)[1]}"

    def matches(self, day: date, materialized: Sequence[date]) -> bool:
        """Whether the sorted ``materialized`` days hold one in the range of ``day``."""
        lo = date.min if self.start_offset is None else day + timedelta(days=self.start_offset)
        hi = date.max if self.end_offset is None else day + timedelta(days=self.end_offset)
        index = bisect.bisect_left(materialized, lo)
        return index < len(materialized) and materialized[index] <= hi

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.candidate_subset.is_empty:
            return dg.AutomationResult(context, context.candidate_subset)
        view = context.asset_graph_view
        done = await view.compute_materialized_asset_subset(dg.AssetKey(self.dep))
        materialized = _sorted_days(done)
        return _candidate_days_where(context, lambda day: self.matches(day, materialized))


class DepDaysUpdatedUntilFinal(DepDaysMaterialized):
    """True for partition D when a ``dep`` day in [D, F] was updated since the previous tick,
    F being the first materialized ``dep`` day in [D+start, D+end] (D+end when there is none).

    The labels of D read billing up to D+H+G+fallback, but only up to the first extract that
    makes them final: days after it change nothing, so their arrival must not rerun labels.
    """

    @property
    def name(self) -> str:
        return f"{self.dep}_updated_until_first_in[D{self.start_offset:+d}..D{self.end_offset:+d}]"

    @property
    def description(self) -> str:
        return f"{self.dep} updated up to its first partition in {self.name.split('_in', 1)[1]}"

    def updated_until_final(
        self, day: date, updated: Sequence[date], materialized: Sequence[date]
    ) -> bool:
        """Whether a sorted ``updated`` day falls in [day, F] (see the class docstring)."""
        assert self.start_offset is not None and self.end_offset is not None
        last = day + timedelta(days=self.end_offset)
        index = bisect.bisect_left(materialized, day + timedelta(days=self.start_offset))
        if index < len(materialized) and materialized[index] <= last:
            last = materialized[index]
        index = bisect.bisect_left(updated, day)
        return index < len(updated) and updated[index] <= last

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.candidate_subset.is_empty or context.previous_temporal_context is None:
            return dg.AutomationResult(context, context.get_empty_subset())
        view = context.asset_graph_view
        key = dg.AssetKey(self.dep)
        updated = _sorted_days(
            await view.compute_updated_since_temporal_context_subset(
                key=key, temporal_context=context.previous_temporal_context
            )
        )
        materialized = _sorted_days(await view.compute_materialized_asset_subset(key))
        return _candidate_days_where(
            context, lambda day: self.updated_until_final(day, updated, materialized)
        )


def _sorted_days(subset: Any) -> list[date]:
    return sorted(date.fromisoformat(k) for k in subset.expensively_compute_partition_keys())


def _candidate_days_where(
    context: dg.AutomationContext, keep: Callable[[date], bool]
) -> dg.AutomationResult:
    """The candidate partitions whose day satisfies ``keep``."""
    candidates = context.candidate_subset
    days = {
        key
        for key in candidates.expensively_compute_partition_keys()
        if keep(date.fromisoformat(key))
    }
    true_subset = context.asset_graph_view.get_subset_from_partition_keys(
        context.key, candidates.partitions_def, days
    )
    return dg.AutomationResult(context, true_subset)


RAW_ASSETS = ("raw_billing", "raw_clickstream")


class NearNewestRawDay(dg.AutomationCondition):
    """True for partitions D at most ``days`` before the newest materialized raw day.

    ``in_latest_time_window`` counts back from the wall clock's latest partition: on a
    landing zone whose history ended long ago nothing would be in it, and a new day would
    stop at the raw layer. The newest raw partition is the landing's own clock; in live
    operation it is yesterday, and both agree.
    """

    def __init__(self, days: int):
        self.days = days

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return f"within_{self.days}_days_of_newest_raw_day"

    @property
    def description(self) -> str:
        return f"at most {self.days} days before the newest materialized raw partition"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidates = context.candidate_subset
        if candidates.is_empty:
            return dg.AutomationResult(context, candidates)
        view = context.asset_graph_view
        materialized: list[date] = []
        for raw in RAW_ASSETS:
            done = await view.compute_materialized_asset_subset(dg.AssetKey(raw))
            keys = done.expensively_compute_partition_keys()
            materialized += (date.fromisoformat(k) for k in keys)
        newest = max(materialized, default=None)
        keep: set[str] = set()
        if newest is not None:
            oldest = newest - timedelta(days=self.days)
            keep = {
                key
                for key in candidates.expensively_compute_partition_keys()
                if date.fromisoformat(key) >= oldest
            }
        true_subset = view.get_subset_from_partition_keys(
            context.key, candidates.partitions_def, keep
        )
        return dg.AutomationResult(context, true_subset)


class AnyDepRequestedThisTick(dg.AutomationCondition):
    """True for partitions with an upstream partition requested earlier in this same tick.

    The built-in ``will_be_requested`` only sees parents with the same partitions definition
    (ones that could run in the same run); ``model``, ``scores`` and the monitoring assets
    have their own, so without this they could start while an input is about to be rebuilt.
    """

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return "any_dep_requested_this_tick"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        candidates = context.candidate_subset
        hit = context.get_empty_subset()
        if not candidates.is_empty:
            for parent in context.asset_graph.get(context.key).parent_keys:
                requested = context.request_subsets_by_key.get(parent)
                if requested is not None and not requested.is_empty:
                    children = context.asset_graph_view.compute_child_subset(context.key, requested)
                    hit = hit.compute_union(children)
        return dg.AutomationResult(context, candidates.compute_intersection(hit))


def _dep_updated(updated: dg.AutomationCondition | None = None) -> dg.AutomationCondition:
    """Some upstream partition it reads (or ``updated``'s) was updated since this partition
    was last handled.

    Like ``any_deps_updated().since_last_handled()``, except that an update seen on the same
    tick as the handling (the partition was requested on the previous tick, or its run
    finished since) keeps it pending: that update may have come after the run read its
    inputs. (Dagster's own reset compares timestamps, but its OR drops them in 1.13.)
    """
    updated = updated or dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.newly_updated()
    ).with_label("any_dep_updated")
    handled = (
        dg.AutomationCondition.newly_requested()
        | dg.AutomationCondition.newly_updated()
        | dg.AutomationCondition.initial_evaluation()
    ).with_label("handled")
    return updated.since((handled & ~updated).with_label("handled_before_this_update"))


def _settled() -> dg.AutomationCondition:
    """No upstream partition it reads is running or requested now; itself not running."""
    busy = (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.in_progress()).with_label(
            "any_dep_in_progress"
        )
        | AnyDepRequestedThisTick()
    )
    return ~busy & ~dg.AutomationCondition.in_progress()


def _lookback(days: int) -> dg.AutomationCondition:
    return NearNewestRawDay(days)


def automation_conditions(
    settings: PipelineSettings, reprocessing_horizon_days: int = 14
) -> dict[str, dg.AutomationCondition]:
    """The condition of each automated asset (see the module docstring for the why)."""
    maturity = settings.label_maturity_days
    fallback = settings.label_fallback_days
    recent = reprocessing_horizon_days + LOOKBACK_SLACK_DAYS
    billing_of_day = DepDaysMaterialized("raw_billing", 0, 0)
    return {
        "sessions": (
            _lookback(recent)
            & _dep_updated()
            & ~dg.AutomationCondition.any_deps_missing()
            & dg.AutomationCondition.all_deps_blocking_checks_passed()
            & _settled()
        ).with_label("sessions_after_clickstream"),
        "features": (
            _lookback(recent)
            & _dep_updated()
            & billing_of_day
            & DepDaysMaterialized("sessions", 0, 0)
            & _settled()
        ).with_label("features_after_billing_and_sessions"),
        "labels": (
            _lookback(recent + maturity + fallback)
            & _dep_updated(DepDaysUpdatedUntilFinal("raw_billing", maturity, maturity + fallback))
            & billing_of_day
            & DepDaysMaterialized("raw_billing", maturity, maturity + fallback)
            & _settled()
        ).with_label("labels_once_final"),
        "model": (
            _lookback(recent)
            & (
                DepDaysMaterialized("labels", -maturity, -maturity)
                & DepDaysMaterialized("features", -maturity, -maturity)
                & dg.AutomationCondition.missing()
            )
            .newly_true()
            .with_label("training_window_complete")
            .since_last_handled()
            & _settled()
        ).with_label("model_daily"),
        "scores": (
            _lookback(recent)
            & _dep_updated()
            & DepDaysMaterialized("features", 0, 0)
            & DepDaysMaterialized("model", None, -1)
            & _settled()
        ).with_label("scores_when_features_and_model"),
        "drift": (
            _lookback(recent)
            & _dep_updated()
            & DepDaysMaterialized("scores", 0, 0)
            & DepDaysMaterialized("features", 0, 0)
            & _settled()
        ).with_label("drift_with_scores"),
        "call_list": (
            _lookback(recent) & _dep_updated() & DepDaysMaterialized("scores", 0, 0) & _settled()
        ).with_label("call_list_with_scores"),
        "online_metrics": (
            _lookback(recent + maturity)
            & _dep_updated()
            & ~dg.AutomationCondition.any_deps_missing()
            & _settled()
        ).with_label("online_metrics_once_labels_mature"),
    }


def apply_automation(
    assets: Iterable[dg.AssetsDefinition],
    settings: PipelineSettings,
    reprocessing_horizon_days: int = 14,
) -> list[dg.AssetsDefinition]:
    """The assets with the policy's condition on each automated one (raw assets unchanged)."""
    conditions = automation_conditions(settings, reprocessing_horizon_days)
    return list(
        dg.map_asset_specs(
            lambda spec: spec.replace_attributes(
                automation_condition=conditions.get(spec.key.to_user_string(), None)
            ),
            list(assets),
        )
    )


def automation_sensor(
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the policy; in the user code server because of the custom conditions.

    It targets every asset: those without a condition (the raw layer) are never requested.
    """
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=default_status,
        minimum_interval_seconds=minimum_interval_seconds,
        use_user_code_server=True,
        emit_backfills=False,
        run_tags={"churn/automation": "declarative"},
        description="Runs everything downstream of the raw layer as its inputs land.",
    )
