"""Helpers for tests that run real servers on loopback: free ports, managed processes, polling.

They are the stack's own (`chenu_otel.stack.processes`), importable from here as before. Every
server a test starts binds 127.0.0.1 only, and is stopped (and its output shown) when the test
ends. No sleeps as synchronisation: `poll_until` retries a probe until a deadline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from chenu_otel.stack.processes import (
    LOOPBACK,
    ManagedProcess,
    free_port,
    http_ok,
    poll_until,
    port_open,
    require_binary,
)

__all__ = [
    "DEBIAN_PROMTOOL",
    "LOOPBACK",
    "REPO_ROOT",
    "ManagedProcess",
    "free_port",
    "http_ok",
    "poll_until",
    "port_open",
    "require_binary",
]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
#: promtool from Debian's prometheus package (scripts/install-debian-packages).
DEBIAN_PROMTOOL: Final = "/usr/bin/promtool"
