"""Integration fixtures: a real redis-server on a free loopback port, the demo app on SQLite."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LOOPBACK, ManagedProcess, free_port, require_binary


def _redis_ping(port: int) -> bool:
    with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server started for this test session (127.0.0.1, no persistence)."""
    binary = require_binary("redis-server", "run scripts/install-debian-packages")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    server = ManagedProcess(
        "redis-server",
        [binary, "--bind", LOOPBACK, "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        log_dir=workdir,
    )  # fmt: skip
    server.start().wait_ready(lambda: _redis_ping(port), timeout=20)
    try:
        yield f"redis://{LOOPBACK}:{port}/0"
    finally:
        server.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'demo.db'}"
