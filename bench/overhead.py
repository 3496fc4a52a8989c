"""Per-request overhead of HTTP telemetry, in-process ASGI calls, one process per variant.

    .venv/bin/python bench/overhead.py [--requests 4000]

Variants (each in its own interpreter, all exporting OTLP/gRPC to one loopback sink):
  bare   FastAPI, no telemetry
  stock  FastAPIInstrumentor.instrument_app() with SDK defaults
  floor  the practical floor: a minimal pure-ASGI middleware making one span + one histogram
         record + one OTel log record that carry the same attributes chenu-otel exports
         (semconv HTTP span/metric attributes, request id, the access line's key-values)
  floor_bare  the same three calls with no attributes at all (shown for reference: it measures
         what the payload costs to encode and export, not what chenu-otel adds)
  chenu  chenu-otel full: instrument_app() (server span, HTTP metrics with exemplars,
         active requests) + one structlog access line (JSON to stdout, here /dev/null)
  chenu_nolog  the same without the access log line (splits the logging cost out)
The figure is the process's CPU time per request (all threads, so the SDK's export threads
encoding and sending OTLP count too; the batch processors are flushed inside the measured
window), best of --rounds within a process and of --repeat processes run interleaved. CPU time
rather than wall time keeps the figures steadier on a busy machine. Prints µs/request and µs
added over bare, and the ratios chenu/floor (target <= 1.25) and stock/chenu (target >= 2).

    .venv/bin/python bench/overhead.py --baseline ../chenu-otel-at-some-commit

compares this checkout's chenu_otel with another checkout's (e.g. a `git worktree add` of an
earlier commit): every variant runs under both, interleaved, and a second table shows both
columns and the ratio this/baseline of the CPU added over bare. Each child reports which
chenu_otel it imported. A benchmark, not a test: it never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VARIANTS = ("bare", "stock", "floor", "floor_bare", "chenu", "chenu_nolog")


def build_app(variant: str) -> Any:
    from fastapi import FastAPI

    app = (
        FastAPI(
            telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
        )
        if variant != "stock"
        else FastAPI()
    )

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    if variant == "bare":
        return app
    import chenu_otel

    chenu_otel.configure(service_name=f"bench-{variant}")
    if variant == "stock":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
    elif variant == "floor":
        app.add_middleware(FloorMiddleware)
    elif variant == "floor_bare":
        app.add_middleware(BareFloorMiddleware)
    else:
        from chenu_otel.instrumentation import instrument_app
        from chenu_otel.logging import setup_logging

        setup_logging(level="INFO", format="json", stream=open(os.devnull, "w"))  # noqa: SIM115
        instrument_app(app, access_log=variant == "chenu")
    return app


class BareFloorMiddleware:
    """One span, one histogram record, one OTel log record, no attributes."""

    def __init__(self, app: Any) -> None:
        from opentelemetry import _logs, metrics, trace

        self.app = app
        self.tracer = trace.get_tracer("floor")
        self.histogram = metrics.get_meter("floor").create_histogram(
            "http.server.request.duration", unit="s"
        )
        self.logger = _logs.get_logger("floor")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind

        start = time.perf_counter()
        with self.tracer.start_as_current_span("GET", kind=SpanKind.SERVER):
            await self.app(scope, receive, send)
            self.histogram.record(time.perf_counter() - start)
            self.logger.emit(body="http_request")


class FloorMiddleware(BareFloorMiddleware):
    """The practical floor: the same span, metric point and log record chenu-otel exports per
    request, written with the bare OTel API and nothing else."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        import uuid

        from opentelemetry.trace import SpanKind

        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        status = 0

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        attributes = {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "url.scheme": scope["scheme"],
            "network.protocol.version": scope["http_version"],
            "chenu.request.id": request_id,
            "client.address": scope["client"][0],
        }
        with self.tracer.start_as_current_span(
            "GET", kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            await self.app(scope, receive, send_status)
            route = scope["route"].path
            span.update_name(f"GET {route}")
            span.set_attributes({"http.route": route, "http.response.status_code": status})
            duration = time.perf_counter() - start
            self.histogram.record(
                duration,
                {
                    "http.request.method": scope["method"],
                    "http.response.status_code": status,
                    "url.scheme": scope["scheme"],
                    "network.protocol.version": scope["http_version"],
                    "http.route": route,
                },
            )
            self.logger.emit(
                body="http_request",
                attributes={
                    "request_id": request_id,
                    "http_method": scope["method"],
                    "http_route": route,
                    "http_path": scope["path"],
                    "status_code": status,
                    "duration_ms": round(duration * 1000.0, 3),
                },
            )


def asgi_scope(i: int) -> dict[str, Any]:
    """The HTTP scope of request `i` (GET /items/{i} on loopback), as a server would pass it;
    bench/peers.py drives its in-process variants with the same one."""
    path = f"/items/{i}"
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"bench")],
    }


async def drive(app: Any, total: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    def flush() -> None:
        from chenu_otel import current_pipeline

        pipeline = current_pipeline()
        if pipeline is not None:
            pipeline.force_flush(30_000)

    for i in range(300):  # warm-up
        await app(asgi_scope(i), receive, send)
    flush()
    cpu_start = time.process_time()
    for i in range(total):
        await app(asgi_scope(i), receive, send)
    # Export work of these requests happens in the SDK's threads: flush so it is counted too.
    flush()
    return (time.process_time() - cpu_start) / total * 1e6


def child(variant: str, total: int, rounds: int) -> None:
    app = build_app(variant)
    best = min(asyncio.run(drive(app, total)) for _ in range(rounds))
    import chenu_otel

    package = chenu_otel.__file__
    print(json.dumps({"variant": variant, "us_per_request": best, "package": package}))
    if variant != "bare":
        import chenu_otel

        chenu_otel.shutdown(5_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved runs of all variants; best kept"
    )
    parser.add_argument("--variant", choices=VARIANTS)
    parser.add_argument(
        "--baseline", type=Path, help="another checkout to compare with, run interleaved"
    )
    parser.add_argument(
        "--variants", help="comma-separated subset to run (default: all; bare is needed)"
    )
    args = parser.parse_args()
    if args.variant:
        child(args.variant, args.requests, args.rounds)
        return

    from chenu_otel.testing import OtlpSink

    trees = {"this": Path(__file__).resolve().parents[1]}
    if args.baseline is not None:
        trees["baseline"] = args.baseline.resolve()
    results: dict[str, dict[str, float]] = {tree: {} for tree in trees}
    packages: dict[str, set[str]] = {tree: set() for tree in trees}
    with OtlpSink() as sink:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
        variants = args.variants.split(",") if args.variants else list(VARIANTS)
        for repeat in range(args.repeat):
            for variant in variants:
                # Alternate which tree goes first, so neither gains from running second.
                order = list(trees.items())[:: 1 if repeat % 2 == 0 else -1]
                for tree, root in order:
                    figure, package = run_child(variant, args, {**env, "PYTHONPATH": str(root)})
                    best = results[tree]
                    best[variant] = min(figure, best.get(variant, figure))
                    packages[tree].add(package)
        received = len(sink.spans())
    for tree, imported in packages.items():
        print(f"{tree}: chenu_otel from {', '.join(sorted(imported))}")
    report(results["this"])
    if "baseline" in results:
        compare(results["this"], results["baseline"])
    print(f"spans received by the OTLP sink: {received}")


def run_child(variant: str, args: argparse.Namespace, env: dict[str, str]) -> tuple[float, str]:
    """One variant in a fresh interpreter: (CPU time per request, the chenu_otel it imported)."""
    out = subprocess.run(
        [sys.executable, __file__, "--variant", variant, "--requests", str(args.requests),
         "--rounds", str(args.rounds)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = [ln for ln in out.stdout.splitlines() if ln.startswith('{"variant"')][-1]
    answer = json.loads(line)
    return float(answer["us_per_request"]), str(answer["package"])


def report(results: dict[str, float]) -> None:
    bare = results["bare"]
    print(f"{'variant':12} {'us/req':>9} {'added':>9}")
    for v in results:
        print(f"{v:12} {results[v]:9.1f} {results[v] - bare:9.1f}")
    if set(results) != set(VARIANTS):
        return
    added = {v: results[v] - bare for v in VARIANTS}
    print(f"chenu/floor (added) = {added['chenu'] / added['floor']:.2f}  (target <= 1.25)")
    print(f"stock/chenu (added) = {added['stock'] / added['chenu']:.2f}  (target >= 2)")
    nolog = added["chenu_nolog"]
    print(f"chenu without access log / floor = {nolog / added['floor']:.2f}")
    print(f"chenu/floor_bare (added) = {added['chenu'] / added['floor_bare']:.2f}  (reference)")


def compare(this: dict[str, float], baseline: dict[str, float]) -> None:
    """This checkout against the baseline, variant by variant (added CPU over each one's bare)."""
    print(f"\n{'variant':12} {'this us/req':>12} {'baseline':>9} {'this/baseline (added)':>22}")
    for v in this:
        added_this, added_base = this[v] - this["bare"], baseline[v] - baseline["bare"]
        ratio = f"{added_this / added_base:.2f}" if v != "bare" and added_base > 0 else "-"
        print(f"{v:12} {this[v]:12.1f} {baseline[v]:9.1f} {ratio:>22}")


if __name__ == "__main__":
    main()
