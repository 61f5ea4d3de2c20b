"""Resources per environment, chosen in one place; assets never branch on the environment.

``local`` (default) needs nothing: a local landing directory, a local parquet warehouse and
the embedded engine. Any URL may be pointed at S3 (``s3://bucket/prefix``) and the engine
switched to Spark with one setting each. ``production`` requires its settings from the
environment at run time (``EnvVar``), so a missing one fails loudly instead of defaulting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from churn_assets.engines.base import ClickstreamEngine
from churn_assets.engines.embedded import EmbeddedEngine
from churn_assets.resources.contracts import CONTRACTS_FILE_VARIABLE, RawContracts
from churn_assets.resources.exports import ExportStore
from churn_assets.resources.landing import LandingZone
from churn_assets.resources.model_store import ModelIOManager, ModelStore
from churn_assets.resources.warehouse import ParquetWarehouse

ENVIRONMENT_VARIABLE = "CHURN_ENV"

LOCAL_DEFAULTS = {
    "CHURN_LANDING_URL": "data/landing",
    "CHURN_WAREHOUSE_URL": "data/warehouse",
    "CHURN_MODEL_STORE_URL": "data/models",
    "CHURN_SERVING_MODEL": "",
    "CHURN_ENGINE": "embedded",
    "CHURN_SPARK_MASTER": "local[2]",
}


def _setting(env: Mapping[str, str], name: str, required: bool) -> Any:
    """An EnvVar when the variable is set (or required), else the local default."""
    if required or name in env:
        return dg.EnvVar(name)
    return LOCAL_DEFAULTS[name]


def build_engine(kind: str, spark_master: Any) -> ClickstreamEngine:
    if kind == "embedded":
        return EmbeddedEngine()
    if kind == "spark":
        from churn_assets.engines.spark import SparkEngine, spark_resource

        return SparkEngine(pyspark=spark_resource(spark_master))
    raise ValueError(f"CHURN_ENGINE must be 'embedded' or 'spark', not {kind!r}")


def storage_resources(
    landing_url: Any,
    warehouse_url: Any,
    model_store_url: Any,
    engine: ClickstreamEngine,
    pinned_version: Any = "",
    s3: S3Resource | None = None,
    contracts: RawContracts | None = None,
) -> dict[str, Any]:
    """The full resource dictionary for given locations (tests build theirs with this too)."""
    s3 = s3 or S3Resource()
    model_store = ModelStore(url=model_store_url, s3=s3, pinned_version=pinned_version)
    return {
        "landing": LandingZone(url=landing_url, s3=s3),
        "io_manager": ParquetWarehouse(url=warehouse_url, s3=s3),
        "exports": ExportStore(url=warehouse_url, s3=s3),
        "model_store": model_store,
        "model_io_manager": ModelIOManager(model_store=model_store),
        "engine": engine,
        "raw_contracts": contracts or RawContracts(),
    }


def resources_for(environment: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The resource dictionary of ``environment`` ('local' or 'production')."""
    if environment not in ("local", "production"):
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be 'local' or 'production'")
    required = environment == "production"
    engine_kind = env.get("CHURN_ENGINE", "spark" if required else "embedded")
    return storage_resources(
        landing_url=_setting(env, "CHURN_LANDING_URL", required),
        warehouse_url=_setting(env, "CHURN_WAREHOUSE_URL", required),
        model_store_url=_setting(env, "CHURN_MODEL_STORE_URL", required),
        engine=build_engine(engine_kind, _setting(env, "CHURN_SPARK_MASTER", required)),
        pinned_version=_setting(env, "CHURN_SERVING_MODEL", False),
        contracts=contracts_for(env),
    )


def contracts_for(env: Mapping[str, str]) -> RawContracts:
    """The raw layer's thresholds: the defaults, or the YAML file ``CHURN_CONTRACTS_FILE``."""
    path = env.get(CONTRACTS_FILE_VARIABLE)
    return RawContracts.from_file(path) if path else RawContracts()
