"""The one place where the project's Definitions are built.

``defs`` is loaded lazily by ``dagster dev`` (workspace.yaml), ``dg`` ([tool.dg] in
pyproject.toml) and ``dagster definitions validate``; the environment is looked at when the
code location loads, never at import time. Tests call ``build_definitions`` with their own
settings and resources.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from churn_assets.assets import build_assets
from churn_assets.automation import apply_automation
from churn_assets.environments import ENVIRONMENT_VARIABLE, resources_for
from churn_assets.freshness import FreshnessSettings, build_freshness, with_freshness_policies
from churn_assets.sensors import build_sensors
from churn_assets.settings import PipelineSettings


def build_definitions(
    settings: PipelineSettings | None = None,
    resources: Mapping[str, Any] | None = None,
    environment: str = "local",
    freshness: FreshnessSettings | None = None,
) -> dg.Definitions:
    settings = settings or PipelineSettings()
    raw_freshness = build_freshness(freshness)
    return dg.Definitions(
        assets=with_freshness_policies(
            apply_automation(build_assets(settings), settings), freshness
        ),
        asset_checks=raw_freshness.checks,
        sensors=[*build_sensors(settings), raw_freshness.sensor],
        resources=dict(resources)
        if resources is not None
        else resources_for(environment, os.environ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(
        environment=os.environ.get(ENVIRONMENT_VARIABLE, "local"),
        freshness=FreshnessSettings.from_env(os.environ),
    )
