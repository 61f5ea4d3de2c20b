"""Checks of the raw layer: the landing contract, per day."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from churn_assets.checks.common import ERROR, WARN, result, spec
from churn_assets.core.billing import BillingRejected, billing_contract_violations
from churn_assets.core.clickstream import ClickstreamResult
from churn_assets.metadata import markdown_table, numbers

QUARANTINE_SHARE_LIMIT = 0.01

# raw_billing ------------------------------------------------------------------------------


def raw_billing_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "raw_billing",
            "schema",
            partitions_def,
            True,
            "Every contract column present and typed; otherwise the day is rejected whole.",
        ),
        spec(
            "raw_billing",
            "customer_id_unique",
            partitions_def,
            True,
            "customer_id is unique and non-null.",
        ),
        spec(
            "raw_billing",
            "contract_values",
            partitions_def,
            False,
            "mrr >= 0, seats >= 1, snapshot_date equals the partition.",
        ),
    ]


def rejected_billing_results(rejection: BillingRejected) -> Iterator[dg.AssetCheckResult]:
    yield result(
        "schema",
        False,
        ERROR,
        {"reason": rejection.reason, "details": dg.MetadataValue.md(str(rejection.details))},
    )


def raw_billing_results(
    context: dg.AssetExecutionContext, billing: pd.DataFrame, day: Any
) -> Iterator[dg.AssetCheckResult]:
    violations = billing_contract_violations(billing, day)
    yield result("schema", True, ERROR, {"columns": len(billing.columns)})
    identity = {k: violations[k] for k in ("duplicate_customer_id", "null_customer_id")}
    yield result(
        "customer_id_unique",
        all(v.empty for v in identity.values()),
        ERROR,
        numbers({k: len(v) for k, v in identity.items()})
        | {f"{k}_sample": markdown_table(v, 10) for k, v in identity.items() if len(v)},
    )
    values = {
        k: violations[k] for k in ("negative_mrr", "seats_below_one", "snapshot_date_mismatch")
    }
    yield result(
        "contract_values",
        all(v.empty for v in values.values()),
        WARN,
        numbers({k: len(v) for k, v in values.items()})
        | {f"{k}_sample": markdown_table(v, 10) for k, v in values.items() if len(v)},
    )


# raw_clickstream --------------------------------------------------------------------------


def raw_clickstream_specs(partitions_def: Any) -> list[dg.AssetCheckSpec]:
    return [
        spec(
            "raw_clickstream",
            "row_accounting",
            partitions_def,
            True,
            "Every line read is exactly one of valid, duplicate, anonymous, other date or "
            "quarantined (LANDING §3): the counts add up.",
        ),
        spec(
            "raw_clickstream",
            "quarantine_share",
            partitions_def,
            True,
            f"Quarantined lines below {QUARANTINE_SHARE_LIMIT:.0%} of the lines read.",
        ),
    ]


def raw_clickstream_results(
    context: dg.AssetExecutionContext, result: ClickstreamResult, listing: Any
) -> Iterator[dg.AssetCheckResult]:
    accounting = result.accounting
    parts = {
        k: v
        for k, v in accounting.items()
        if k not in ("lines_read",) and not k.startswith("objects_")
    }
    total = sum(parts.values())
    yield result(
        "row_accounting",
        total == accounting["lines_read"]
        and len(result.quarantine)
        == sum(v for k, v in accounting.items() if k.startswith("quarantined_")),
        ERROR,
        numbers({"lines_read": accounting["lines_read"], "sum_of_categories": total}),
    )
    lines = max(accounting["lines_read"], 1)
    share = len(result.quarantine) / lines
    yield result(
        "quarantine_share",
        share <= QUARANTINE_SHARE_LIMIT,
        ERROR,
        numbers({"quarantine_share": share, "limit": QUARANTINE_SHARE_LIMIT}),
    )
