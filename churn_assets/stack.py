"""The production-shaped deployment on one machine: ``churn-assets stack`` and ``service``.

Five processes, each started and stopped on its own, as they run on Kubernetes or ECS:

- PostgreSQL: a throwaway cluster in a temporary directory (the machine's ``initdb`` and
  ``postgres``), started as an unprivileged user because PostgreSQL refuses root; the
  Dagster instance (runs, event log, schedules and sensors) lives in it;
- moto's S3 server: the landing bucket, the warehouse, the model store and the step logs;
- the code server (``dagster code-server start``), the only process that imports the
  project; every run is a process it starts (``DefaultRunLauncher``);
- the webserver and the daemon, which load the code location from the code server.

The three Dagster services are started by ``churn-assets service NAME``, the same command the
containers of ``deploy/docker-compose.yaml`` run; ``deploy/dagster.yaml`` and
``deploy/workspace.yaml`` are their instance and workspace, settings from the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
SERVICES = ("code-server", "webserver", "daemon")
DEFAULT_CODE_LOCATION = "churn_assets.definitions:defs"
SAMPLE_CODE_LOCATION = "churn_assets.stack:sample_defs"
CODE_LOCATION_VARIABLE = "CHURN_CODE_LOCATION"
POSTGRES_USER_CANDIDATES = ("postgres", "churn-stack")
BUCKET = "churn"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "stack",
    "AWS_SECRET_ACCESS_KEY": "stack",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""moto accepts any credentials; placeholders so boto3 never looks further, not secrets."""


@dg.definitions
def sample_defs() -> dg.Definitions:
    """The small-settings graph of the S3 demo (a week reaches scores), for ``--sample``."""
    from churn_assets.s3_demo import demo_definitions

    return demo_definitions()


# ---- churn-assets service NAME: the one command every deployment runs ----------------------


def service_command(service: str, host: str, port: int | None, env: Mapping[str, str]) -> list[str]:
    """The Dagster command of ``service``; instance and workspace come from DAGSTER_HOME."""
    bin_dir = Path(sys.executable).parent
    home = Path(env["DAGSTER_HOME"])
    workspace = str(home / "workspace.yaml")
    if service == "code-server":
        module, _, attribute = env.get(CODE_LOCATION_VARIABLE, DEFAULT_CODE_LOCATION).partition(":")
        return [
            str(bin_dir / "dagster"),
            "code-server",
            "start",
            "-h",
            host,
            "-p",
            str(port or 4000),
            "-m",
            module,
            "-a",
            attribute or "defs",
            "--location-name",
            "churn_assets",
        ]
    if service == "webserver":
        return [
            str(bin_dir / "dagster-webserver"),
            "-h",
            host,
            "-p",
            str(port or 3000),
            "-w",
            workspace,
        ]
    if service == "daemon":
        return [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]
    raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")


def run_service(args: argparse.Namespace) -> int:
    """Replaces this process with the service (signals then reach Dagster directly)."""
    if "DAGSTER_HOME" not in os.environ:
        print("DAGSTER_HOME must hold dagster.yaml and workspace.yaml (see deploy/)")
        return 2
    command = service_command(args.service, args.host, args.port, os.environ)
    os.execv(command[0], command)
    return 1  # not reached


# ---- the processes of the stack -------------------------------------------------------------


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Service:
    """One process of the stack: started in its own session, stopped by its own signal."""

    name: str
    command: list[str]
    log: Path
    ready: Callable[[], bool] = lambda: True
    stop_signal: signal.Signals = signal.SIGTERM
    env: Mapping[str, str] | None = None
    user: pwd.struct_passwd | None = None
    stop_timeout_s: float = 60.0
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, timeout_s: float = 120.0) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.command,
                env=dict(self.env) if self.env is not None else None,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the stack only, which stops us in order
                **_as_user(self.user),
            )
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}): {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout_s}s: {self.tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """The service's own graceful stop, then the whole process group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        # a second Ctrl-C while we wait means: stop waiting, kill it now
        with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
            self.process.wait(timeout=self.stop_timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def postgres_bin_dir() -> Path:
    """Where ``initdb`` and ``postgres`` are: PATH, ``pg_config --bindir``, Debian's layout."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        output = subprocess.run(["pg_config", "--bindir"], capture_output=True, check=True)
        candidate = Path(output.stdout.decode().strip())
        if (candidate / "initdb").exists():
            return candidate
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if debian:
        return debian[0].parent
    raise RuntimeError(
        "PostgreSQL's initdb was not found: `make setup` installs it (apt-get install "
        "postgresql), or put the server's bin directory on PATH"
    )


def unprivileged_user() -> pwd.struct_passwd | None:
    """The system user that runs PostgreSQL when we are root (it refuses root); created once."""
    if os.geteuid() != 0:
        return None
    for name in POSTGRES_USER_CANDIDATES:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    name = POSTGRES_USER_CANDIDATES[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
    )
    return pwd.getpwnam(name)


@dataclass
class PostgresSettings:
    host: str
    port: int
    user: str
    password: str
    db: str
    data_dir: Path

    def environment(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }


def _as_user(owner: pwd.struct_passwd | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a command as ``owner`` (nothing when we are not root)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def init_postgres(owner: pwd.struct_passwd | None) -> PostgresSettings:
    """``initdb`` a new cluster in a new temporary directory that ``owner`` owns.

    Password authentication over TCP on 127.0.0.1 only; the password is random per cluster.
    The directory is a fresh one under the system's temp dir, not under the caller's folder,
    whose parents the unprivileged owner may not be allowed to enter.
    """
    data = Path(tempfile.mkdtemp(prefix="churn-pg-"))
    settings = PostgresSettings(
        "127.0.0.1", free_port(), "dagster", secrets.token_urlsafe(18), "dagster", data
    )
    with tempfile.NamedTemporaryFile("w", prefix="churn-pg-", suffix=".pw") as password_file:
        password_file.write(settings.password + "\n")
        password_file.flush()
        if owner is not None:
            for path in (str(data), password_file.name):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = subprocess.run(
            [
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(data),
                "-U",
                settings.user,
                f"--pwfile={password_file.name}",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            **_as_user(owner),
        )
    if initdb.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({initdb.returncode}): {initdb.stderr[-2000:]}")
    return settings


def postgres_service(root: Path, settings: PostgresSettings, owner: Any) -> Service:
    def ready() -> bool:
        import psycopg2

        try:
            psycopg2.connect(**_connect_args(settings, "postgres")).close()
            return True
        except psycopg2.OperationalError:
            return False

    return Service(
        name="postgres",
        command=[
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(settings.data_dir),
            "-p",
            str(settings.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={settings.data_dir}",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off",  # a throwaway cluster: durability across power loss is not its job
        ],
        log=root / "postgres.log",
        ready=ready,
        stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for every client
        user=owner,
    )


def _connect_args(settings: PostgresSettings, db: str) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "password": settings.password,
        "dbname": db,
        "connect_timeout": 2,
    }


def create_database(settings: PostgresSettings) -> None:
    import psycopg2

    connection = psycopg2.connect(**_connect_args(settings, "postgres"))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.db,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{settings.db}"')
    finally:
        connection.close()


def moto_service(root: Path, port: int) -> Service:
    moto = Path(sys.executable).with_name("moto_server")
    command = [str(moto)] if moto.exists() else [sys.executable, "-m", "moto.server"]
    return Service(
        name="s3",
        command=[*command, "-H", "127.0.0.1", "-p", str(port)],
        log=root / "s3.log",
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/moto-api/"),
        env={**os.environ, **LOCAL_CREDENTIALS},
    )


def prepare_dagster_home(home: Path) -> None:
    """deploy/'s instance and workspace files, as the Docker image holds them."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(DEPLOY_DIR / name, home / name)


@dataclass
class Stack:
    """The running stack: its services by name, their environment and the URLs to print."""

    root: Path
    env: dict[str, str]
    services: dict[str, Service]
    s3_endpoint: str
    webserver_url: str | None

    def restart(self, *names: str) -> None:
        """Stops the named services (the last started first), then starts them in order.

        The daemon is restarted with the code server: a code server that was told to stop
        drains (its runs finish) and refuses every run launched meanwhile, which would fail.
        """
        if "code-server" in names:
            names = (*names, "daemon")
        chosen = [s for name, s in self.services.items() if name in names]
        for service in reversed(chosen):
            service.stop()
        for service in chosen:
            service.start()

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    def urls(self) -> str:
        pg = self.env
        lines = [
            f"PostgreSQL  postgresql://{pg['DAGSTER_PG_USER']}@{pg['DAGSTER_PG_HOST']}:"
            f"{pg['DAGSTER_PG_PORT']}/{pg['DAGSTER_PG_DB']} (password in DAGSTER_PG_PASSWORD "
            "of the services' environment)",
            f"S3 (moto)   {self.s3_endpoint}  landing {self.env['CHURN_LANDING_URL']}",
            f"code server grpc://127.0.0.1:{self.env['CHURN_CODE_SERVER_PORT']}",
        ]
        if self.webserver_url:
            lines.append(f"webserver   {self.webserver_url}")
        lines.append(f"logs        {self.root}/*.log   DAGSTER_HOME {self.env['DAGSTER_HOME']}")
        return "\n".join(lines)


def stack_environment(
    root: Path, postgres: PostgresSettings, s3_endpoint: str, code_port: int, code_location: str
) -> dict[str, str]:
    """Every setting the services read, the same names as in deploy/docker-compose.yaml."""
    return {
        **LOCAL_CREDENTIALS,
        **postgres.environment(),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "AWS_ENDPOINT_URL": s3_endpoint,
        "CHURN_CODE_SERVER_HOST": "127.0.0.1",
        "CHURN_CODE_SERVER_PORT": str(code_port),
        CODE_LOCATION_VARIABLE: code_location,
        "CHURN_MAX_CONCURRENT_RUNS": "2",
        "CHURN_ENV": "production",
        "CHURN_ENGINE": "embedded",
        "CHURN_LANDING_URL": f"s3://{BUCKET}/landing",
        "CHURN_WAREHOUSE_URL": f"s3://{BUCKET}/warehouse",
        "CHURN_MODEL_STORE_URL": f"s3://{BUCKET}/models",
        "DAGSTER_COMPUTE_LOG_BUCKET": BUCKET,
    }


def dagster_service(name: str, root: Path, env: Mapping[str, str], port: int | None) -> Service:
    """A Dagster service through ``churn-assets service``, exactly as the containers run it."""
    command = [sys.executable, "-m", "churn_assets.cli", "service", name, "--host", "127.0.0.1"]
    if port is not None:
        command += ["--port", str(port)]

    def ready() -> bool:
        if name == "code-server":
            return port_open(port or 0)
        if name == "webserver":
            return http_ok(f"http://127.0.0.1:{port}/server_info")
        return True

    # SIGTERM makes the code server refuse new runs and exit once the runs it started finish
    drain_s = 600.0 if name == "code-server" else 60.0
    return Service(
        name=name,
        command=command,
        log=root / f"{name}.log",
        ready=ready,
        env=env,
        stop_timeout_s=drain_s,
    )


def inherit_interrupts() -> None:
    """Let the services receive SIGINT and SIGTERM even when we run in the background.

    A shell ignores SIGINT in background jobs and an ignored signal stays ignored across
    exec; Dagster's services map SIGTERM to their SIGINT handler, so they would ignore both.
    A handler (not "ignore") in this process resets to the default in every child.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def running_stack(
    root: Path,
    code_location: str = DEFAULT_CODE_LOCATION,
    extra_env: Mapping[str, str] | None = None,
    webserver: bool = True,
    webserver_port: int | None = None,
) -> Iterator[Stack]:
    """Starts every service under ``root`` in dependency order; stops them all on exit."""
    services: dict[str, Service] = {}
    postgres: PostgresSettings | None = None
    inherit_interrupts()
    try:
        owner = unprivileged_user()
        postgres = init_postgres(owner)
        services["postgres"] = postgres_service(root, postgres, owner)
        services["postgres"].start()
        create_database(postgres)

        s3_port = free_port()
        services["s3"] = moto_service(root, s3_port)
        services["s3"].start()
        s3_endpoint = f"http://127.0.0.1:{s3_port}"

        code_port = free_port()
        env = {
            **os.environ,
            **stack_environment(root, postgres, s3_endpoint, code_port, code_location),
            **(extra_env or {}),
        }
        prepare_dagster_home(Path(env["DAGSTER_HOME"]))
        create_bucket(env, BUCKET)

        services["code-server"] = dagster_service("code-server", root, env, code_port)
        services["code-server"].start()
        url = None
        if webserver:
            port = webserver_port or free_port()
            services["webserver"] = dagster_service("webserver", root, env, port)
            services["webserver"].start()
            url = f"http://127.0.0.1:{port}"
        services["daemon"] = dagster_service("daemon", root, env, None)
        services["daemon"].start()
        stack = Stack(root, env, services, s3_endpoint, url)
        yield stack
    finally:
        for service in reversed(list(services.values())):
            service.stop()
        if postgres is not None:
            shutil.rmtree(postgres.data_dir, ignore_errors=True)


def s3_client(env: Mapping[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def create_bucket(env: Mapping[str, str], bucket: str) -> None:
    s3_client(env).create_bucket(Bucket=bucket)


def sample_history_start(days: int) -> date:
    """The sample history ends two days ago, so every lateness window has closed by the clock."""
    return datetime.now(timezone.utc).date() - timedelta(days=days + 1)


# ---- churn-assets stack ----------------------------------------------------------------------


class _Stop(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so the stack unwinds exactly as on Ctrl-C."""


def run_stack(args: argparse.Namespace) -> int:
    from churn_assets.core.generator import GeneratorConfig
    from churn_assets.s3_demo import HISTORY_START_VARIABLE, INTERVAL_VARIABLE, upload_landing

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, on_sigterm)
    start = sample_history_start(args.days)
    extra_env = {HISTORY_START_VARIABLE: start.isoformat(), INTERVAL_VARIABLE: "10"}
    code_location = SAMPLE_CODE_LOCATION if args.sample else DEFAULT_CODE_LOCATION
    root = Path(tempfile.mkdtemp(prefix="churn-stack-"))
    print(f"Starting PostgreSQL, S3 (moto), code server, webserver and daemon under {root} ...")
    try:
        with running_stack(root, code_location, extra_env, webserver_port=args.port) as stack:
            print(stack.urls())
            if args.sample:
                config = GeneratorConfig(
                    start=start, days=args.days, customers=args.customers, seed=args.seed
                )
                counts = upload_landing(s3_client(stack.env), BUCKET, "landing", config)
                print(
                    f"Uploaded {counts['objects']} landing files ({start} .. "
                    f"{start + timedelta(days=args.days - 1)}); the sensors take it from here."
                )
            else:
                print(
                    "Upload landing files (LANDING.md) as the producers would, e.g.\n"
                    f"  aws --endpoint-url {stack.s3_endpoint} s3 cp --recursive data/landing "
                    f"s3://{BUCKET}/landing"
                )
            print("Ctrl-C stops everything.", flush=True)
            try:
                while all(s.running for s in stack.services.values()):
                    time.sleep(1)
            except KeyboardInterrupt:
                print(
                    "Stopping; the code server first lets the runs it started finish "
                    "(Ctrl-C again: stop without waiting) ...",
                    flush=True,
                )
                return 0
            for service in stack.services.values():
                if not service.running:
                    print(f"{service.name} exited; its log ends with:\n{service.tail(1500)}")
            return 1
    except KeyboardInterrupt:  # while starting
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        print("Stopped." if not args.keep else f"Stopped; files kept in {root}")


def add_parsers(sub: Any) -> None:
    """Registers ``stack`` and ``service`` on the CLI's subparsers."""
    stack = sub.add_parser(
        "stack",
        help="PostgreSQL, S3 (moto), code server, webserver and daemon on this machine",
    )
    stack.add_argument(
        "--sample",
        action="store_true",
        help="upload a generated week and serve the small-settings graph (scores in minutes)",
    )
    stack.add_argument("--days", type=int, default=8)
    stack.add_argument("--customers", type=int, default=1000)
    stack.add_argument("--seed", type=int, default=5)
    stack.add_argument("--port", type=int, help="webserver port (default: a free one)")
    stack.add_argument("--keep", action="store_true", help="keep the logs and data on exit")
    stack.set_defaults(func=run_stack)

    service = sub.add_parser(
        "service",
        help="run one Dagster service with deploy/'s settings (what the containers run)",
    )
    service.add_argument("service", choices=SERVICES)
    service.add_argument("--host", default="0.0.0.0")
    service.add_argument("--port", type=int, help="code server 4000, webserver 3000 by default")
    service.set_defaults(func=run_service)
