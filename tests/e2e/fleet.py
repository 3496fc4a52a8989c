"""Test-side replicas of the fleet's upstream decisions and the verdicts built on them.

The fleet itself (apps -> 2 agents -> 3 gateways -> Jaeger + Prometheus) is product code:
`chenu_otel.stack.fleet` (``chenu-otel stack run --fleet``). This module carries two exact
replicas of upstream decisions, so a test can say which gateway a trace must reach and whether
the probabilistic policy must keep it:
`HashRing` (loadbalancing exporter v0.161.0, consistent_hashing.go: CRC-32 ring, 200 points per
endpoint, 131071 positions) and `share_keeps` (tail_sampling v0.161.0, probabilistic.go: FNV-1a
64 of salt + trace id against ratio x 2^64), and `fleet_binaries`, which builds what is missing.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from fractions import Fraction

from chenu_otel.stack.fleet import (
    BACKEND,
    FRONTEND,
    FleetBinaries,
    JaegerTrace,
    RequestRecord,
    SamplingSettings,
)
from tests.collector_fixtures import build_collector
from tests.deploy_files import backend_binary


def fleet_binaries() -> FleetBinaries:
    """The fleet's binaries, built by the repository's scripts if they are missing."""
    return FleetBinaries(build_collector(), backend_binary("jaeger"), backend_binary("prometheus"))


# --- replicas of the upstream routing and sampling decisions --------------------------------

RING_POSITIONS = 131071
RING_POINTS_PER_ENDPOINT = 200
RING_PROBE_LIMIT = 10


class HashRing:
    """The loadbalancing exporter's ring for a list of endpoints (as written in the config)."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        candidates = []
        for endpoint in endpoints:
            for point in range(RING_POINTS_PER_ENDPOINT):
                digest = zlib.crc32(endpoint.encode() + point.to_bytes(4, "little"))
                candidates.append((digest % RING_POSITIONS, digest, endpoint))
        candidates.sort()
        used: set[int] = set()
        items: list[tuple[int, str]] = []
        for position, _digest, endpoint in candidates:
            probed = 0
            while position in used and probed < RING_PROBE_LIMIT:
                position = (position + 1) % RING_POSITIONS
                probed += 1
            if probed >= RING_PROBE_LIMIT:
                continue
            used.add(position)
            items.append((position, endpoint))
        self.items = sorted(items)

    def endpoint_for(self, trace_id: str) -> str:
        """The endpoint whose exporter gets every span of `trace_id` (32 hex digits)."""
        position = zlib.crc32(bytes.fromhex(trace_id)) % RING_POSITIONS
        return _ring_search(position, self.items)


def _ring_search(position: int, items: list[tuple[int, str]]) -> str:
    # Upstream's bsearch: the first item at or after the position, wrapping to the first.
    if position > items[-1][0]:
        return items[0][1]
    low, high = 0, len(items) - 1
    while low < high:
        middle = (low + high) // 2
        if items[middle][0] >= position:
            high = middle
        else:
            low = middle + 1
    return items[low][1]


DEFAULT_HASH_SALT = "default-hash-seed"
FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3


def share_keeps(trace_id: str, percentage: float, salt: str = DEFAULT_HASH_SALT) -> bool:
    """Whether tail_sampling's probabilistic policy keeps `trace_id` at `percentage` %."""
    digest = FNV64_OFFSET
    for byte in salt.encode() + bytes.fromhex(trace_id):
        digest = ((digest ^ byte) * FNV64_PRIME) % 2**64
    threshold = int(Fraction(2**64 - 1) * Fraction(percentage / 100))
    return digest <= threshold


# --- verdicts --------------------------------------------------------------------------------


def expected_keep(record: RequestRecord, sampling: SamplingSettings) -> bool | None:
    """Whether the gateways' policies must keep this request's trace: True (error, slow, or the
    trace id hash falls in the share), False (no policy may), None (an ``ok`` request that took
    about as long as the latency threshold at the client: the latency policy may go either way).
    """
    if record.mode in ("error", "slow") or share_keeps(record.trace_id, sampling.percentage):
        return True
    # The client's time bounds the trace's span from above (give the server a little slack).
    if record.seconds * 1000 > sampling.latency_threshold_ms - 50:
        return None
    return False


def completeness(trace: JaegerTrace | None, emitted: int) -> str:
    """``complete`` (every span the apps emitted, from both services), ``partial`` or
    ``missing``."""
    if trace is None:
        return "missing"
    if trace.span_count == emitted and trace.services == {FRONTEND, BACKEND}:
        return "complete"
    return "partial"
