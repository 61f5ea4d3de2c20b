"""Daily churn scores with reasons a salesperson can read.

Reasons come from the model's own per-customer feature contributions (XGBoost SHAP values,
`pred_contribs=True`): the features that pushed this customer's risk up the most, phrased
with the customer's own value ("3 support calls in the last 28 days"). A contribution is a
reason only when the value itself is a risk signal, judged by fixed thresholds (a
salesperson cannot act on "has never cancelled" or "0 support calls"). The three plan
indicator columns are explained together as one reason ("basic plan").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from churn_assets.core.billing import PLANS
from churn_assets.core.daily_model import ModelArtifact
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.model import feature_matrix, load_booster, model_features, predict_churn

SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "churn_probability",
    "risk_tier",
    "rank",
    "model_version",
    "reason_1",
    "reason_2",
    "reason_3",
)

_PLAN_COLUMNS = tuple(f"plan_{p}" for p in PLANS)
# Reason groups: every feature is its own reason except the plan one-hot columns.
REASON_GROUPS: tuple[str, ...] = (
    *(c for c in FEATURE_COLUMNS if c not in _PLAN_COLUMNS),
    "plan",
)


# Fixed thresholds (not relative to a day's batch, so a phrase means the same thing every day).
NEW_CUSTOMER_DAYS = 90  # younger accounts churn more: "new customer: 27 days"
SMALL_ACCOUNT_MRR = 50.0  # dollars a month; below it: "small account: $24/month"
LOW_PER_WEEK = 1.0  # visits, active days, page views: fewer than one a week is low
LOW_MINUTES_PER_WEEK = 10.0  # minutes on the product: fewer than ten a week is low
QUIET_DAYS = 7  # no visit for a week or more
VISITS_DOWN_AT_LEAST = 0.10  # a visit trend of -10% or worse; smaller dips are noise


def _int(s: pd.Series) -> pd.Series:
    return s.round().astype(np.int64).astype(str)


def _plural(s: pd.Series, word: str) -> pd.Series:
    """'1 visit' / '3 visits' for every row at once."""
    return _int(s) + " " + word + pd.Series(np.where(s.round() == 1, "", "s"), index=s.index)


def _when(conditions: list[pd.Series], choices: list[pd.Series | str]) -> pd.Series:
    """The first matching choice per row; None (no reason) where no condition holds."""
    index = conditions[0].index
    arrays = [
        np.full(len(index), c, dtype=object) if isinstance(c, str) else c.to_numpy(dtype=object)
        for c in choices
    ]
    out = np.select([c.to_numpy(dtype=bool) for c in conditions], arrays, None)
    return pd.Series(out, index=index, dtype=object)


def _dollars(mrr: pd.Series) -> pd.Series:
    """'$49/month', '$49.50/month': whole dollars unless there are cents."""
    cents = (mrr * 100).round().astype(np.int64)
    frac = "." + (cents % 100).astype(str).str.zfill(2)
    frac = frac.where(cents % 100 != 0, "")
    return "$" + (cents // 100).astype(str) + frac + "/month"


def reason_phrases(features: pd.DataFrame, window_days: int) -> dict[str, pd.Series]:
    """A phrase per reason group and customer, or None where the value is no risk signal.

    A positive model contribution is not enough to make a reason: the customer's own value
    must describe a present risk a salesperson can act on ("3 support calls in the last 28
    days", "visits down 40% vs earlier weeks"). Values that show the absence of risk (never
    cancelled, zero support calls or hovers, visits up or flat, a recent visit, a long
    tenure, a bigger plan) get None, so they are never shown as a reason to worry. Built
    column-wise (no per-customer loop).
    """
    f = features
    w = f" in the last {window_days} days"
    short = min(7, window_days)
    recent = f" in the last {short} days"
    weeks, short_weeks = window_days / 7, short / 7

    def rounded(col: str) -> pd.Series:
        return f[col].round()

    def risky_count(col: str, text: pd.Series) -> pd.Series:
        """A count whose presence is the risk (calls, hovers): phrased only when >= 1."""
        return _when([rounded(col) >= 1], [text])

    def low_count(col: str, span_weeks: float, word: str, span: str, none: str) -> pd.Series:
        """A count whose scarcity is the risk (visits, page views): none, or only a few."""
        s = rounded(col)
        return _when(
            [s <= 0, s < LOW_PER_WEEK * span_weeks],
            [none + span, "only " + _plural(s, word) + span],
        )

    tenure, seats, since = f["tenure_days"], f["seats"], f["days_since_last_session"]
    trend, active, minutes = f["visit_trend"], rounded("active_days_28d"), f["minutes_28d"]
    hovers, clicks = rounded("subscribe_hovers_28d"), rounded("subscribe_clicks_28d")
    return {
        "tenure_days": _when(
            [tenure < 1, tenure < NEW_CUSTOMER_DAYS],
            ["new customer: signed up today", "new customer: " + _plural(tenure, "day")],
        ),
        "seats": _when([seats.round() == 1], ["only 1 seat"]),
        "mrr": _when(
            [(f["mrr"] >= 0) & (f["mrr"] < SMALL_ACCOUNT_MRR)],
            ["small account: " + _dollars(f["mrr"])],
        ),
        "plan": _when([f["plan_basic"] == 1], ["basic plan"]),
        "support_calls_7d": risky_count(
            "support_calls_7d", _plural(f["support_calls_7d"], "support call") + recent
        ),
        "support_calls_28d": risky_count(
            "support_calls_28d", _plural(f["support_calls_28d"], "support call") + w
        ),
        "sessions_7d": low_count("sessions_7d", short_weeks, "visit", recent, "no visits"),
        "sessions_28d": low_count("sessions_28d", weeks, "visit", w, "no visits"),
        "visit_trend": _when(
            [trend <= -VISITS_DOWN_AT_LEAST],
            ["visits down " + _int(trend.clip(upper=0).abs() * 100) + "% vs earlier weeks"],
        ),
        "active_days_28d": _when(
            [active <= 0, active < LOW_PER_WEEK * weeks],
            [
                "not active" + w,
                "active on only " + _plural(active, "day") + f" of the last {window_days}",
            ],
        ),
        "page_views_28d": low_count("page_views_28d", weeks, "page view", w, "no page views"),
        "subscribe_hovers_28d": risky_count(
            "subscribe_hovers_28d", "hovered Subscribe " + _plural(hovers, "time") + w
        ),
        # Clicking Subscribe is engagement; no click is a signal only after hovering over it.
        "subscribe_clicks_28d": _when(
            [(clicks <= 0) & (hovers >= 1)], ["hovered but never clicked Subscribe" + w]
        ),
        "subscribe_hovers_without_click_28d": risky_count(
            "subscribe_hovers_without_click_28d",
            "hovered Subscribe "
            + _plural(f["subscribe_hovers_without_click_28d"], "time")
            + " without clicking",
        ),
        "support_contacts_28d": risky_count(
            "support_contacts_28d",
            "contacted support online " + _plural(f["support_contacts_28d"], "time") + w,
        ),
        "minutes_28d": _when(
            [
                minutes <= 0,
                minutes < 0.5,
                minutes < LOW_MINUTES_PER_WEEK * weeks,
            ],
            [
                "no time on the product" + w,
                "under a minute on the product" + w,
                "only " + _plural(minutes, "minute") + " on the product" + w,
            ],
        ),
        "days_since_last_session": _when(
            [since > window_days, since >= QUIET_DAYS],
            [f"no visit in over {window_days} days", "no visit in " + _plural(since, "day")],
        ),
        "reactivated_before": _when(
            [f["reactivated_before"] == 1], ["cancelled before and came back"]
        ),
    }


def explain_top_reasons(
    booster: xgb.Booster, features: pd.DataFrame, k: int = 3, window_days: int = 28
) -> pd.DataFrame:
    """customer_id + reason_1..reason_k: the k features that raise this customer's risk most.

    A reason needs a positive contribution and a value that is a risk signal (a phrase from
    `reason_phrases`); contributions from values that show no risk (never cancelled, zero
    support calls) are skipped for the next one. A slot without a reason is None.
    """
    features = features.reset_index(drop=True)
    reason_cols = [f"reason_{i + 1}" for i in range(k)]
    if features.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ["customer_id", *reason_cols]})
    names = model_features(booster)  # refuses a feature-set mismatch
    contribs = booster.predict(feature_matrix(booster, features), pred_contribs=True)
    by_feature = pd.DataFrame(contribs[:, : len(names)], columns=names)
    by_feature = by_feature.reindex(columns=list(FEATURE_COLUMNS), fill_value=0.0)
    by_feature["plan"] = by_feature[list(_PLAN_COLUMNS)].sum(axis=1)
    values = by_feature[list(REASON_GROUPS)].to_numpy(dtype=np.float64)

    phrases = reason_phrases(features, window_days)
    text = np.column_stack([phrases[g].to_numpy(dtype=object) for g in REASON_GROUPS])

    # Highest contribution first; ties by reason-group order (stable sort) for determinism.
    # Contributions that cannot be a reason sort last and come out as None.
    usable = (values > 0) & ~pd.isna(text)
    top = np.argsort(-np.where(usable, values, -np.inf), axis=1, kind="stable")[:, :k]
    rows = np.arange(len(features))[:, None]
    top_text = np.where(usable[rows, top], text[rows, top], None)
    if top_text.shape[1] < k:  # k larger than the number of reason groups
        pad = np.full((len(features), k - top_text.shape[1]), None, dtype=object)
        top_text = np.hstack([top_text, pad])
    out = pd.DataFrame(top_text, columns=reason_cols, dtype=object)
    out.insert(0, "customer_id", features["customer_id"].astype(object))
    return out


def score_customers(
    booster: xgb.Booster,
    features: pd.DataFrame,
    threshold: float,
    model_version: str,
    window_days: int = 28,
) -> pd.DataFrame:
    """Probability, risk tier, rank and top-3 reasons for every customer, sorted by rank.

    Tiers: 'high' at or above the decision threshold (an offer pays off), 'medium' at or
    above half of it, 'low' otherwise. Rank 1 is the highest probability; ties by customer_id.
    """
    if features.empty:
        return pd.DataFrame(
            {
                "customer_id": pd.Series(dtype=object),
                "churn_probability": pd.Series(dtype=np.float64),
                "risk_tier": pd.Series(dtype=object),
                "rank": pd.Series(dtype=np.int64),
                "model_version": pd.Series(dtype=object),
                **{f"reason_{i}": pd.Series(dtype=object) for i in (1, 2, 3)},
            }
        )
    features = features.reset_index(drop=True)
    prob = predict_churn(booster, features)
    tier = np.select([prob >= threshold, prob >= threshold / 2], ["high", "medium"], "low")
    reasons = explain_top_reasons(booster, features, k=3, window_days=window_days)
    out = pd.DataFrame(
        {
            "customer_id": features["customer_id"].astype(object),
            "churn_probability": prob,
            "risk_tier": pd.Series(tier, dtype=object),
            "model_version": str(model_version),
        }
    )
    out = pd.concat([out, reasons.drop(columns="customer_id")], axis=1)
    out = out.sort_values(
        ["churn_probability", "customer_id"], ascending=[False, True], kind="mergesort"
    ).reset_index(drop=True)
    out.insert(3, "rank", np.arange(1, len(out) + 1, dtype=np.int64))
    return out[list(SCORE_COLUMNS)]


def score_with(serving: ModelArtifact, features: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """score_customers with a stored model, its decision threshold and its version."""
    return score_customers(
        load_booster(serving.booster_bytes),
        features,
        threshold=float(serving.card["threshold"]),
        model_version=serving.version,
        window_days=window_days,
    )


def top_risk_markdown(scores: pd.DataFrame, n: int = 20) -> str:
    """The n highest-risk customers as a markdown table for the asset page / an e-mail."""
    top = scores.sort_values("rank").head(n)
    header = (
        "| rank | customer | churn probability | risk | why |\n| ---: | --- | ---: | --- | --- |"
    )
    if top.empty:
        return header + "\n| | (no customers) | | | |"
    reasons = top[["reason_1", "reason_2", "reason_3"]]
    why = reasons.apply(lambda col: col.fillna("")).agg("; ".join, axis=1)
    why = why.str.replace(r"(; )+$", "", regex=True).str.replace(r"^(; )+", "", regex=True)
    pct = (top["churn_probability"] * 100).round(1).astype(str) + "%"
    rows = (
        "| "
        + top["rank"].astype(str)
        + " | "
        + top["customer_id"].astype(str).str.replace("|", "\\|", regex=False)
        + " | "
        + pct
        + " | "
        + top["risk_tier"].astype(str)
        + " | "
        + why.str.replace("|", "\\|", regex=False)
        + " |"
    )
    return header + "\n" + "\n".join(rows)
