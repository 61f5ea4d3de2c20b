"""A warehouse of scored days written straight through ``ParquetWarehouse``, at any size.

For what the generated history cannot give cheaply: 100,000 customers, names chosen by the
test, and days with or without last week's scores. Tables have the real assets' columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from dagster_aws.s3 import S3Resource

from churn_assets.core.billing import BILLING_COLUMNS, PLANS
from churn_assets.core.features import FEATURE_COLUMNS
from churn_assets.core.scoring import SCORE_COLUMNS
from churn_assets.resources.warehouse import ParquetWarehouse

MODEL_VERSIONS = ("2026-03-01-aaaaaaaaaa", "2026-03-08-bbbbbbbbbb")


def write_day(warehouse: ParquetWarehouse, asset: str, day: date, table: pd.DataFrame) -> None:
    prefix = warehouse.partition_prefix([asset], day.isoformat())
    warehouse.write_tables(prefix, f"synthetic-{day}", table)


def synthetic_warehouse(
    url: Path | str,
    customers: int,
    days: Sequence[date],
    names: Sequence[str] = (),
    seed: int = 0,
    s3: S3Resource | None = None,
) -> ParquetWarehouse:
    """scores, raw_billing and features for ``days`` at ``url`` (a directory or s3://…);
    the first ``names`` replace the generated account names of the first customers."""
    rng = np.random.default_rng(seed)
    warehouse = ParquetWarehouse(url=str(url), s3=s3 or S3Resource())
    ids = np.array([f"C{i:07d}" for i in range(customers)], dtype=object)
    account = np.array([f"Account {i} GmbH" for i in range(customers)], dtype=object)
    account[: len(names)] = list(names)
    plan = rng.choice(PLANS, customers)
    seats = rng.integers(1, 50, customers)
    mrr = np.round(seats * rng.uniform(9, 60, customers), 2)
    for number, day in enumerate(days):
        probability = np.clip(rng.beta(1.2, 8, customers), 0, 1)
        order = np.lexsort((ids, -probability))
        scores = pd.DataFrame(
            {
                "customer_id": ids[order],
                "churn_probability": probability[order],
                "risk_tier": np.select(
                    [probability[order] >= 0.3, probability[order] >= 0.15],
                    ["high", "medium"],
                    "low",
                ).astype(object),
                "rank": np.arange(1, customers + 1),
                "model_version": MODEL_VERSIONS[min(number * len(MODEL_VERSIONS) // len(days), 1)],
                "reason_1": np.where(
                    probability[order] > 0.2, "3 support calls in the last 28 days", None
                ),
                "reason_2": np.where(
                    probability[order] > 0.3, "visits down 40% vs earlier weeks", None
                ),
                "reason_3": np.where(probability[order] > 0.4, "only 1 seat", None),
            }
        )[list(SCORE_COLUMNS)]
        write_day(warehouse, "scores", day, scores)
        billing = pd.DataFrame(
            {
                "customer_id": ids,
                "account_name": account,
                "signup_date": pd.Timestamp("2025-01-01"),
                "plan": plan,
                "seats": seats,
                "mrr": mrr,
                "cancelled_service": False,
                "cancelled_at": pd.NaT,
                "new_customer": False,
                "reactivated_at": pd.NaT,
                "support_calls": rng.integers(0, 3, customers),
                "snapshot_date": pd.Timestamp(day),
            }
        )[list(BILLING_COLUMNS)]
        write_day(warehouse, "raw_billing", day, billing)
        features = pd.DataFrame(
            {c: rng.integers(0, 12, customers).astype(np.float64) for c in FEATURE_COLUMNS}
        )
        features.insert(0, "customer_id", ids)
        write_day(warehouse, "features", day, features)
    return warehouse


def days_ending(last: date, count: int) -> list[date]:
    return [last - timedelta(days=count - 1 - i) for i in range(count)]
