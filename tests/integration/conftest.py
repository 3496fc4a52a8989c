"""Integration fixtures: a real redis-server on a free loopback port, the demo app on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chenu_otel.stack.binaries import find_binary
from chenu_otel.stack.processes import LOOPBACK, free_port
from chenu_otel.stack.redis_server import redis_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server started for this test session (127.0.0.1, no persistence); a
    missing redis-server fails with how to install it."""
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    server = redis_server(find_binary("redis-server"), port, log_dir=workdir, data_dir=workdir)
    try:
        yield f"redis://{LOOPBACK}:{port}/0"
    finally:
        server.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'demo.db'}"
