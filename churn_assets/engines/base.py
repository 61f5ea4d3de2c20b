"""The clickstream engine interface: the heavy work, one implementation per compute backend.

Assets call these three methods and never know which engine runs them; the resource bound
to the ``engine`` key (embedded by default, Spark for scale-out) is the only switch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from churn_assets.core.clickstream import ClickstreamResult
from churn_assets.resources.landing import ClickstreamObject, LandingZone


class ClickstreamEngine(dg.ConfigurableResource, ABC):
    """Normalise, sessionise and aggregate clickstream; outputs follow the core's schemas."""

    @abstractmethod
    def normalise(
        self,
        landing: LandingZone,
        objects: Sequence[ClickstreamObject],
        partition: date,
        lateness: timedelta,
    ) -> ClickstreamResult: ...

    @abstractmethod
    def sessionise(self, events: pd.DataFrame, gap: timedelta) -> pd.DataFrame: ...

    @abstractmethod
    def customer_activity(
        self, sessions: pd.DataFrame, as_of: date, window_days: int
    ) -> pd.DataFrame: ...
