"""Features and labels of a generated landing history, derived with the core functions.

The realised-quality test and benchmark replay many daily models over a long history; going
through the core (the code every asset calls) instead of materializing the graph keeps that
to a minute. Days run in order, so each window is assembled from tables already derived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from dagster_aws.s3 import S3Resource

from churn_assets.core.billing import parse_billing_day
from churn_assets.core.features import build_features
from churn_assets.core.labels import compute_labels
from churn_assets.core.landing_layout import clickstream_window
from churn_assets.core.sessions import customer_activity, sessionise
from churn_assets.engines.embedded import EmbeddedEngine
from churn_assets.resources.landing import LandingZone
from churn_assets.settings import PipelineSettings


@dataclass
class HistoryTables:
    features: dict[str, pd.DataFrame] = field(default_factory=dict)
    labels: dict[str, pd.DataFrame] = field(default_factory=dict)


def derive_tables(landing: Path, settings: PipelineSettings, days: Sequence[date]) -> HistoryTables:
    """features[D] for every day and labels[D] for every day whose label has matured."""
    zone = LandingZone(url=str(landing), s3=S3Resource())
    engine = EmbeddedEngine()
    billing: dict[date, pd.DataFrame] = {}
    sessions: dict[date, pd.DataFrame] = {}
    for day in days:
        delivery = zone.billing_delivery(day)
        assert delivery is not None, f"billing of {day} has not landed"
        billing[day] = parse_billing_day(zone.read_billing_parts(delivery), day)
        objects = zone.clickstream_objects(*clickstream_window(day, settings.lateness)).objects
        events = engine.normalise(zone, objects, day, settings.lateness).events
        sessions[day] = sessionise(events, settings.session_gap)
    out = HistoryTables()
    window = settings.feature_window_days
    maturity = settings.label_maturity_days
    for day in days:
        back = (day - timedelta(days=i) for i in range(window))
        recent = [d for d in back if d in billing]
        activity = customer_activity(pd.concat([sessions[d] for d in recent]), day, window)
        out.features[day.isoformat()] = build_features(
            pd.concat([billing[d] for d in recent]), activity, day, window
        )
        ahead = [day + timedelta(days=i) for i in range(maturity + 1)]
        if all(d in billing for d in ahead):
            out.labels[day.isoformat()] = compute_labels(
                pd.concat([billing[d] for d in ahead]),
                day,
                settings.horizon_days,
                settings.grace_days,
            )
    return out
