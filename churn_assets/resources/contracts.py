"""The thresholds of the raw layer's volume and share checks, as a resource.

One place for an operator: the defaults below, overridden by a YAML file named by
``CHURN_CONTRACTS_FILE`` (``contracts.yaml`` at the repository root lists every field) when
the code location loads, or by the Launchpad's run config for one run. The values in force
show on the resource's page in the UI and in every check's metadata.

Each measure is judged against the same stream's own recent history (see
``churn_assets.core.baseline``): a share of lines may rise above its baseline only by its
margin and never above its ceiling; a volume may drop below its baseline only by its margin
and never below its floor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import Field

from churn_assets.core.baseline import Tolerance


class ShareLimit(dg.Config):
    """A share of lines (0.02 = 2%) that is bad when it rises."""

    ceiling: float = Field(description="Fails outright above this share, whatever the history.")
    min_margin: float = Field(
        description="Smallest rise above the baseline that fails (absolute, in share units)."
    )
    margin_sigmas: float = Field(
        default=5.0,
        description="Fails above baseline + this many spreads (robust sd of the history, or "
        "the binomial sampling error of the day, whichever is larger).",
    )


class VolumeLimit(dg.Config):
    """A count that is bad when it drops (an outage, a truncated extract)."""

    min_drop: float = Field(
        description="Smallest drop below the baseline that fails, as a fraction of it."
    )
    floor: float = Field(default=1.0, description="Fails outright below this count.")
    trend: bool = Field(
        default=True,
        description="Baseline from the robust trend line of the history (a growing business) "
        "rather than its median.",
    )
    margin_sigmas: float = Field(
        default=5.0, description="Fails below baseline - this many robust sds of the history."
    )


class RawContracts(dg.ConfigurableResource):
    """Thresholds of the raw layer's history-based checks (volumes and shares)."""

    history_days: int = Field(
        default=28, description="Materialized days before D that form the baseline."
    )
    min_history_days: int = Field(
        default=5,
        description="Fewer comparable days than this: no baseline, only the ceiling or floor.",
    )
    weekday_aware_volumes: bool = Field(
        default=True,
        description="Compare a weekday's clickstream volume with weekdays only, a weekend "
        "day's with weekend days.",
    )
    weekday_aware_shares: bool = Field(
        default=False, description="The same for the clickstream's shares."
    )
    quarantine_share: ShareLimit = ShareLimit(ceiling=0.25, min_margin=0.01)
    duplicate_share: ShareLimit = ShareLimit(ceiling=0.5, min_margin=0.02)
    late_share: ShareLimit = ShareLimit(ceiling=0.25, min_margin=0.005)
    anonymous_share: ShareLimit = ShareLimit(ceiling=0.9, min_margin=0.05)
    events: VolumeLimit = VolumeLimit(min_drop=0.3)
    customers: VolumeLimit = VolumeLimit(min_drop=0.3)
    billing_accounts: VolumeLimit = VolumeLimit(min_drop=0.1)

    def tolerance(self, measure: str) -> Tolerance:
        """The tolerance of ``measure`` (a field name of a ShareLimit or VolumeLimit)."""
        limit: ShareLimit | VolumeLimit = getattr(self, measure)
        share = isinstance(limit, ShareLimit)
        return Tolerance(
            above=share,
            bound=limit.ceiling if isinstance(limit, ShareLimit) else limit.floor,
            margin_sigmas=limit.margin_sigmas,
            min_margin=limit.min_margin if isinstance(limit, ShareLimit) else 0.0,
            min_relative_margin=limit.min_drop if isinstance(limit, VolumeLimit) else 0.0,
            min_history_days=self.min_history_days,
            trend=isinstance(limit, VolumeLimit) and limit.trend,
        )

    def in_force(self, measure: str) -> dict[str, Any]:
        """The settings one check used, for its metadata."""
        return {
            "history_days": self.history_days,
            "min_history_days": self.min_history_days,
            **getattr(self, measure).model_dump(),
        }

    @classmethod
    def from_yaml(cls, text: str) -> RawContracts:
        """Defaults overridden by the fields of a YAML mapping, a limit's fields one by one
        (``quarantine_share: {ceiling: 0.3}`` keeps its other defaults); unknown fields are
        errors."""
        values = yaml.safe_load(text) or {}
        if not isinstance(values, dict):
            raise ValueError("a contracts file holds a mapping of thresholds")
        defaults = cls().model_dump()
        unknown = sorted(set(values) - set(defaults)) + [
            f"{name}.{key}"
            for name, value in values.items()
            if isinstance(value, dict) and isinstance(defaults.get(name), dict)
            for key in sorted(set(value) - set(defaults[name]))
        ]
        if unknown:
            raise ValueError(f"unknown thresholds {unknown}; known: {sorted(defaults)}")
        merged = {
            name: {**defaults[name], **value}
            if isinstance(value, dict) and isinstance(defaults.get(name), dict)
            else value
            for name, value in values.items()
        }
        return cls(**merged)

    @classmethod
    def from_file(cls, path: str | Path) -> RawContracts:
        try:
            return cls.from_yaml(Path(path).read_text(encoding="utf-8"))
        except Exception as error:
            raise ValueError(f"contracts file {path}: {error}") from error


CONTRACTS_FILE_VARIABLE = "CHURN_CONTRACTS_FILE"
