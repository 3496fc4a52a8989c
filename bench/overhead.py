"""Per-request overhead of HTTP telemetry, in-process ASGI calls, one process per variant.

    .venv/bin/python bench/overhead.py [--requests 4000]

Variants (each in its own interpreter, all exporting OTLP/gRPC to one loopback sink):
  bare   FastAPI, no telemetry
  stock  FastAPIInstrumentor.instrument_app() with SDK defaults
  floor  a minimal pure-ASGI middleware: one span + one histogram record + one OTel log record
  chenu  chenu-otel full: instrument_app() (server span, HTTP metrics with exemplars,
         active requests) + one structlog access line (JSON to stdout, here /dev/null)
  chenu_nolog  the same without the access log line (splits the logging cost out)
Prints µs/request and µs added over bare, and the ratios chenu/floor (target <= 1.25) and
stock/chenu (target >= 2). A benchmark, not a test: it never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

VARIANTS = ("bare", "stock", "floor", "chenu", "chenu_nolog")


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
    else:
        from chenu_otel.instrumentation import instrument_app
        from chenu_otel.logging import setup_logging

        setup_logging(level="INFO", format="json", stream=open(os.devnull, "w"))  # noqa: SIM115
        instrument_app(app, access_log=variant == "chenu")
    return app


class FloorMiddleware:
    """The practical floor: one span, one histogram record, one OTel log record."""

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
            self.histogram.record(time.perf_counter() - start, {"http.route": "/items/{item_id}"})
            self.logger.emit(body="http_request")


async def drive(app: Any, total: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    def scope(i: int) -> dict[str, Any]:
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

    for i in range(300):  # warm-up
        await app(scope(i), receive, send)
    start = time.perf_counter()
    for i in range(total):
        await app(scope(i), receive, send)
    return (time.perf_counter() - start) / total * 1e6


def child(variant: str, total: int, rounds: int) -> None:
    app = build_app(variant)
    best = min(asyncio.run(drive(app, total)) for _ in range(rounds))
    print(json.dumps({"variant": variant, "us_per_request": best}))
    if variant != "bare":
        import chenu_otel

        chenu_otel.shutdown(5_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS)
    args = parser.parse_args()
    if args.variant:
        child(args.variant, args.requests, args.rounds)
        return

    from chenu_otel.testing import OtlpSink

    results: dict[str, float] = {}
    with OtlpSink() as sink:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        }
        for variant in VARIANTS:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    variant,
                    "--requests",
                    str(args.requests),
                    "--rounds",
                    str(args.rounds),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            line = [ln for ln in out.stdout.splitlines() if ln.startswith('{"variant"')][-1]
            results[variant] = json.loads(line)["us_per_request"]
        received = len(sink.spans())
    bare = results["bare"]
    print(f"{'variant':8} {'us/req':>9} {'added':>9}")
    for v in VARIANTS:
        print(f"{v:8} {results[v]:9.1f} {results[v] - bare:9.1f}")
    added = {v: results[v] - bare for v in VARIANTS}
    print(f"chenu/floor (added) = {added['chenu'] / added['floor']:.2f}  (target <= 1.25)")
    print(f"stock/chenu (added) = {added['stock'] / added['chenu']:.2f}  (target >= 2)")
    nolog = added["chenu_nolog"]
    print(f"chenu without access log / floor = {nolog / added['floor']:.2f}")
    print(f"spans received by the OTLP sink: {received}")


if __name__ == "__main__":
    main()
