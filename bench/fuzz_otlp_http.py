"""Seeded, time-bounded fuzzing of the OTLP/HTTP receiver of the secured edge.

Starts chenu-otelcol with collector/otelcol.yaml + collector/overlays/secure-edge.yaml on
loopback (certificates made on the spot, a token file, a downstream collector as the backend),
then sends mutated OTLP/HTTP requests over one keep-alive TLS connection until the time or the
request budget runs out. Each request starts from a valid payload built with the official
opentelemetry-proto classes (a trace, metric or log request, protobuf or JSON) and gets one
mutation kind: bit flips, truncation, inserted/deleted/duplicated byte runs, splices, random
bytes, swapped or odd content types, gzip (valid, corrupt, of a mutated payload) and unknown
encodings, wrong paths and methods, a missing or wrong token, JSON type confusion.

It reports what it tried: requests per mutation kind, the status codes each kind got, every 5xx
with what reproduces it (seed and request number), whether the collector stayed up, its RSS
before/after and at peak, the collector's own count of answers by status, and whether valid
data sent after the run still reaches the backend. Exit status 1 when the collector died or
good data stopped flowing (5xx answers are reported, not fatal: see the report).

    .venv/bin/python bench/fuzz_otlp_http.py --seconds 60 --seed 7
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import random
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# The harness lives with the e2e tests; bench scripts run from a checkout.
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from google.protobuf.message import Message  # type: ignore[import-untyped]  # noqa: E402

from tests.collector_fixtures import build_collector  # noqa: E402
from tests.e2e.edge_collector import EdgeCollector  # noqa: E402
from tests.e2e.otlp_payloads import (  # noqa: E402
    HTTP_PATHS,
    Signal,
    log_request,
    metric_request,
    otlp_json,
    request_for,
    trace_request,
)
from tests.support import poll_until  # noqa: E402

MIB = 1024 * 1024
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
PROTOBUF, JSON = "application/x-protobuf", "application/json"


@dataclass
class Request:
    """One fuzz request: what goes on the wire."""

    path: str
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    token: bool = True  # send the edge's token


def valid_message(rng: random.Random, signal: Signal) -> Message:
    """A valid request with a few random attributes of mixed types."""
    attributes: dict[str, object] = {}
    for n in range(rng.randint(0, 6)):
        attributes[f"fuzz.{n}"] = rng.choice(
            [rng.randint(-(2**40), 2**40), rng.random(), "v" * rng.randint(0, 64), True, [1, 2]]
        )
    marker = f"fuzz-{rng.getrandbits(32):08x}"
    if signal == "traces":
        return trace_request("fuzz-client", marker, attributes=attributes)
    if signal == "metrics":
        return metric_request("fuzz-client", marker, attributes=attributes)
    return log_request("fuzz-client", marker, attributes=attributes)


def encode(message: Message, content_type: str) -> bytes:
    return otlp_json(message) if content_type == JSON else bytes(message.SerializeToString())


def _bitflip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(max(1, len(data)))]


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]


def _delete(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    start = rng.randrange(len(data) - 1)
    return data[:start] + data[start + rng.randint(1, min(64, len(data) - start)) :]


def _duplicate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    run = data[start : start + rng.randint(1, 128)]
    return data[:start] + run * rng.randint(2, 64) + data[start:]


def _json_confusion(rng: random.Random, data: bytes) -> bytes:
    """Swap JSON values for values of other types (strings for numbers, objects for arrays)."""
    text = data.decode(errors="replace")
    swaps = [
        ('"stringValue"', '"intValue"'),
        ('"intValue":"', '"intValue":'),
        ("[", "{"),
        ('"traceId":"', '"traceId":"zz'),
        ('"timeUnixNano":"', '"timeUnixNano":"-'),
        ("true", '"true"'),
        ('"asInt":"1"', '"asInt":"99999999999999999999999"'),
    ]
    for _ in range(rng.randint(1, 3)):
        old, new = rng.choice(swaps)
        text = text.replace(old, new, 1)
    return text.encode()


BYTE_MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "bitflip": _bitflip,
    "truncate": _truncate,
    "insert-bytes": _insert,
    "delete-bytes": _delete,
    "duplicate-run": _duplicate,
}


def fuzz_request(rng: random.Random, kind: str, edge_token_ok: bool = True) -> Request:
    """Build one request of mutation `kind` from a fresh valid payload."""
    signal = rng.choice(SIGNALS)
    content_type = rng.choice([PROTOBUF, JSON])
    message = valid_message(rng, signal)
    body = encode(message, content_type)
    path = HTTP_PATHS[signal]
    if kind == "valid":
        return Request(path, body, content_type)
    if kind in BYTE_MUTATIONS:
        return Request(path, BYTE_MUTATIONS[kind](rng, body), content_type)
    if kind == "splice":
        other = encode(valid_message(rng, rng.choice(SIGNALS)), content_type)
        return Request(
            path,
            body[: rng.randrange(len(body))] + other[rng.randrange(len(other)) :],
            content_type,
        )
    if kind == "random-bytes":
        return Request(path, rng.randbytes(rng.randint(0, 4096)), content_type)
    if kind == "json-confusion":
        return Request(path, _json_confusion(rng, otlp_json(message)), JSON)
    if kind == "content-type":
        odd = rng.choice(
            [
                JSON if content_type == PROTOBUF else PROTOBUF,  # the other encoding's name
                "text/plain",
                None,
                f"{content_type}; charset=utf-8",
                "application/x-protobuf, application/json",
                "application/grpc",
                ";;;",
            ]
        )
        return Request(path, body, odd)
    if kind == "gzip":
        variant = rng.choice(["valid", "corrupt", "mutated", "not-compressed", "double"])
        if variant == "valid":
            data = gzip.compress(body)
        elif variant == "corrupt":
            data = _bitflip(rng, gzip.compress(body))
        elif variant == "mutated":
            data = gzip.compress(_bitflip(rng, body))
        elif variant == "double":
            data = gzip.compress(gzip.compress(body))
        else:
            data = body
        return Request(path, data, content_type, {"Content-Encoding": "gzip"})
    if kind == "encoding":
        encoding = rng.choice(["br", "compress", "identity", "gzip, gzip", "x-unknown", "zstd"])
        return Request(path, body, content_type, {"Content-Encoding": encoding})
    if kind == "path-method":
        choice = rng.choice(["wrong-path", "get", "put", "trailing-slash", "signal-swap"])
        if choice == "wrong-path":
            return Request("/v1/trace", body, content_type)
        if choice == "get":
            return Request(path, b"", content_type, method="GET")
        if choice == "put":
            return Request(path, body, content_type, method="PUT")
        if choice == "trailing-slash":
            return Request(path + "/", body, content_type)
        swapped = HTTP_PATHS[rng.choice([s for s in SIGNALS if s != signal])]
        return Request(swapped, body, content_type)
    if kind == "auth":
        # refusals answer in the request's content type: vary it too
        shown = rng.choice([content_type, content_type, "text/plain", None])
        if rng.random() < 0.5:
            return Request(path, body, shown, token=False)
        return Request(path, body, shown, {"Authorization": "Bearer " + "x" * 40}, token=False)
    raise ValueError(f"unknown mutation kind {kind}")


KINDS = ["valid", *BYTE_MUTATIONS, "splice", "random-bytes", "json-confusion", "content-type",
         "gzip", "encoding", "path-method", "auth"]  # fmt: skip


@dataclass
class Report:
    seed: int
    requests: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    kind_statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    server_errors: list[dict[str, object]] = field(default_factory=list)
    died_at: int | None = None


class Client:
    """One keep-alive TLS connection to the edge, reopened when the server closes it."""

    def __init__(self, edge: EdgeCollector) -> None:
        self.edge = edge
        self.connection: http.client.HTTPSConnection | None = None

    def send(self, request: Request) -> tuple[str, bytes]:
        headers = dict(request.headers)
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        if request.token:
            headers["Authorization"] = f"Bearer {self.edge.tokens[0]}"
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(
                    "127.0.0.1",
                    self.edge.collector.http_port,
                    context=self.edge.ssl_context(),
                    timeout=30,
                )
            try:
                self.connection.request(request.method, request.path, request.body, headers)
                response = self.connection.getresponse()
                body = response.read()
                if response.will_close:
                    self.close()
                return str(response.status), body
            except (OSError, http.client.HTTPException) as error:
                self.close()
                if attempt == 1:
                    return f"error:{type(error).__name__}", b""
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def fuzz(edge: EdgeCollector, seed: int, seconds: float, max_requests: int) -> Report:
    report = Report(seed)
    rng = random.Random(seed)
    client = Client(edge)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and report.requests < max_requests:
            number = report.requests
            kind = rng.choice(KINDS)
            request = fuzz_request(rng, kind)
            status, body = client.send(request)
            report.requests += 1
            report.by_kind[kind] += 1
            report.statuses[status] += 1
            report.kind_statuses[kind][status] += 1
            if status.startswith("5") or status.startswith("error"):
                report.server_errors.append(
                    {
                        "request": number,
                        "kind": kind,
                        "status": status,
                        "content_type": request.content_type,
                        "headers": {
                            k: v for k, v in request.headers.items() if k != "Authorization"
                        },
                        "token": request.token,
                        "body_bytes": len(request.body),
                        "answer": body[:120].decode(errors="replace"),
                    }
                )
            if number % 200 == 0 and not edge.alive():
                report.died_at = number
                break
    finally:
        client.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (60)")
    parser.add_argument("--seed", type=int, default=1, help="RNG seed (1)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="request budget")
    args = parser.parse_args(argv)

    # SIGTERM unwinds like Ctrl-C, so the collectors this run started are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    binary = build_collector()
    with (
        tempfile.TemporaryDirectory(prefix="fuzz-otlp-http-") as work,
        EdgeCollector(binary, Path(work), name="fuzz-edge") as edge,
    ):
        before = edge.memory()
        started = time.monotonic()
        report = fuzz(edge, args.seed, args.seconds, args.max_requests)
        elapsed = time.monotonic() - started
        alive = edge.alive()
        after = edge.memory() if alive else before
        collector_view: dict[str, float] = {}
        good_data = False
        if alive:
            for code in sorted({s for s in report.statuses if s.isdigit()}):
                collector_view[code] = edge.metric_total(
                    "http_server_request_duration_count", http_response_status_code=code
                )
            marker = f"after-fuzz-{secrets.token_hex(4)}"
            answer = edge.post(HTTP_PATHS["traces"], request_for("traces", "client", marker))
            try:
                good_data = answer.status == 200 and bool(
                    poll_until(lambda: edge.backend_lines(marker), timeout=30, what="good data")
                )
            except TimeoutError:
                good_data = False

    rate = report.requests / max(elapsed, 1e-9)
    print(f"fuzz_otlp_http: seed {report.seed}, {report.requests} requests in {elapsed:.1f}s "
          f"({rate:.0f}/s) against base + secure-edge overlay")  # fmt: skip
    print(f"{'mutation kind':<16} {'requests':>8}  status codes")
    for kind in KINDS:
        codes = ", ".join(f"{c} x{n}" for c, n in sorted(report.kind_statuses[kind].items()))
        print(f"{kind:<16} {report.by_kind[kind]:>8}  {codes}")
    print("status codes (client):", dict(sorted(report.statuses.items())))
    print("status codes (collector's http_server_request_duration_count):", collector_view)
    print(f"5xx / transport errors: {len(report.server_errors)}")
    groups: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)
    for error in report.server_errors:
        key = (str(error["status"]), str(error["content_type"]), str(error["answer"]))
        groups[key].append(error)
    for (status, content_type, reply), errors in sorted(groups.items(), key=lambda g: -len(g[1])):
        kinds = Counter(str(e["kind"]) for e in errors)
        print(f"  {status} x{len(errors)} content-type {content_type!r} answer {reply!r}")
        print(f"    kinds {dict(kinds)}; first: request {errors[0]['request']} (seed {args.seed})")
    print(
        f"collector alive: {alive}"
        + (f" (died by request {report.died_at})" if report.died_at else "")
    )
    print(f"collector RSS: {before.rss / MIB:.1f} MiB before, {after.rss / MIB:.1f} MiB after, "
          f"peak {after.peak / MIB:.1f} MiB")  # fmt: skip
    print(f"good data after the run reached the backend: {good_data}")
    summary = {
        "seed": report.seed,
        "requests": report.requests,
        "seconds": round(elapsed, 1),
        "by_kind": dict(report.by_kind),
        "statuses": dict(report.statuses),
        "server_errors": len(report.server_errors),
        "alive": alive,
        "rss_before_mib": round(before.rss / MIB, 1),
        "rss_after_mib": round(after.rss / MIB, 1),
        "rss_peak_mib": round(after.peak / MIB, 1),
        "good_data_flows": good_data,
    }
    print(json.dumps(summary))
    return 0 if alive and good_data else 1


if __name__ == "__main__":
    sys.exit(main())
