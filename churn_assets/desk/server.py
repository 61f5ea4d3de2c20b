"""Running the desk: the warehouse it reads, the Dagster instance it asks, uvicorn."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from dagster_aws.s3 import S3Resource

from churn_assets.desk.warehouse import DeskWarehouse
from churn_assets.resources.warehouse import ParquetWarehouse


def open_warehouse(url: str, s3: S3Resource | None = None) -> DeskWarehouse:
    """The warehouse at ``url`` (a directory or s3://bucket/prefix; S3 through the AWS chain)."""
    return DeskWarehouse(ParquetWarehouse(url=url, s3=s3 or S3Resource()))


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket; port 0 lets the system pick a free one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def serve(app: Any, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``app`` on ``sock`` until interrupted."""
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])


@contextmanager
def running(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """The app served from a thread on a free port of ``host``; yields its address."""
    sock = bind(host, 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the desk's server did not start")
            threading.Event().wait(0.02)
        yield address(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
