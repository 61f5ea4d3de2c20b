"""Asset checks of every asset, evaluated per partition inside the asset's own step.

Each asset declares its specs (``<asset>_specs``) and yields the results computed from the
table it just built (``<asset>_results``). Checks whose failure would poison what is
downstream are blocking with ERROR severity, so downstream assets of that day do not run;
the others warn.
"""

from churn_assets.checks.common import ContractSettings, contract_settings, failed_blocking
from churn_assets.checks.derived import (
    features_results,
    features_specs,
    labels_results,
    labels_specs,
    sessions_results,
    sessions_specs,
)
from churn_assets.checks.ml import model_results, model_specs, scores_results, scores_specs
from churn_assets.checks.raw import (
    clickstream_shares,
    raw_billing_results,
    raw_billing_specs,
    raw_clickstream_results,
    raw_clickstream_specs,
    rejected_billing_results,
    unread_files_metadata,
    unread_files_result,
)

__all__ = [
    "ContractSettings",
    "clickstream_shares",
    "contract_settings",
    "failed_blocking",
    "features_results",
    "features_specs",
    "labels_results",
    "labels_specs",
    "model_results",
    "model_specs",
    "raw_billing_results",
    "raw_billing_specs",
    "raw_clickstream_results",
    "raw_clickstream_specs",
    "rejected_billing_results",
    "scores_results",
    "scores_specs",
    "sessions_results",
    "sessions_specs",
    "unread_files_metadata",
    "unread_files_result",
]
