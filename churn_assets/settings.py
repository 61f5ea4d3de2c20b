"""Pipeline settings: the time logic of the graph (horizon, grace, windows, lateness).

They shape partition mappings, so they are fixed when the definitions are built rather
than per run: production uses the contract's defaults, tests build the graph with small
values. Nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from churn_assets.core.daily_model import TrainingConfig
from churn_assets.core.online import MonitoringConfig
from churn_assets.core.tuning import TuningConfig


@dataclass(frozen=True)
class ContractSettings:
    """Thresholds of the data contracts. Defaults suit production; tests may tighten them.

    Shares are fractions (0.01 = 1%). Volume checks compare a day with the median of the
    materialized days among the ``volume_window_days`` before it; with fewer than
    ``volume_min_history_days`` of them there is nothing to compare with and they pass.
    """

    quarantine_share_limit: float = 0.01
    duplicate_share_limit: float = 0.05
    late_share_limit: float = 0.01
    clickstream_max_drop_share: float = 0.3
    billing_max_drop_share: float = 0.1
    volume_window_days: int = 7
    volume_min_history_days: int = 2
    clickstream_weekly_seasonality: bool = True
    previous_billing_lookback_days: int = 7
    monthly_churn_rate_bounds: tuple[float, float] = (0.005, 0.5)
    churn_rate_p_value: float = 0.001
    sample_rows: int = 10


@dataclass(frozen=True)
class PipelineSettings:
    history_start: date = date(2026, 1, 1)
    horizon_days: int = 30
    grace_days: int = 30
    feature_window_days: int = 28
    training_window_days: int = 28
    label_fallback_days: int = 7
    """Days after D+H+G in which labels[D] looks for a valid extract when the one of D+H+G is
    missing or rejected (LANDING §4: the label is final once an extract dated D+H+G *or later*
    has landed); the labels' billing window is D .. D+H+G+this."""
    lateness: timedelta = timedelta(hours=2)
    session_gap: timedelta = timedelta(minutes=30)
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(tuning=TuningConfig(max_trials=4, time_budget_s=60))
    )
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    contracts: ContractSettings = field(default_factory=ContractSettings)

    def __post_init__(self) -> None:
        self.training.check_window(self.training_window_days)
        if min(self.horizon_days, self.grace_days, self.feature_window_days) < 1:
            raise ValueError("horizon, grace and feature window must be at least one day")
        if self.label_fallback_days < 0:
            raise ValueError("label_fallback_days must be zero or more")

    @property
    def label_maturity_days(self) -> int:
        """Days after D until D's label is final: the extract of D+H+G must have landed."""
        return self.horizon_days + self.grace_days

    @property
    def first_complete_features(self) -> date:
        """First day whose feature window lies entirely inside the history."""
        return self.history_start + timedelta(days=self.feature_window_days - 1)

    @property
    def model_start(self) -> date:
        """First day whose training window holds only matured labels of complete features.

        Features of the first days of history see a truncated window (fewer sessions, fewer
        support calls); a model trained on them would learn the start of history.
        """
        return self.first_complete_features + timedelta(
            days=self.label_maturity_days + self.training_window_days - 1
        )

    @property
    def scores_start(self) -> date:
        """Scores of D use a model trained before D, so they start a day after the first model."""
        return self.model_start + timedelta(days=1)
