"""``churn-assets stack``: one command starts every service, prints where they are, and a
SIGTERM (what Ctrl-C does, through the same path) stops them all and removes its files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from churn_assets.stack import port_open

START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 180


def test_stack_prints_its_urls_serves_the_ui_and_stops_everything_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "churn_assets.cli", "stack"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert process.stdout is not None
        while not lines or "Ctrl-C stops everything." not in lines[-1]:
            line = process.stdout.readline()
            assert line, f"the stack exited ({process.poll()}):\n{''.join(lines)}"
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        printed = "".join(lines)

        def found(pattern: str) -> str:
            match = re.search(pattern, printed)
            assert match is not None, f"{pattern!r} not in:\n{printed}"
            return match.group(1)

        root = Path(found(r"under (\S+) \.\.\."))
        webserver = found(r"webserver\s+(http://127\.0\.0\.1:\d+)")
        ports = {
            "postgres": int(found(r"@127\.0\.0\.1:(\d+)/dagster")),
            "s3": int(found(r"S3 \(moto\)\s+http://127\.0\.0\.1:(\d+)")),
            "code-server": int(found(r"grpc://127\.0\.0\.1:(\d+)")),
            "webserver": int(webserver.rsplit(":", 1)[1]),
        }
        assert all(port_open(port) for port in ports.values()), ports
        with urllib.request.urlopen(f"{webserver}/server_info", timeout=30) as response:
            assert response.status == 200
        assert (root / "dagster_home" / "dagster.yaml").exists()

        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=STOP_TIMEOUT_S)
        assert process.returncode == 0, printed + rest
        assert "Stopped." in rest
        assert {name for name, port in ports.items() if port_open(port)} == set()
        assert not root.exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
