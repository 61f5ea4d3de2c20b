"""A code location for the daemon integration test: the real graph, small.

``dagster-daemon run -f churn_assets_tests/daemon_defs.py`` loads ``defs``. This is a test
code location, loaded only by processes the test starts, so it reads its environment at
import (runs executed inside the daemon rebuild the job from this module and need a plain
``Definitions`` object): ``CHURN_DAEMON_HISTORY_START`` (the first day), the usual
``CHURN_*_URL`` settings (s3:// URLs in the test) and the standard AWS variables.

The graph is the project's own ``build_definitions`` with settings small enough for a few
days of data to reach ``scores`` (H=2, G=1: labels final 3 days later; feature windows of
2 days, training windows of 3: first model on day 6, first scores on day 7), sensors
(landing, automation and raw freshness) that tick every few seconds, and the in-process
executor (one process per run, not per step).
"""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

from churn_assets.definitions import build_definitions
from churn_assets.environments import resources_for
from churn_assets.freshness import FRESHNESS_SENSOR_NAME, FreshnessSettings
from churn_assets.s3_demo import demo_settings
from churn_assets.sensors import LandingSensorSettings, build_sensors

HISTORY_START_VARIABLE = "CHURN_DAEMON_HISTORY_START"
INTERVAL_VARIABLE = "CHURN_DAEMON_SENSOR_INTERVAL"


def build_small_definitions(
    history_start: date, sensor_interval_seconds: int = 5
) -> dg.Definitions:
    settings = demo_settings(history_start)
    base = build_definitions(
        settings=settings,
        resources=resources_for("local", os.environ),
        freshness=FreshnessSettings(sensor_interval_seconds=sensor_interval_seconds),
    )
    sensor_settings = LandingSensorSettings(minimum_interval_seconds=sensor_interval_seconds)
    freshness_sensors = [s for s in base.sensors or [] if s.name == FRESHNESS_SENSOR_NAME]
    return dg.Definitions(
        assets=base.assets,
        asset_checks=base.asset_checks,
        sensors=[*build_sensors(settings, sensor_settings), *freshness_sensors],
        resources=base.resources,
        executor=dg.in_process_executor,
    )


defs = build_small_definitions(
    date.fromisoformat(os.environ[HISTORY_START_VARIABLE]),
    int(os.environ.get(INTERVAL_VARIABLE, "5")),
)
