"""A real S3 API for tests: moto's server mode in a subprocess on 127.0.0.1, no patched clients.

Test files load these fixtures with ``pytest_plugins`` (see test_sensors.py); other code
(the S3 demo, the daemon test) uses :func:`moto_server` directly. Every client talks HTTP to
the subprocess exactly as it would to AWS, so pagination, ETags and LastModified come from
the S3 protocol rather than from a mock of boto3.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Credentials and region for the local server: moto accepts anything, nothing secret here."""


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def moto_server(startup_timeout: float = 30.0) -> Iterator[str]:
    """Run ``python -m moto.server`` on a free port; yields its endpoint URL, then stops it."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **DUMMY_CREDENTIALS},
    )
    try:
        deadline = time.monotonic() + startup_timeout
        while not _answers(endpoint):
            if process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto server did not answer on {endpoint}")
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def s3_client(endpoint: str) -> Any:
    """A plain boto3 client for the local server, as an upstream producer would use."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def s3_resource(endpoint: str) -> Any:
    """dagster-aws's S3Resource pointed at the local server (what the project's resources take)."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(
        endpoint_url=endpoint,
        region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def create_bucket(endpoint: str, prefix: str = "churn") -> str:
    """A new, empty bucket with a unique name, so tests sharing one server never collide."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the whole test session (start-up costs about a second)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    """A fresh bucket on the session's server."""
    return create_bucket(moto_endpoint)


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    """A boto3 client on the session's server."""
    return s3_client(moto_endpoint)


@pytest.fixture
def dagster_s3(moto_endpoint: str) -> Any:
    """dagster-aws's S3Resource on the session's server."""
    return s3_resource(moto_endpoint)


@pytest.fixture
def make_bucket(moto_endpoint: str) -> Any:
    """Creates further fresh buckets on demand (for tests that need more than one)."""
    return lambda: create_bucket(moto_endpoint)
