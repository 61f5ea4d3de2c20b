"""The seven assets of the churn graph, built from one set of settings."""

from __future__ import annotations

import dagster as dg

from churn_assets.assets.activity import build_activity_assets
from churn_assets.assets.monitoring import build_monitoring_assets
from churn_assets.assets.raw import build_raw_assets
from churn_assets.assets.scoring import build_scoring_assets
from churn_assets.assets.training import build_training_assets
from churn_assets.partitions import GraphPartitions
from churn_assets.settings import PipelineSettings


def build_assets(settings: PipelineSettings) -> list[dg.AssetsDefinition]:
    partitions = GraphPartitions.from_settings(settings)
    return [
        *build_raw_assets(settings, partitions),
        *build_activity_assets(settings, partitions),
        *build_training_assets(settings, partitions),
        *build_scoring_assets(settings, partitions),
        *build_monitoring_assets(settings, partitions),
    ]
