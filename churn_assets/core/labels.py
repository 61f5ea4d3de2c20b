"""True and naive churn labels (LANDING.md §3).

The CRM marks every account that ever cancelled with a sticky `cancelled_service`, so the
naive label calls customers who left and came back churners. The true label rebuilds the
history of cancellations and re-activations from the dates seen across the daily extracts
(each extract only shows the most recent ones) and counts a cancellation as churn only when
no re-activation follows within the grace period.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from churn_assets.core.billing import active_at_end_of_day

LABEL_COLUMNS: tuple[str, ...] = ("customer_id", "churned", "naive_churned", "cancel_date")


class LabelsNotMature(ValueError):
    """The extracts needed to make the label of a day final have not all landed yet."""


def _active_ids(extract: pd.DataFrame, day: date) -> pd.Index:
    active = extract.loc[active_at_end_of_day(extract, day) & extract["customer_id"].notna()]
    return pd.Index(active["customer_id"].drop_duplicates().sort_values(), name="customer_id")


def _events(extracts: pd.DataFrame, column: str, customers: pd.Index) -> pd.DataFrame:
    """Distinct (customer_id, date) pairs of one date column across all extracts."""
    ev = extracts.loc[extracts[column].notna() & extracts["customer_id"].isin(customers)]
    ev = ev[["customer_id", column]].drop_duplicates()
    return ev.rename(columns={column: "date"}).reset_index(drop=True)


def compute_labels(
    extracts: pd.DataFrame, day: date, horizon_days: int, grace_days: int
) -> pd.DataFrame:
    """Labels of every customer active at the end of `day`, sorted by customer_id.

    `extracts` is the concatenation of typed billing days from day on (gaps allowed); those
    after the first one dated day+H+G or later are ignored. Raises LabelsNotMature when the
    extract of `day` is missing or none dated day+H+G or later is present. Columns:
    customer_id, churned, naive_churned (int64 0/1), cancel_date (first churning
    cancellation in (day, day+H], NaT otherwise).
    """
    if horizon_days < 1 or grace_days < 0:
        raise ValueError(f"horizon_days must be >= 1 and grace_days >= 0, got {horizon_days=}")
    d = pd.Timestamp(day)
    horizon_end = d + pd.Timedelta(days=horizon_days)
    mature_at = horizon_end + pd.Timedelta(days=grace_days)
    if "snapshot_date" not in extracts.columns:  # no extract at all (an empty window)
        raise LabelsNotMature(f"no billing extract from {day} on has landed")
    extracts = extracts.loc[extracts["snapshot_date"] >= d]
    snapshots = extracts["snapshot_date"]
    if not (snapshots == d).any():
        raise LabelsNotMature(f"billing extract of {day} is missing")
    if not (snapshots >= mature_at).any():
        raise LabelsNotMature(
            f"label of {day} is final once the extract of {mature_at.date()} has landed; "
            f"latest present is {snapshots.max().date()}"
        )

    # Extracts after the first final one add nothing (they only show later dates); ignoring
    # them makes the label the same whichever later days happen to be in the window.
    extracts = extracts.loc[snapshots <= snapshots.loc[snapshots >= mature_at].min()]
    snapshots = extracts["snapshot_date"]
    customers = _active_ids(extracts.loc[snapshots == d], day)

    cancels = _events(extracts, "cancelled_at", customers)
    cancels = cancels.loc[(cancels["date"] > d) & (cancels["date"] <= horizon_end)]
    reacts = _events(extracts, "reactivated_at", customers)
    pairs = cancels.merge(reacts, on="customer_id", how="left", suffixes=("", "_react"))
    offset = pairs["date_react"] - pairs["date"]
    pairs["covered"] = (offset >= pd.Timedelta(0)) & (offset <= pd.Timedelta(days=grace_days))
    covered = pairs.groupby(["customer_id", "date"], sort=False)["covered"].any().reset_index()
    churning = covered.loc[~covered["covered"]]
    cancel_date = churning.groupby("customer_id")["date"].min().reindex(customers)

    # Naive: cancelled_service of the extract of D+H, or the latest one before it if missing.
    naive_day = snapshots.loc[snapshots <= horizon_end].max()
    naive_src = extracts.loc[snapshots == naive_day].drop_duplicates("customer_id")
    naive = naive_src.set_index("customer_id")["cancelled_service"].reindex(customers)

    out = pd.DataFrame(
        {
            "customer_id": customers.to_numpy(dtype=object),
            "churned": cancel_date.notna().to_numpy().astype(np.int64),
            "naive_churned": naive.fillna(False).to_numpy().astype(np.int64),
            "cancel_date": cancel_date.to_numpy().astype("datetime64[ns]"),
        }
    )
    return out.reset_index(drop=True)


def label_summary(labels: pd.DataFrame) -> dict[str, float | int]:
    """How many labels, their rates, and how far the naive label is from the true one."""
    n = len(labels)
    if n == 0:
        return {
            "n": 0,
            "true_rate": 0.0,
            "naive_rate": 0.0,
            "disagreement": 0.0,
            "naive_false_positives": 0,
            "naive_false_negatives": 0,
        }
    y, naive = labels["churned"].to_numpy(), labels["naive_churned"].to_numpy()
    return {
        "n": int(n),
        "true_rate": float(y.mean()),
        "naive_rate": float(naive.mean()),
        "disagreement": float((y != naive).mean()),
        "naive_false_positives": int(((naive == 1) & (y == 0)).sum()),
        "naive_false_negatives": int(((naive == 0) & (y == 1)).sum()),
    }


def label_days_needed(day: date, horizon_days: int, grace_days: int) -> list[date]:
    """Extract days D .. D+H+G that the label of D is computed from."""
    return [day + timedelta(days=i) for i in range(horizon_days + grace_days + 1)]
