"""Shared fixtures: a small generated landing history and one end-to-end run over it."""

from __future__ import annotations

import dagster as dg
import pytest

from churn_assets.runner import run_days
from churn_assets_tests.support import (
    SMALL_SETTINGS,
    EndToEndRun,
    GeneratedHistory,
    generate_history,
    local_definitions,
)


@pytest.fixture(scope="session")
def clean_history(tmp_path_factory: pytest.TempPathFactory) -> GeneratedHistory:
    return generate_history(tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="session")
def end_to_end(clean_history: GeneratedHistory) -> EndToEndRun:
    root = clean_history.landing.parent
    defs = local_definitions(root, clean_history.landing, SMALL_SETTINGS)
    with dg.DagsterInstance.ephemeral() as instance:
        outcomes = run_days(defs, instance, SMALL_SETTINGS, clean_history.days)
    return EndToEndRun(clean_history, root, defs, outcomes)
