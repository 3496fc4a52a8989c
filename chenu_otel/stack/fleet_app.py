"""The fleet's two services (`chenu_otel.stack.fleet`): ``frontend`` calls ``backend`` over HTTP.

    python -m chenu_otel.stack.fleet_app frontend --port 8001 --stats-port 9001 \
        --downstream http://127.0.0.1:8002
    python -m chenu_otel.stack.fleet_app backend --port 8002 --stats-port 9002

Both use chenu_otel (OTLP to ``OTEL_EXPORTER_OTLP_ENDPOINT``, their own agent).
``GET /checkout/{mode}`` on the frontend calls ``GET /work/{mode}`` on the backend through
httpx, which `instrument_app` traces: a CLIENT span, the W3C trace context injected:

- ``ok``: answers at once;
- ``slow``: the backend sleeps ``--slow-seconds`` first;
- ``error``: the backend answers 500 (error status on its server span, the frontend's client and
  server spans), and the frontend answers 500 too.

So a trace has four spans from two services: frontend SERVER + CLIENT, backend SERVER + an
INTERNAL ``compute`` span. Unlike the demo, the span count per trace is fixed and each
process counts what it ended, so the fleet's completeness can be checked span by span.
The frontend returns the trace id in ``X-Trace-Id``.

What each process emitted is counted independently of the pipeline under test and served as
JSON on ``--stats-port`` (a plain HTTP server outside the instrumented app, so reading it
creates no telemetry): ``{"served": <requests answered by the route>, "spans": {trace id: n}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import format_trace_id

import chenu_otel

__all__ = ["MODES", "EmittedSpans", "backend_app", "frontend_app", "main", "serve_stats"]

MODES = ("ok", "slow", "error")


class EmittedSpans(SpanProcessor):
    """Counts every span this process ends, by trace id, and the requests its route served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans_by_trace: Counter[str] = Counter()
        self.served = 0

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None:
            return
        with self._lock:
            self.spans_by_trace[format_trace_id(span.context.trace_id)] += 1

    def count_request(self) -> None:
        with self._lock:
            self.served += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"served": self.served, "spans": dict(self.spans_by_trace)}


def serve_stats(emitted: EmittedSpans, port: int) -> ThreadingHTTPServer:
    """Serve `emitted.snapshot()` as JSON on 127.0.0.1:`port` from a daemon thread."""

    class StatsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(emitted.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads JSON
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), StatsHandler)
    threading.Thread(target=server.serve_forever, name="stats", daemon=True).start()
    return server


def frontend_app(emitted: EmittedSpans, downstream: str) -> FastAPI:
    """The caller: one backend call per request (httpx: a CLIENT span, context propagated)."""
    app = FastAPI()
    client = httpx.AsyncClient(base_url=downstream, timeout=30)

    @app.get("/checkout/{mode}")
    async def checkout(mode: str) -> JSONResponse:
        trace_id = format_trace_id(trace.get_current_span().get_span_context().trace_id)
        response = await client.get(f"/work/{mode}")
        emitted.count_request()
        return JSONResponse(
            {"mode": mode, "backend": response.status_code},
            status_code=response.status_code,
            headers={"X-Trace-Id": trace_id},
        )

    return app


def backend_app(emitted: EmittedSpans, slow_seconds: float) -> FastAPI:
    """The callee: an INTERNAL span per request; slow sleeps, error answers 500."""
    app = FastAPI()
    tracer = trace.get_tracer(__name__)

    @app.get("/work/{mode}")
    async def work(mode: str) -> JSONResponse:
        with tracer.start_as_current_span("compute") as span:
            span.set_attribute("fleet.mode", mode)
            if mode == "slow":
                await asyncio.sleep(slow_seconds)
        emitted.count_request()
        status = 500 if mode == "error" else 200
        return JSONResponse({"mode": mode}, status_code=status)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve one of the two roles until stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=["frontend", "backend"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats-port", type=int, required=True)
    parser.add_argument("--downstream", default="", help="backend base URL (frontend only)")
    parser.add_argument("--slow-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    emitted = EmittedSpans()
    chenu_otel.configure(service_name=f"fleet-{args.role}", span_processors=[emitted])
    if args.role == "frontend":
        app = frontend_app(emitted, args.downstream)
    else:
        app = backend_app(emitted, args.slow_seconds)
    chenu_otel.instrument_app(app)
    serve_stats(emitted, args.stats_port)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
