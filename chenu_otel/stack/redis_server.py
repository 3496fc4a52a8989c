"""The one way chenu-otel starts Redis: a redis-server on loopback without persistence."""

from __future__ import annotations

import socket
from pathlib import Path

from chenu_otel.stack.processes import LOOPBACK, ManagedProcess

__all__ = ["redis_ping", "redis_server"]


def redis_ping(port: int) -> bool:
    """True when a Redis server on `port` answers PING."""
    with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def redis_server(binary: Path, port: int, *, log_dir: Path, data_dir: Path) -> ManagedProcess:
    """Start `binary` (redis-server) on 127.0.0.1:`port`, nothing saved to disk, and wait until
    it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = ManagedProcess(
        "redis",
        [binary, "--bind", LOOPBACK, "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(data_dir)],
        log_dir=log_dir,
    )  # fmt: skip
    server.start()
    try:
        server.wait_ready(lambda: redis_ping(port), timeout=20)
    except BaseException:
        server.stop()
        raise
    return server
