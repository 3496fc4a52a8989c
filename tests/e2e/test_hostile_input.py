"""Hostile OTLP at both receivers of the secured edge (a client that holds a valid token but
sends garbage): each request gets a 4xx or a gRPC error, or is accepted where OTLP allows it
(deep nesting, many attributes: bounded only by the size limit), the collector stays up with
its memory under the memory_limiter bound, and good data sent afterwards still arrives.

What each case gets, measured on chenu-otelcol 0.161.0 with the secure-edge overlay:

=========================  ====================================  =============================
case                       OTLP/HTTP                             OTLP/gRPC
=========================  ====================================  =============================
random bytes               400 (protobuf; JSON if the bytes      INTERNAL (unmarshal error)
                           are text; binary as JSON: 500, an
                           upstream bug, see UPSTREAM_500)
truncated protobuf         400                                   INTERNAL
wrong content type         415 (text/plain)                      INTERNAL (logs request sent
                                                                 to the trace service)
unsupported encoding       400 (Content-Encoding: br)            n/a (gRPC negotiates it)
gzip bomb                  400 "request body too large"          RESOURCE_EXHAUSTED (after
                           (limit applies after decompression)   decompression)
body over the limit        400 "request body too large"          RESOURCE_EXHAUSTED
nested 10,000 deep         200: accepted, forwarded              OK: accepted, forwarded
10,000 attributes          200: accepted, forwarded whole        OK: accepted, forwarded whole
=========================  ====================================  =============================

Malformed-input refusals by gRPC are INTERNAL, not INVALID_ARGUMENT: grpc-go reports a request
it cannot unmarshal that way, before the OTLP receiver sees it.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.e2e.edge_collector import EdgeCollector
from tests.e2e.otlp_payloads import (
    HTTP_PATHS,
    gzip_bomb,
    nested_attribute_request,
    nested_json_request,
    request_for,
    trace_request,
    truncated,
    wide_span_request,
)
from tests.support import poll_until

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
MEMORY_LIMIT_MIB = 400  # the base config's memory_limiter default
SIZE_LIMIT = 4 * MIB  # the overlay's default gRPC message and HTTP body limits
SEED = 20261126
DEPTH = 10_000
WIDTH = 10_000


@dataclass
class Outcome:
    case: str
    answer: str
    rss_mib: float


@pytest.fixture(scope="module")
def edge(
    collector_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeCollector]:
    edge = EdgeCollector(collector_binary, tmp_path_factory.mktemp("hostile-edge"))
    with edge:
        yield edge
    print(f"--- edge collector output (tail) ---\n{edge.output()[-2000:]}")


@pytest.fixture(scope="module")
def outcomes() -> Iterator[list[Outcome]]:
    seen: list[Outcome] = []
    yield seen
    print("\nhostile input: case | answer | collector RSS after (MiB)")
    for outcome in seen:
        print(f"  {outcome.case:<32} {outcome.answer:<24} {outcome.rss_mib:7.1f}")


def over_the_limit() -> bytes:
    """A valid trace request just over the size limit (one big attribute)."""
    return bytes(
        trace_request(
            "hostile-client", "too-big", attributes={"blob": "x" * SIZE_LIMIT}
        ).SerializeToString()
    )


def seeded(case: str) -> random.Random:
    """The same bytes for a case whatever tests run before it."""
    return random.Random(f"{SEED}-{case}")


# (content type, extra headers, body factory, expected status)
HTTP_CASES: dict[str, tuple[str, dict[str, str], Callable[[], bytes], int]] = {
    "random-bytes-protobuf": (
        "application/x-protobuf",
        {},
        lambda: seeded("pb").randbytes(4096),
        400,
    ),
    # starts with a byte that is never UTF-8, so the decoder's complaint quotes binary
    "random-bytes-json": (
        "application/json",
        {},
        lambda: b"\xff" + seeded("json").randbytes(4095),
        400,
    ),
    "random-text-json": (
        "application/json",
        {},
        lambda: "".join(seeded("text").choices('{}[]:,"abc019 ', k=4096)).encode(),
        400,
    ),
    "truncated-protobuf": (
        "application/x-protobuf",
        {},
        lambda: truncated(wide_span_request(20, "cut").SerializeToString()),
        400,
    ),
    "truncated-json": (
        "application/json",
        {},
        lambda: truncated(nested_json_request(3, "kvlist", "cut")),
        400,
    ),
    "wrong-content-type": ("text/plain", {}, lambda: request_for("traces", "h", "ct"), 415),
    "unsupported-encoding": (
        "application/x-protobuf",
        {"Content-Encoding": "br"},
        lambda: request_for("traces", "h", "br"),
        400,
    ),
    "gzip-bomb-64MiB": (
        "application/x-protobuf",
        {"Content-Encoding": "gzip"},
        lambda: gzip_bomb(64 * MIB),
        400,
    ),
    "body-over-the-limit": ("application/x-protobuf", {}, over_the_limit, 400),
}


# The JSON decoder's error message quotes the offending bytes; when they are not UTF-8 the
# receiver cannot encode its own error as JSON and answers 500 instead of 400 (upstream).
UPSTREAM_500 = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="otlpreceiver 0.161.0 answers binary garbage sent as application/json with 500 "
    '"failed to marshal error message": its 400 status quotes the non-UTF-8 input',
)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=UPSTREAM_500) if c == "random-bytes-json" else c for c in HTTP_CASES],
)
def test_http_refuses_malformed_input(
    edge: EdgeCollector, outcomes: list[Outcome], case: str
) -> None:
    """Each malformed OTLP/HTTP request gets its 4xx and the collector keeps running."""
    content_type, headers, body, expected = HTTP_CASES[case]
    answer = edge.post(HTTP_PATHS["traces"], body(), content_type=content_type, headers=headers)
    outcomes.append(Outcome(f"http {case}", str(answer.status), edge.memory().rss / MIB))
    assert edge.alive(), f"the collector died on {case}"
    assert answer.status == expected, (answer.status, answer.body[:200])


GRPC_CASES: dict[str, tuple[Callable[[], bytes], grpc.Compression | None, grpc.StatusCode]] = {
    "random-bytes": (lambda: seeded("grpc").randbytes(4096), None, grpc.StatusCode.INTERNAL),
    "truncated-protobuf": (
        lambda: truncated(wide_span_request(20, "cut").SerializeToString()),
        None,
        grpc.StatusCode.INTERNAL,
    ),
    "wrong-message-type": (
        lambda: request_for("logs", "h", "logs-to-traces"),
        None,
        grpc.StatusCode.INTERNAL,
    ),
    "gzip-bomb-32MiB": (
        lambda: bytes(
            trace_request(
                "hostile-client", "bomb", attributes={"blob": "a" * (32 * MIB)}
            ).SerializeToString()
        ),
        grpc.Compression.Gzip,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
    "message-over-the-limit": (over_the_limit, None, grpc.StatusCode.RESOURCE_EXHAUSTED),
}


@pytest.mark.parametrize("case", GRPC_CASES)
def test_grpc_refuses_malformed_input(
    edge: EdgeCollector, outcomes: list[Outcome], case: str
) -> None:
    """Each malformed OTLP/gRPC call gets a gRPC error and the collector keeps running."""
    payload, compression, expected = GRPC_CASES[case]
    answer = edge.export_grpc("traces", payload(), compression=compression)
    outcomes.append(Outcome(f"grpc {case}", answer.code.name, edge.memory().rss / MIB))
    assert answer.code == expected, answer
    assert edge.alive(), f"the collector died on {case}"


def arrived(edge: EdgeCollector, marker: str) -> list[str]:
    return poll_until(
        lambda: edge.backend_lines(marker), timeout=30, what=f"{marker} at the backend"
    )


@pytest.mark.parametrize("receiver", ["http", "grpc"])
@pytest.mark.parametrize("nesting", ["kvlist", "array"])
def test_deep_nesting_is_accepted_and_forwarded(
    edge: EdgeCollector, outcomes: list[Outcome], receiver: str, nesting: str
) -> None:
    """An attribute value nested 10,000 levels (kvlist or array) is valid OTLP: accepted and
    forwarded; the collector stays up (its memory is checked at the end)."""
    marker = f"deep-{receiver}-{nesting}-{secrets.token_hex(4)}"
    payload = nested_attribute_request(DEPTH, nesting, marker)  # type: ignore[arg-type]
    if receiver == "http":
        answer = str(edge.post(HTTP_PATHS["traces"], payload).status)
        assert answer == "200"
    else:
        answer = edge.export_grpc("traces", payload).code.name
        assert answer == "OK"
    outcomes.append(
        Outcome(f"{receiver} nested {nesting} x{DEPTH}", answer, edge.memory().rss / MIB)
    )
    assert arrived(edge, marker)
    assert edge.alive()


def test_deep_json_nesting_is_accepted(edge: EdgeCollector, outcomes: list[Outcome]) -> None:
    """The same over OTLP/JSON (HTTP), 1,000 levels: accepted and forwarded."""
    marker = f"deep-json-{secrets.token_hex(4)}"
    answer = edge.post(
        HTTP_PATHS["traces"],
        nested_json_request(1_000, "kvlist", marker),
        content_type="application/json",
    )
    outcomes.append(
        Outcome("http json nested kvlist x1000", str(answer.status), edge.memory().rss / MIB)
    )
    assert answer.status == 200, answer
    assert arrived(edge, marker)


@pytest.mark.parametrize("receiver", ["http", "grpc"])
def test_ten_thousand_attributes_are_accepted_whole(
    edge: EdgeCollector, outcomes: list[Outcome], receiver: str
) -> None:
    """10,000 attributes on one span: OTLP sets no count limit and the receiver none either,
    so the span is accepted and forwarded whole; the size limit is the bound."""
    marker = f"wide-{receiver}-{secrets.token_hex(4)}"
    payload = bytes(wide_span_request(WIDTH, marker).SerializeToString())
    if receiver == "http":
        answer = str(edge.post(HTTP_PATHS["traces"], payload).status)
        assert answer == "200"
    else:
        answer = edge.export_grpc("traces", payload).code.name
        assert answer == "OK"
    outcomes.append(Outcome(f"{receiver} {WIDTH} attributes", answer, edge.memory().rss / MIB))
    (line,) = arrived(edge, marker)[:1]
    span = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["attributes"]) == WIDTH + 1  # the marker too


def test_collector_survives_with_bounded_memory_and_good_data_still_flows(
    edge: EdgeCollector, outcomes: list[Outcome]
) -> None:
    """After every case above: the process is up, its peak RSS (VmHWM) and its own RSS metric
    stay under the memory_limiter bound, and valid data over both receivers arrives."""
    assert edge.alive()
    memory = edge.memory()
    own_rss = edge.metric_total("otelcol_process_memory_rss")
    outcomes.append(Outcome("after all cases (peak)", "-", memory.peak / MIB))
    assert memory.peak < MEMORY_LIMIT_MIB * MIB, f"peak RSS {memory.peak / MIB:.0f} MiB"
    assert 0 < own_rss < MEMORY_LIMIT_MIB * MIB, f"otelcol_process_memory_rss {own_rss}"
    good_http, good_grpc = (f"good-{r}-{secrets.token_hex(4)}" for r in ("http", "grpc"))
    assert edge.post(HTTP_PATHS["traces"], request_for("traces", "client", good_http)).status == 200
    assert edge.export_grpc("traces", request_for("traces", "client", good_grpc)).code == (
        grpc.StatusCode.OK
    )
    assert arrived(edge, good_http) and arrived(edge, good_grpc)


# --- nesting as deep as the size limit allows ---------------------------------------------------
# OTLP puts no limit on AnyValue nesting and the collector's protobuf decoding has none either:
# the decoders recurse once per level, so a request of nested arrays just under the size limit
# (about 450,000 levels in 3.8 MiB) raises the collector's RSS by about 600 MiB within a second
# (heap freed right after decoding, ~270 MiB of goroutine stacks: pprof's MemStats), a spike
# the memory_limiter, which samples the heap once a second, does not catch. A fresh edge
# measures it, so the figures are not mixed with the cases above.
WORST_DEPTH = 450_000


@dataclass
class WorstCase:
    edge: EdgeCollector
    answer: str
    rss_before: int
    rss_after: int


@pytest.fixture(scope="module")
def worst_case(
    collector_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorstCase]:
    edge = EdgeCollector(collector_binary, tmp_path_factory.mktemp("nesting-edge"), name="deep")
    payload = nested_attribute_request(WORST_DEPTH, "array", "worst-case")
    assert len(payload) < SIZE_LIMIT, "the worst case must fit the size limit"
    with edge:
        before = edge.memory().rss
        answer = str(edge.post(HTTP_PATHS["traces"], payload, timeout=60).status)
        arrived(edge, "worst-case")  # the nested span went through the whole pipeline
        case = WorstCase(edge, answer, before, edge.memory().peak)
        print(
            f"\nnesting x{WORST_DEPTH} ({len(payload) / MIB:.1f} MiB): answer {answer}, "
            f"RSS {before / MIB:.0f} MiB -> peak {case.rss_after / MIB:.0f} MiB "
            f"(memory_limiter bound {MEMORY_LIMIT_MIB} MiB)"
        )
        yield case


def test_nesting_at_the_size_limit_leaves_the_collector_up_and_data_flowing(
    worst_case: WorstCase,
) -> None:
    """The deepest nesting that fits the size limit is accepted (valid OTLP); afterwards the
    collector still runs and forwards good data."""
    edge = worst_case.edge
    assert worst_case.answer == "200"
    assert edge.alive()
    marker = f"after-worst-{secrets.token_hex(4)}"
    assert edge.post(HTTP_PATHS["traces"], request_for("traces", "client", marker)).status == 200
    assert arrived(edge, marker)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="collector 0.161.0 decodes AnyValue nesting without a depth limit: ~3.8 MiB of "
    "nested arrays raises RSS by ~600 MiB (decoding recursion: transient heap and goroutine "
    "stacks), beyond the memory_limiter's bound; no setting of this release bounds it except "
    "the size limits",
)
def test_nesting_at_the_size_limit_stays_under_the_memory_bound(worst_case: WorstCase) -> None:
    """Peak RSS after the deepest request stays under the memory_limiter bound."""
    assert worst_case.rss_after < MEMORY_LIMIT_MIB * MIB, f"{worst_case.rss_after / MIB:.0f} MiB"
