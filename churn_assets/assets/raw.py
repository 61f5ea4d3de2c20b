"""Raw layer: the contract's landing files as typed, validated daily tables."""

import hashlib
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from churn_assets import checks
from churn_assets.core.billing import BillingRejected, active_at_end_of_day, parse_billing_day
from churn_assets.core.landing_layout import (
    DELIVERY_METADATA,
    WINDOW_METADATA,
    billing_day_prefix,
    clickstream_window,
    fingerprint,
    window_fingerprint,
)
from churn_assets.engines.base import ClickstreamEngine
from churn_assets.metadata import markdown_table, numbers, table_metadata
from churn_assets.partitions import GraphPartitions, partition_date
from churn_assets.resources.contracts import RawContracts
from churn_assets.resources.landing import LandingZone
from churn_assets.resources.warehouse import ParquetWarehouse
from churn_assets.settings import PipelineSettings


def build_raw_assets(
    settings: PipelineSettings, partitions: GraphPartitions
) -> list[dg.AssetsDefinition]:
    contracts = checks.contract_settings(settings)

    @dg.asset(
        partitions_def=partitions.daily,
        group_name="raw",
        kinds={"pandas", "csv"},
        check_specs=checks.raw_billing_specs(partitions.daily),
        description="The typed, validated CRM accounts snapshot of day D (billing/dt=D/).",
    )
    def raw_billing(
        context: dg.AssetExecutionContext,
        landing: LandingZone,
        io_manager: dg.ResourceParam[ParquetWarehouse],
        raw_contracts: RawContracts,
    ) -> Iterator:
        day = partition_date(context)
        delivery = landing.billing_delivery(day, strays=True)
        if delivery is None:
            raise dg.Failure(
                description=(
                    f"{landing.uri(billing_day_prefix(day))}_SUCCESS has not landed: "
                    "the day is incomplete and is not read (LANDING §1)."
                ),
                allow_retries=False,
            )
        unread = checks.unread_files_result(delivery.unread, contracts.sample_rows)
        parts: list[tuple[str, bytes]] = []  # stays empty when a part is too large to fetch
        try:
            parts = landing.read_billing_parts(delivery)
            billing = parse_billing_day(parts, day, landing.object_limits)
        except BillingRejected as rejection:
            yield unread
            yield from checks.rejected_billing_results(rejection, parts)
            raise dg.Failure(
                description=f"billing {day} rejected as a whole ({rejection.reason}): "
                f"{rejection.details}",
                metadata={"reason": rejection.reason, "parts": len(parts)},
                allow_retries=False,
            ) from rejection
        results = checks.raw_billing_results(
            context,
            billing,
            day,
            parts=parts,
            warehouse=io_manager,
            first_day=settings.history_start,
            contracts=contracts,
            raw_contracts=raw_contracts,
        )
        results.append(unread)
        blocked = checks.failed_blocking(results, context.assets_def.check_specs)
        if blocked:  # like a rejected day: not materialized, so nothing downstream reads it
            yield from results
            raise dg.Failure(
                description=f"billing {day} failed blocking checks {blocked}: not materialized "
                "(it counts as not landed); deliver the day again to recompute it",
                allow_retries=False,
            )
        active = active_at_end_of_day(billing, day)
        content_hash = hashlib.sha256(b"".join(data for _, data in parts)).hexdigest()[:16]
        yield dg.Output(
            billing,
            data_version=dg.DataVersion(content_hash),
            metadata=table_metadata(billing)
            | numbers(
                {
                    "parts": len(parts),
                    "accounts": len(billing),
                    "active_at_end_of_day": int(active.sum()),
                    "cancelled_at_end_of_day": int((~active).sum()),
                    "mrr_active": float(billing.loc[active, "mrr"].sum()),
                    "support_calls": int(billing["support_calls"].sum()),
                }
            )
            | checks.unread_files_metadata(delivery.unread, contracts.sample_rows)
            | {
                "delivery_version": dg.MetadataValue.text(delivery.version),
                DELIVERY_METADATA: dg.MetadataValue.text(fingerprint([delivery.version])),
                "plan_mix": markdown_table(
                    billing.loc[active, "plan"].value_counts().rename_axis("plan").reset_index()
                ),
            },
        )
        yield from results

    @dg.asset(
        partitions_def=partitions.daily,
        group_name="raw",
        kinds={"duckdb", "json"},
        check_specs=checks.raw_clickstream_specs(partitions.daily),
        description=(
            "Normalised, deduplicated clickstream events of event date D, plus the quarantine "
            "of bad records with reasons; reads objects arriving from D 00h to the end of the "
            "lateness window."
        ),
    )
    def raw_clickstream(
        context: dg.AssetExecutionContext,
        landing: LandingZone,
        engine: ClickstreamEngine,
        raw_contracts: RawContracts,
    ) -> Iterator:
        day = partition_date(context)
        start, end = clickstream_window(day, settings.lateness)
        listing = landing.clickstream_objects(start, end, settings.lateness)
        result = engine.normalise(landing, listing.objects, day, settings.lateness)
        window = window_fingerprint((o.key, o.etag) for o in listing.objects)
        accounting = result.accounting
        reasons = (
            result.quarantine["reason"].value_counts().rename_axis("reason").reset_index()
            if len(result.quarantine)
            else pd.DataFrame({"reason": [], "count": []})
        )
        yield dg.Output(
            {"events": result.events, "quarantine": result.quarantine},
            data_version=dg.DataVersion(window),
            metadata=table_metadata(result.events)
            | numbers(accounting)
            | numbers(checks.clickstream_shares(accounting))
            | numbers(
                {
                    "attributed_customers": int(result.events["customer_id"].nunique()),
                    "quarantined": len(result.quarantine),
                    "unrecognised_keys": len(listing.unrecognised_keys),
                }
            )
            | checks.unread_files_metadata(listing.unread, contracts.sample_rows)
            | {
                "window": dg.MetadataValue.text(f"{start.isoformat()} .. {end.isoformat()}"),
                WINDOW_METADATA: dg.MetadataValue.text(window),
                "quarantine_by_reason": markdown_table(reasons),
            },
        )
        yield from checks.raw_clickstream_results(
            context,
            result,
            listing,
            day=day,
            first_day=settings.history_start,
            contracts=contracts,
            raw_contracts=raw_contracts,
        )

    return [raw_billing, raw_clickstream]
