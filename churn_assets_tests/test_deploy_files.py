"""deploy/: the containers run what ``churn-assets stack`` runs, with the same settings.

Docker is not needed: the compose file, the Dockerfile and the instance and workspace files
are read as data and held against the stack's own commands and environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from churn_assets.cli import build_parser
from churn_assets.stack import (
    DEPLOY_DIR,
    SERVICES,
    PostgresSettings,
    service_command,
    stack_environment,
)

COMPOSE = yaml.safe_load((DEPLOY_DIR / "docker-compose.yaml").read_text())
DOCKERFILE = (DEPLOY_DIR / "Dockerfile").read_text()


def variables_read(path: Path) -> set[str]:
    """The names a Dagster YAML file takes from the environment (``env: NAME``)."""
    return set(re.findall(r"^\s*env:\s*(\w+)\s*$", path.read_text(), flags=re.MULTILINE))


def stack_env(tmp_path: Path) -> dict[str, str]:
    postgres = PostgresSettings("127.0.0.1", 5432, "dagster", "secret", "dagster", tmp_path)
    return stack_environment(tmp_path, postgres, "http://127.0.0.1:9", 4000, "m:defs")


def test_compose_runs_the_stack_services_through_the_image_entrypoint() -> None:
    entrypoint = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", DOCKERFILE, flags=re.MULTILINE)
    assert entrypoint is not None
    assert json.loads(entrypoint.group(1)) == ["churn-assets", "service"]
    services = COMPOSE["services"]
    commands = {name: services[name]["command"] for name in SERVICES}
    for name, command in commands.items():
        args = build_parser().parse_args(["service", *command])
        assert args.service == name
        assert services[name]["image"] == services["code-server"]["image"]
    assert commands["code-server"][-1] == COMPOSE["x-churn-environment"]["CHURN_CODE_SERVER_PORT"]


def test_every_setting_the_instance_and_workspace_read_is_set_by_stack_and_compose(
    tmp_path: Path,
) -> None:
    needed = variables_read(DEPLOY_DIR / "dagster.yaml") | variables_read(
        DEPLOY_DIR / "workspace.yaml"
    )
    assert {"DAGSTER_PG_PASSWORD", "CHURN_CODE_SERVER_PORT"} <= needed
    compose_env = set(COMPOSE["x-churn-environment"])
    assert needed <= compose_env
    assert needed <= set(stack_env(tmp_path))
    # the same project settings in both, not only the instance's
    project = {n for n in stack_env(tmp_path) if n.startswith(("CHURN_", "DAGSTER_PG", "AWS_E"))}
    assert project == {n for n in compose_env if n.startswith(("CHURN_", "DAGSTER_PG", "AWS_E"))}
    for name in SERVICES:
        assert COMPOSE["services"][name]["environment"] == COMPOSE["x-churn-environment"]


def test_dockerfile_bakes_the_instance_and_workspace_into_dagster_home() -> None:
    assert re.search(
        r"^COPY deploy/dagster.yaml deploy/workspace.yaml \$\{DAGSTER_HOME\}/$",
        DOCKERFILE,
        flags=re.MULTILINE,
    )
    assert "DAGSTER_HOME=/opt/dagster/home" in DOCKERFILE


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("code-server", ["code-server", "start", "-h", "0.0.0.0", "-p", "4000"]),
        ("webserver", ["-h", "0.0.0.0", "-p", "3000", "-w", "/home/d/workspace.yaml"]),
        ("daemon", ["run", "-w", "/home/d/workspace.yaml"]),
    ],
)
def test_service_commands_read_dagster_home(service: str, expected: list[str]) -> None:
    command = service_command(service, "0.0.0.0", None, {"DAGSTER_HOME": "/home/d"})
    assert command[1 : 1 + len(expected)] == expected


def test_code_server_serves_the_configured_location() -> None:
    env = {"DAGSTER_HOME": "/h"}
    default = service_command("code-server", "127.0.0.1", 4100, env)
    assert default[-6:] == [
        "-m",
        "churn_assets.definitions",
        "-a",
        "defs",
        "--location-name",
        "churn_assets",
    ]
    sample = service_command(
        "code-server", "127.0.0.1", 4100, {**env, "CHURN_CODE_LOCATION": "pkg.mod:small"}
    )
    assert sample[sample.index("-m") : sample.index("-a") + 2] == ["-m", "pkg.mod", "-a", "small"]
    with pytest.raises(ValueError, match="unknown service"):
        service_command("scheduler", "127.0.0.1", None, env)
