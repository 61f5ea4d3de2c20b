"""Daily churn scores with reasons a salesperson can read.

Reasons come from the model's own per-customer feature contributions (XGBoost SHAP values,
`pred_contribs=True`): the features that pushed this customer's risk up the most, phrased
with the customer's own value ("3 support calls in the last 28 days"). The three plan
indicator columns are explained together as one reason ("basic plan").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from churn_assets.core.billing import PLANS
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.model import _matrix, predict_churn

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


def _int(s: pd.Series) -> pd.Series:
    return s.round().astype(np.int64).astype(str)


def _plural(s: pd.Series, word: str) -> pd.Series:
    """'1 visit' / '3 visits' for every row at once."""
    return _int(s) + " " + word + pd.Series(np.where(s.round() == 1, "", "s"), index=s.index)


def _only(s: pd.Series) -> pd.Series:
    """'only ' where the value is below this batch's average (a low count is the signal)."""
    return pd.Series(np.where(s < s.mean(), "only ", ""), index=s.index, dtype=object)


def _when(conditions: list[pd.Series], choices: list[pd.Series], default: pd.Series) -> pd.Series:
    out = np.select([c.to_numpy() for c in conditions], [c.to_numpy() for c in choices], default)
    return pd.Series(out, index=default.index, dtype=object)


def _const(text: str, index: pd.Index) -> pd.Series:
    return pd.Series(text, index=index, dtype=object)


def reason_phrases(features: pd.DataFrame, window_days: int) -> dict[str, pd.Series]:
    """A phrase per reason group and customer, built column-wise (no per-customer loop)."""
    f, idx = features, features.index
    w = f" in the last {window_days} days"
    recent = f" in the last {min(7, window_days)} days"
    tenure, seats, since = f["tenure_days"], f["seats"], f["days_since_last_session"]
    cents = (f["mrr"] * 100).round().astype(np.int64)
    money = (cents // 100).astype(str) + "." + (cents % 100).astype(str).str.zfill(2)
    trend, trend_pct = f["visit_trend"], _int(f["visit_trend"].abs() * 100)
    plan = pd.Series(
        np.select([f[c].to_numpy() == 1 for c in _PLAN_COLUMNS], list(PLANS), "unknown"),
        index=idx,
    )

    def visits(col: str, span: str) -> pd.Series:
        s = f[col]
        return _when(
            [s == 0], [_const("no visits" + span, idx)], _only(s) + _plural(s, "visit") + span
        )

    def count(col: str, word: str, span: str, prefix: str = "") -> pd.Series:
        return prefix + _only(f[col]) + _plural(f[col], word) + span

    def times(col: str, verb: str, span: str) -> pd.Series:
        return verb + " " + _plural(f[col], "time") + span

    active = f["active_days_28d"]
    return {
        "tenure_days": _when(
            [tenure <= 365],
            ["customer for only " + _plural(tenure, "day")],
            "customer for " + _plural(tenure // 30, "month"),
        ),
        "seats": _when([seats <= 1], [_const("only 1 seat", idx)], _plural(seats, "seat")),
        "mrr": "pays " + money + " a month",
        "plan": plan + " plan",
        "support_calls_7d": _plural(f["support_calls_7d"], "support call") + recent,
        "support_calls_28d": _plural(f["support_calls_28d"], "support call") + w,
        "sessions_7d": visits("sessions_7d", recent),
        "sessions_28d": visits("sessions_28d", w),
        "visit_trend": _when(
            [trend < 0, trend > 0],
            [
                "visits down " + trend_pct + "% vs earlier weeks",
                "visits up " + trend_pct + "% vs earlier weeks",
            ],
            _const("visits flat vs earlier weeks", idx),
        ),
        "active_days_28d": _when(
            [active == 0],
            [_const("not active" + w, idx)],
            "active on "
            + _only(active)
            + _plural(active, "day")
            + " of the last "
            + str(window_days),
        ),
        "page_views_28d": count("page_views_28d", "page view", w),
        "subscribe_hovers_28d": times("subscribe_hovers_28d", "hovered Subscribe", w),
        "subscribe_clicks_28d": _when(
            [f["subscribe_clicks_28d"] == 0],
            [_const("never clicked Subscribe" + w, idx)],
            times("subscribe_clicks_28d", "clicked Subscribe", w),
        ),
        "subscribe_hovers_without_click_28d": times(
            "subscribe_hovers_without_click_28d", "hovered Subscribe", " without clicking"
        ),
        "support_contacts_28d": times("support_contacts_28d", "contacted support online", w),
        "minutes_28d": count("minutes_28d", "minute", " on the product" + w),
        "days_since_last_session": _when(
            [since > window_days, since == 0],
            [_const(f"no visit in over {window_days} days", idx), _const("visited today", idx)],
            "no visit in " + _plural(since, "day"),
        ),
        "reactivated_before": _when(
            [f["reactivated_before"] == 1],
            [_const("cancelled before and came back", idx)],
            _const("has never cancelled", idx),
        ),
    }


def explain_top_reasons(
    booster: xgb.Booster, features: pd.DataFrame, k: int = 3, window_days: int = 28
) -> pd.DataFrame:
    """customer_id + reason_1..reason_k: the k features that raise this customer's risk most.

    Only positive contributions become reasons; a slot without one is None.
    """
    features = features.reset_index(drop=True)
    reason_cols = [f"reason_{i + 1}" for i in range(k)]
    if features.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ["customer_id", *reason_cols]})
    predict_churn(booster, features.head(1))  # refuses a feature-set mismatch
    contribs = booster.predict(_matrix(features, label=False), pred_contribs=True)
    by_feature = pd.DataFrame(contribs[:, : len(FEATURE_COLUMNS)], columns=list(FEATURE_COLUMNS))
    by_feature["plan"] = by_feature[list(_PLAN_COLUMNS)].sum(axis=1)
    values = by_feature[list(REASON_GROUPS)].to_numpy(dtype=np.float64)

    phrases = reason_phrases(features, window_days)
    text = np.column_stack([phrases[g].to_numpy(dtype=object) for g in REASON_GROUPS])

    # Highest contribution first; ties by reason-group order (stable sort) for determinism.
    top = np.argsort(-values, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(features))[:, None]
    top_values = values[rows, top]
    top_text = np.where(top_values > 0, text[rows, top], None)
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
