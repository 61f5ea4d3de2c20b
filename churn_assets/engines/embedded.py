"""The embedded engine: in-process, vectorised (DuckDB + pandas), no JVM. The default."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd

from churn_assets.core.clickstream import ClickstreamResult, normalise_clickstream, read_lines
from churn_assets.core.sessions import customer_activity, sessionise
from churn_assets.engines.base import ClickstreamEngine
from churn_assets.resources.landing import ClickstreamObject, LandingZone


class EmbeddedEngine(ClickstreamEngine):
    """Runs the core functions in the asset's own process."""

    def normalise(
        self,
        landing: LandingZone,
        objects: Sequence[ClickstreamObject],
        partition: date,
        lateness: timedelta,
    ) -> ClickstreamResult:
        payloads = [(obj.key, obj.arrival_time, landing.read(obj.key)) for obj in objects]
        return normalise_clickstream(read_lines(payloads), partition, lateness)

    def sessionise(self, events: pd.DataFrame, gap: timedelta) -> pd.DataFrame:
        return sessionise(events, gap)

    def customer_activity(
        self, sessions: pd.DataFrame, as_of: date, window_days: int
    ) -> pd.DataFrame:
        return customer_activity(sessions, as_of, window_days)
