"""Test support: small pipeline settings, generated histories and local definitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from churn_assets.core.daily_model import TrainingConfig
from churn_assets.core.generator import GenerationSummary, GeneratorConfig, generate_landing
from churn_assets.core.tuning import TuningConfig
from churn_assets.definitions import build_definitions
from churn_assets.engines.base import ClickstreamEngine
from churn_assets.engines.embedded import EmbeddedEngine
from churn_assets.environments import storage_resources
from churn_assets.resources.storage import LocalObjectStore
from churn_assets.runner import StepOutcome
from churn_assets.settings import PipelineSettings

HISTORY_START = date(2026, 1, 1)
HISTORY_DAYS = 32

SMALL_SETTINGS = PipelineSettings(
    history_start=HISTORY_START,
    horizon_days=8,
    grace_days=3,
    feature_window_days=5,
    training_window_days=10,
    training=TrainingConfig(
        validation_days=2, test_days=3, tuning=TuningConfig(max_trials=2, time_budget_s=20)
    ),
)


@dataclass
class GeneratedHistory:
    landing: Path
    config: GeneratorConfig
    summary: GenerationSummary

    @property
    def days(self) -> list[date]:
        return [self.config.start + timedelta(days=i) for i in range(self.config.days)]


def generate_history(root: Path, **overrides: object) -> GeneratedHistory:
    config = GeneratorConfig(
        **{
            "start": HISTORY_START,
            "days": HISTORY_DAYS,
            "customers": 1200,
            "seed": 11,
            "horizon_days": SMALL_SETTINGS.horizon_days,
            "grace_days": SMALL_SETTINGS.grace_days,
            **overrides,
        }
    )
    landing = root / "landing"
    summary = generate_landing(LocalObjectStore(landing).put, config)
    return GeneratedHistory(landing=landing, config=config, summary=summary)


def local_definitions(
    root: Path,
    landing: Path,
    settings: PipelineSettings,
    engine: ClickstreamEngine | None = None,
) -> dg.Definitions:
    """The graph on local directories under ``root``; the embedded engine unless ``engine``."""
    resources = storage_resources(
        landing_url=str(landing),
        warehouse_url=str(root / "warehouse"),
        model_store_url=str(root / "models"),
        engine=engine or EmbeddedEngine(),
    )
    return build_definitions(settings=settings, resources=resources)


@dataclass
class EndToEndRun:
    history: GeneratedHistory
    root: Path
    defs: dg.Definitions
    outcomes: list[StepOutcome]
