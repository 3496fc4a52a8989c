"""Ports for the servers the stack starts: free, never handed out twice, never ephemeral."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chenu_otel.stack import processes
from chenu_otel.stack.processes import LOOPBACK, PORT_RANGE, free_port

EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def test_ports_are_distinct_bindable_and_outside_the_ephemeral_range() -> None:
    """Outgoing connections draw their local port from the ephemeral range; a server port taken
    from it can be stolen between the check and the bind (seen as `address already in use`)."""
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    low, high = (int(n) for n in EPHEMERAL.read_text().split())
    assert all(port in PORT_RANGE and not low <= port <= high for port in ports), ports
    with socket.socket() as sock:
        sock.bind((LOOPBACK, ports[-1]))


def test_a_port_held_by_another_socket_is_skipped_and_exhaustion_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With three candidate ports, two held by other sockets, the third is the answer; after it
    is handed out, the next call fails with a message naming the range."""
    candidates = range(29_990, 29_993)
    monkeypatch.setattr(processes, "PORT_RANGE", candidates)
    monkeypatch.setattr(processes, "_handed_out", set())
    held = [socket.socket() for _ in candidates[:2]]
    try:
        for sock, port in zip(held, candidates, strict=False):
            sock.bind((LOOPBACK, port))
        assert free_port() == candidates[2]
        with pytest.raises(RuntimeError, match=r"no free TCP port .* range\(29990, 29993\)"):
            free_port()
    finally:
        for sock in held:
            sock.close()
