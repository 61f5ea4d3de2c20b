"""Shared pieces of the asset checks: severities, spec and result builders."""

from __future__ import annotations

from typing import Any

import dagster as dg

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


def spec(
    asset: str, name: str, partitions_def: Any, blocking: bool, description: str
) -> dg.AssetCheckSpec:
    """A partitioned check spec: each day of the asset gets its own evaluation."""
    return dg.AssetCheckSpec(
        name,
        asset=asset,
        partitions_def=partitions_def,
        blocking=blocking,
        description=description,
    )


def result(
    name: str, passed: bool, severity: dg.AssetCheckSeverity, metadata: dict[str, Any]
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name, passed=bool(passed), severity=severity, metadata=metadata
    )
