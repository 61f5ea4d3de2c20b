"""Point-in-time model features of every customer active at the end of a day.

Only data dated on or before the day is used, and the function enforces that itself (it
filters the billing window by snapshot_date) so that a caller passing a wider window cannot
leak the future into training rows. Personal data (account_name) is never a feature.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from churn_assets.core.billing import PLANS, active_at_end_of_day

FEATURE_COLUMNS: tuple[str, ...] = (
    "tenure_days",
    "seats",
    "mrr",
    "plan_basic",
    "plan_plus",
    "plan_pro",
    "support_calls_7d",
    "support_calls_28d",
    "sessions_7d",
    "sessions_28d",
    "visit_trend",
    "active_days_28d",
    "page_views_28d",
    "subscribe_hovers_28d",
    "subscribe_clicks_28d",
    "subscribe_hovers_without_click_28d",
    "support_contacts_28d",
    "minutes_28d",
    "days_since_last_session",
    "reactivated_before",
)

# Columns that describe the account rather than its behaviour: together they nearly identify
# an account (seats and MRR are fixed per account), so trees fed them learn which accounts
# churned in the training window instead of how churners behave, and that does not carry
# over to the days the model serves (README, "The model"). They stay in the table (reasons,
# drift, the UI) but the model does not read them.
IDENTITY_FEATURES: tuple[str, ...] = ("seats", "mrr")
MODEL_FEATURES: tuple[str, ...] = tuple(c for c in FEATURE_COLUMNS if c not in IDENTITY_FEATURES)

# Columns of core.sessions.customer_activity that the features use.
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "sessions_7d",
    "sessions_28d",
    "visit_trend",
    "active_days_28d",
    "page_views_28d",
    "subscribe_hovers_28d",
    "subscribe_clicks_28d",
    "support_contacts_28d",
    "minutes_28d",
    "days_since_last_session",
)

RECENT_DAYS = 7


def build_features(
    billing_window: pd.DataFrame, activity: pd.DataFrame, day: date, window_days: int
) -> pd.DataFrame:
    """customer_id + FEATURE_COLUMNS (float64), one row per customer active at end of `day`.

    billing_window: concatenated typed extracts of day-window+1 .. day (gaps allowed, but
    the extract of `day` must be there). Rows dated outside that range are ignored.
    activity: core.sessions.customer_activity(sessions, as_of=day, window_days); customers
    without a row had no session in the window (zeros, days_since_last_session = window+1).
    """
    if window_days < 1:
        raise ValueError(f"window_days must be >= 1, got {window_days}")
    d = pd.Timestamp(day)
    if "snapshot_date" not in billing_window.columns:  # an empty window has no columns
        raise ValueError(f"billing extract of {day} is missing: features need it")
    snap = billing_window["snapshot_date"]
    window = billing_window.loc[(snap <= d) & (snap > d - pd.Timedelta(days=window_days))]
    today = window.loc[window["snapshot_date"] == d]
    if today.empty:
        raise ValueError(f"billing extract of {day} is missing: features need it")
    today = today.loc[active_at_end_of_day(today, day) & today["customer_id"].notna()]
    today = today.drop_duplicates("customer_id").sort_values("customer_id")
    ids = pd.Index(today["customer_id"], name="customer_id")

    out = pd.DataFrame(index=ids)
    out["tenure_days"] = ((d - today["signup_date"]).dt.days).to_numpy()
    out["seats"] = today["seats"].to_numpy()
    out["mrr"] = today["mrr"].to_numpy()
    for plan in PLANS:
        out[f"plan_{plan}"] = (today["plan"] == plan).to_numpy()

    recent_start = d - pd.Timedelta(days=min(RECENT_DAYS, window_days))
    calls = window.loc[window["customer_id"].isin(ids)]
    recent = calls.loc[calls["snapshot_date"] > recent_start]
    out["support_calls_7d"] = recent.groupby("customer_id")["support_calls"].sum()
    out["support_calls_28d"] = calls.groupby("customer_id")["support_calls"].sum()

    act = _activity(activity).reindex(ids)
    for col in ACTIVITY_COLUMNS:
        out[col] = act[col]
    out["days_since_last_session"] = out["days_since_last_session"].fillna(window_days + 1)
    hovers, clicks = out["subscribe_hovers_28d"].fillna(0), out["subscribe_clicks_28d"].fillna(0)
    out["subscribe_hovers_without_click_28d"] = np.maximum(hovers - clicks, 0)
    out["reactivated_before"] = today["new_customer"].to_numpy()

    out = out[list(FEATURE_COLUMNS)].astype(np.float64).fillna(0.0)
    return out.reset_index().astype({"customer_id": object})


def _activity(activity: pd.DataFrame) -> pd.DataFrame:
    """Activity indexed by customer_id; an empty table may come without columns."""
    if activity.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype=np.float64) for c in ACTIVITY_COLUMNS},
            index=pd.Index([], name="customer_id", dtype=object),
        )
    missing = [c for c in ("customer_id", *ACTIVITY_COLUMNS) if c not in activity.columns]
    if missing:
        raise ValueError(f"activity table lacks columns {missing}")
    if activity["customer_id"].duplicated().any():
        raise ValueError("activity table has more than one row for a customer")
    return activity.set_index("customer_id")[list(ACTIVITY_COLUMNS)].astype(np.float64)
