"""Spark test support: Java gate, the shared local[2] session, a standalone cluster.

The Spark tests run, never skip, where Java is installed (``make setup`` installs it, CI
runs it); on a machine without Java they skip with the engine's own message, except in CI
(``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark import SparkContext
from pyspark.sql import SparkSession

from churn_assets.engines.spark import SparkSessionResource, java_problem

LOCAL_MASTER = "local[2]"


def require_java() -> None:
    """Skip (fail in CI) when this machine cannot run Spark."""
    problem = java_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the Spark tests: {problem}")
    pytest.skip(problem)


def local_spark() -> SparkSession:
    """The process's local[2] session: joined when running, else started (and left running)."""
    require_java()
    return SparkSessionResource(master=LOCAL_MASTER).spark_session


def stop_spark() -> None:
    """Stop the Spark session of this process, if any (only tests start them)."""
    running = SparkContext._active_spark_context
    if running is not None:
        running.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StandaloneCluster:
    """A Spark standalone master and one worker, both on 127.0.0.1."""

    master_url: str
    ui_url: str
    logs: Path

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=10) as response:
            return json.load(response)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _scala_version(home: Path) -> str:
    """Scala version of the Spark jars (the launcher needs it outside a Spark build)."""
    core = next(home.glob("jars/spark-core_*.jar"))
    return core.name.removeprefix("spark-core_").split("-", 1)[0]


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return os.path.join(home, "bin", "java") if home else "java"


def _daemon_command(env: dict[str, str], main_class: str, *args: str) -> list[str]:
    """The java command line Spark's own launcher (what ``spark-class`` runs) builds."""
    home = _spark_home()
    classpath = str(home / "jars" / "*")
    launcher = subprocess.run(
        [
            _java(),
            "-Xmx128m",
            "-cp",
            classpath,
            "org.apache.spark.launcher.Main",
            main_class,
            *args,
        ],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    parts = [part.decode() for part in launcher.stdout.split(b"\0")]
    command = [part for part in parts if part.strip()]
    command[0] = command[0].strip()  # the launcher may print a newline before the command
    return command


@contextmanager
def standalone_cluster(
    work: Path, cores: int = 2, memory: str = "2g", timeout_s: float = 180.0
) -> Iterator[StandaloneCluster]:
    """Start a master and a worker from the pyspark installation; stop both at the end."""
    require_java()
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(_spark_home()),
        "SPARK_SCALA_VERSION": _scala_version(_spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": "512m",
    }
    port, ui_port, worker_ui = _free_port(), _free_port(), _free_port()
    master_url, ui_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    cluster = StandaloneCluster(master_url, ui_url, work)
    commands = {
        "master": _daemon_command(
            env,
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)),
        ),
        "worker": _daemon_command(
            env,
            "org.apache.spark.deploy.worker.Worker",
            master_url,
            *("--host", "127.0.0.1", "--webui-port", str(worker_ui)),
            *("--cores", str(cores), "--memory", memory, "--work-dir", str(work / "worker")),
        ),
    }
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            with open(work / f"{name}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
            if name == "master":
                _wait(cluster, processes, timeout_s, lambda s: True)
        _wait(cluster, processes, timeout_s, lambda s: s.get("aliveworkers", 0) >= 1)
        yield cluster
    finally:
        for process in reversed(processes):  # worker first: it stops its executors
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def _wait(cluster: StandaloneCluster, processes: list, timeout_s: float, ready) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError(f"a Spark daemon exited early\n{cluster.log_tail()}")
        try:
            if ready(cluster.status()):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"Spark standalone cluster not ready\n{cluster.log_tail()}")
        time.sleep(0.5)
