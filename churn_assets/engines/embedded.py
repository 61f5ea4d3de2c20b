"""The embedded engine: in-process, vectorised (DuckDB + pandas), no JVM. The default."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd

from churn_assets.core.clickstream import ClickstreamResult, normalise_objects
from churn_assets.core.sessions import customer_activity, sessionise
from churn_assets.engines.base import ClickstreamEngine
from churn_assets.resources.landing import ClickstreamObject, LandingZone


class EmbeddedEngine(ClickstreamEngine):
    """Runs the core functions in the asset's own process: objects are streamed (read on two
    threads, classified by DuckDB in batches) under the landing zone's object caps."""

    def normalise(
        self,
        landing: LandingZone,
        objects: Sequence[ClickstreamObject],
        partition: date,
        lateness: timedelta,
    ) -> ClickstreamResult:
        return normalise_objects(objects, landing.read, partition, lateness, landing.object_limits)

    def sessionise(self, events: pd.DataFrame, gap: timedelta) -> pd.DataFrame:
        return sessionise(events, gap)

    def customer_activity(
        self, sessions: pd.DataFrame, as_of: date, window_days: int
    ) -> pd.DataFrame:
        return customer_activity(sessions, as_of, window_days)
