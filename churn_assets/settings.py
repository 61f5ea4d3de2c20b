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
    """Fixed thresholds of the data contracts. Defaults suit production; tests may tighten them.

    The raw layer's volume and share thresholds are judged against each stream's own history
    and can be changed without a code change: they are the ``RawContracts`` resource
    (``churn_assets/resources/contracts.py``), not settings.
    """

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
    # The model of D reads the matured days of the last `training_window_days` (from the
    # first complete features on, so the first model sees min(min_training_days, that)). Longer
    # than 28 days because the purge (H+G) drops every recent row of the customers held out
    # for validation and test: their older rows, and more days, made the honest validation
    # and the realised AUC better (README, "The model").
    training_window_days: int = 90
    min_training_days: int = 28
    label_fallback_days: int = 7
    """Days after D+H+G in which labels[D] looks for a valid extract when the one of D+H+G is
    missing or rejected (LANDING §4: the label is final once an extract dated D+H+G *or later*
    has landed); the labels' billing window is D .. D+H+G+this."""
    lateness: timedelta = timedelta(hours=2)
    session_gap: timedelta = timedelta(minutes=30)
    training: TrainingConfig = field(
        default_factory=lambda: TrainingConfig(
            test_customer_share=0.35, tuning=TuningConfig(max_trials=4, time_budget_s=60)
        )
    )
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    contracts: ContractSettings = field(default_factory=ContractSettings)

    def __post_init__(self) -> None:
        if self.min_training_days < 1:
            raise ValueError(f"min_training_days must be >= 1, got {self.min_training_days}")
        self.training.check_window(self.first_training_days)
        if min(self.horizon_days, self.grace_days, self.feature_window_days) < 1:
            raise ValueError("horizon, grace and feature window must be at least one day")
        if self.label_fallback_days < 0:
            raise ValueError("label_fallback_days must be zero or more")

    @property
    def label_maturity_days(self) -> int:
        """Days after D until D's label is final: the extract of D+H+G must have landed."""
        return self.horizon_days + self.grace_days

    @property
    def first_training_days(self) -> int:
        """Days of matured labels the first model trains on (the window grows from there)."""
        return min(self.min_training_days, self.training_window_days)

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
            days=self.label_maturity_days + self.first_training_days - 1
        )

    @property
    def scores_start(self) -> date:
        """Scores of D use a model trained before D, so they start a day after the first model."""
        return self.model_start + timedelta(days=1)
