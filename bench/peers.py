"""chenu-otel against its peers: CPU per request in process, and throughput and latency under
uvicorn, every variant in its own interpreter, all OTLP going to one loopback receiver.

Set-up (once; the peers live in their own virtualenv outside the clone, so their plugins —
logfire registers pytest and pydantic plugins — never reach the project's .venv):

    apt-get install -y wrk                       # the load generator (Debian)
    python3 bench/peers.py --setup               # venv + pip install -c constraints '.[bench]'
    python3 bench/peers.py                       # the whole table (about 12 minutes on 2 cores)
    python3 bench/peers.py --profile chenu       # per-component profile of one variant

The app: one FastAPI route whose handler writes one structured log line through stdlib
``logging`` (JSON to /dev/null in every variant, bare included). Variants:

    bare                FastAPI, no telemetry
    chenu               chenu-otel defaults: instrument_app (server span, HTTP metrics with
                        exemplars, active requests, access log line); stdlib logging through
                        its chain (JSON line + OTel log record)
    chenu_official      the same with CHENU_OTEL_OTLP_ENCODER=official (the SDK exporters'
                        own encoding instead of chenu_otel.otlp_wire, the default)
    chenu_access_otel   chenu with CHENU_OTEL_ACCESS_LOG=otel (access line as an OTel log
                        record only, no stdout JSON line); likewise chenu_access_stdout (the
                        stdout line only) and chenu_access_none (neither: the span alone
                        carries the access data): what each access-log output costs
    floor               the OTel SDK floor for chenu's payload: chenu_otel.configure() (its
                        providers and encoder) under bench/overhead.py's FloorMiddleware, one
                        span, one histogram point and one access log record written with the
                        bare OTel API, plus the SDK's LoggingHandler for the route's log line:
                        what any SDK-based instrumentation exporting the same data pays
    native_lean         FastAPI's native telemetry, operation spans off (SDK providers + the
                        SDK's LoggingHandler for the log line)
    native              FastAPI's native telemetry, defaults
    contrib             opentelemetry-instrumentation-fastapi's FastAPIInstrumentor, defaults
    logfire             logfire.instrument_fastapi + LogfireLoggingHandler, OTLP to loopback
    pfi                 prometheus-fastapi-instrumentator (metrics only, nothing exported)
    starlette_exporter  starlette-exporter (metrics only, nothing exported)

Every OTel variant exports OTLP/HTTP protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``)
to a receiver in this process, which counts what arrives. A census run per variant (1000
requests, flushed every 100 so nothing can be dropped) gives what one request exports: spans,
log records, bytes; metric points, exemplars and bytes per metric export. Against it, the
spans and log records that never arrived in (A) and (B) are reported as lost.

(A) in process: the ASGI app is called directly; the figure is the process CPU time per
request (all threads, so export threads count; batch processors are flushed inside the
window), best of --rounds in a process and of --repeat processes run interleaved.
(B) uvicorn, one worker on 127.0.0.1, ``wrk -t1 -c{connections} -d{seconds}s --latency``
after a short warm-up: requests/s, p50 and p99; the median of --repeat interleaved runs, with
the spread. Ratios are against bare measured in the same run. A benchmark, not a test: it
never asserts; anything else running shares the CPU, so run it on a quiet machine
and read the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import importlib
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# bench/ is the script's directory, so its sibling is importable; it imports only the stdlib.
from overhead import FloorMiddleware, asgi_scope

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CHENU_OTEL_CACHE", Path.home() / ".cache" / "chenu-otel"))
BENCH_VENV = CACHE / "bench-venv"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
LOOPBACK = "127.0.0.1"

VARIANTS: dict[str, str] = {
    "bare": "FastAPI, no telemetry",
    "chenu": "chenu-otel (span + HTTP metrics w/ exemplars + access log)",
    "chenu_official": "chenu-otel with the official OTLP encoder",
    "chenu_access_otel": "chenu-otel, access line as OTel log record only",
    "chenu_access_stdout": "chenu-otel, access line on stdout only",
    "chenu_access_none": "chenu-otel, no access line (the span carries it)",
    "floor": "OTel SDK floor for chenu's payload (bare API calls, chenu's encoder)",
    "native_lean": "FastAPI native telemetry, operation spans off",
    "native": "FastAPI native telemetry, defaults",
    "contrib": "contrib FastAPIInstrumentor",
    "logfire": "logfire.instrument_fastapi",
    "pfi": "prometheus-fastapi-instrumentator (metrics only, no export)",
    "starlette_exporter": "starlette-exporter (metrics only, no export)",
}
#: chenu-otel variants and the environment that makes each one.
CHENU_VARIANTS: dict[str, dict[str, str]] = {
    "chenu": {},
    "chenu_official": {"CHENU_OTEL_OTLP_ENCODER": "official"},
    "chenu_access_otel": {"CHENU_OTEL_ACCESS_LOG": "otel"},
    "chenu_access_stdout": {"CHENU_OTEL_ACCESS_LOG": "stdout"},
    "chenu_access_none": {"CHENU_OTEL_ACCESS_LOG": "none"},
}


# --- the app, in the child interpreter ------------------------------------------------------


def _stdlib_logging(stream: Any) -> None:
    """One JSON line per record on `stream`: what every variant's route writes."""

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps(
                {
                    "event": record.getMessage(),
                    "level": record.levelname.lower(),
                    "logger": record.name,
                    "item_id": getattr(record, "item_id", None),
                }
            )

    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _sdk_pipeline(service: str) -> None:
    """The plain SDK set up as its docs show: batch processors, periodic reader, OTLP/HTTP,
    and the SDK's LoggingHandler bridging stdlib logging into OTel log records."""
    from opentelemetry import _logs, metrics, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    _logs.set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))


def _chenu(app: Any, variant: str, stream: Any) -> None:
    import chenu_otel
    from chenu_otel.logging import setup_logging

    setup_logging(level="INFO", format="json", stream=stream)
    chenu_otel.configure(service_name=f"bench-{variant}")
    chenu_otel.instrument_app(app)


def _floor(app: Any) -> None:
    from opentelemetry import _logs
    from opentelemetry.sdk._logs import LoggingHandler
    from structlog.stdlib import ProcessorFormatter

    import chenu_otel

    chenu_otel.configure(service_name="bench-floor")
    # configure() also routes stdlib logging through chenu-otel's chain (a structlog
    # ProcessorFormatter); the floor takes the SDK's plain handler instead.
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler.formatter, ProcessorFormatter):
            root.removeHandler(handler)
    root.addHandler(LoggingHandler(logger_provider=_logs.get_logger_provider()))
    app.add_middleware(FloorMiddleware)


def build_app(variant: str) -> Any:
    """The bench app with `variant`'s telemetry (providers first: some read them at build)."""
    from fastapi import FastAPI

    stream = open(os.devnull, "w")  # noqa: SIM115  (lives as long as the process)
    if variant not in CHENU_VARIANTS:
        _stdlib_logging(stream)
    if variant in ("native", "native_lean", "contrib"):
        _sdk_pipeline(f"bench-{variant}")
    if variant == "logfire":
        logfire = importlib.import_module("logfire")
        logfire.configure(send_to_logfire=False, service_name="bench-logfire", console=False)
        logging.getLogger().addHandler(logfire.LogfireLoggingHandler())
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    telemetry: dict[str, Any] = {
        "native": {},
        "native_lean": {"operation_spans": False},
    }.get(variant, off)
    app = FastAPI(telemetry=telemetry)  # type: ignore[arg-type]
    log = logging.getLogger("app")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        log.info("item_read", extra={"item_id": item_id})
        return {"item": item_id}

    if variant in CHENU_VARIANTS:
        _chenu(app, variant, stream)
    elif variant == "floor":
        _floor(app)
    elif variant == "contrib":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
    elif variant == "logfire":
        importlib.import_module("logfire").instrument_fastapi(app)
    elif variant == "pfi":
        importlib.import_module("prometheus_fastapi_instrumentator").Instrumentator().instrument(
            app
        )
    elif variant == "starlette_exporter":
        app.add_middleware(importlib.import_module("starlette_exporter").PrometheusMiddleware)
    return app


def flush_all() -> None:
    """Export everything buffered, in this thread (the SDK's force_flush exports inline)."""
    from opentelemetry import _logs, metrics, trace

    providers = [trace.get_tracer_provider(), _logs.get_logger_provider()]
    providers.append(metrics.get_meter_provider())
    if "chenu_otel" in sys.modules:
        # chenu-otel's globals are proxies and its Pipeline.force_flush runs in a helper
        # thread (to bound it): flush the providers it built, here.
        pipeline = sys.modules["chenu_otel"].current_pipeline()
        if pipeline is not None:
            providers = [
                pipeline.tracer_provider,
                pipeline.logger_provider,
                pipeline.meter_provider,
            ]
    for provider in providers:
        flush = getattr(provider, "force_flush", None)
        if flush is not None:
            flush(30_000)
    if "logfire" in sys.modules:
        sys.modules["logfire"].force_flush()


async def _drive(app: Any, first: int, count: int) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    for i in range(first, first + count):
        await app(asgi_scope(i), receive, send)


def run_in_process(variant: str, requests: int, rounds: int) -> None:
    """Child of (A): prints the best CPU µs/request over `rounds` and the request count."""
    app = build_app(variant)
    loop = asyncio.new_event_loop()
    # The app's lifespan does not run here; the first requests warm every path up.
    loop.run_until_complete(_drive(app, 0, 300))
    flush_all()
    best = float("inf")
    done = 300
    for _ in range(rounds):
        start = time.process_time()
        loop.run_until_complete(_drive(app, done, requests))
        flush_all()
        best = min(best, (time.process_time() - start) / requests * 1e6)
        done += requests
    print(json.dumps({"variant": variant, "us_per_request": best, "requests": done}))
    sys.stdout.flush()


def run_census(variant: str, requests: int, every: int) -> None:
    """Child of the census: `requests` requests, flushed every `every` so no bounded queue
    can overflow; what the receiver gets is exactly what one request exports."""
    app = build_app(variant)
    loop = asyncio.new_event_loop()
    for first in range(0, requests, every):
        loop.run_until_complete(_drive(app, first, every))
        flush_all()
    print(json.dumps({"variant": variant, "requests": requests}))


def serve(variant: str, port: int) -> None:
    """Child of (B): uvicorn, one worker, no access log of its own."""
    import uvicorn

    uvicorn.run(build_app(variant), host=LOOPBACK, port=port, access_log=False, log_level="warning")


# --- the OTLP receiver, in the parent -------------------------------------------------------


@dataclass
class Census:
    """What one child exported, counted at the receiver."""

    spans: int = 0
    log_records: int = 0
    metric_exports: int = 0
    metric_points: int = 0
    exemplars: int = 0
    body_bytes: int = 0
    metric_bytes: int = 0
    requests: list[tuple[str, bytes]] = field(default_factory=list)

    def count(self) -> None:
        """Decode what arrived (after the run, so decoding never competes with the load)."""
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        for path, body in self.requests:
            if path.endswith("/v1/metrics"):
                self.metric_bytes += len(body)
            else:
                self.body_bytes += len(body)
            if path.endswith("/v1/traces"):
                traces = ExportTraceServiceRequest.FromString(body)
                for rs in traces.resource_spans:
                    for ss in rs.scope_spans:
                        self.spans += len(ss.spans)
            elif path.endswith("/v1/logs"):
                logs = ExportLogsServiceRequest.FromString(body)
                for rl in logs.resource_logs:
                    self.log_records += sum(len(sl.log_records) for sl in rl.scope_logs)
            elif path.endswith("/v1/metrics"):
                self.metric_exports += 1
                request = ExportMetricsServiceRequest.FromString(body)
                for rm in request.resource_metrics:
                    for sm in rm.scope_metrics:
                        for metric in sm.metrics:
                            kind = metric.WhichOneof("data")
                            points = getattr(metric, kind).data_points if kind else []
                            self.metric_points += len(points)
                            self.exemplars += sum(len(p.exemplars) for p in points)
        self.requests.clear()

    @property
    def items(self) -> int:
        """Spans and log records: what a bounded queue in the app can drop."""
        return self.spans + self.log_records


class Receiver:
    """OTLP/HTTP on 127.0.0.1: answers 200 at once and keeps the bodies for `Census.count`."""

    def __init__(self) -> None:
        self.census = Census()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    body = gzip.decompress(body)
                receiver.census.requests.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.endpoint = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> Census:
        self.server.shutdown()
        self.server.server_close()
        self.census.count()
        return self.census


def child_env(variant: str, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LOGFIRE_"))}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
            "OTEL_METRIC_EXPORT_INTERVAL": "10000",
        }
    )
    env.update(CHENU_VARIANTS.get(variant, {}))
    if variant != "logfire":
        # logfire registers a pydantic plugin; only its own variant may load it.
        env["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    return env


# --- (A) and (B), in the parent ---------------------------------------------------------------


@dataclass
class Figures:
    cpu_us: float = float("inf")
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    census: Census | None = None
    census_requests: int = 0
    # Spans + log records expected (census per request x requests) and received, per mode.
    expected: dict[str, float] = field(default_factory=lambda: {"A": 0.0, "B": 0.0})
    received: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0})

    def items_per_request(self) -> float:
        return self.census.items / self.census_requests if self.census else 0.0

    def lost(self, mode: str) -> str:
        """Share of the spans and log records the app produced that never arrived."""
        expected = self.expected[mode]
        if not expected:
            return "-"
        return f"{max(0.0, 1 - self.received[mode] / expected):.0%}"


def run_child(variant: str, *arguments: str, prefix: tuple[str, ...] = ()) -> tuple[Any, Census]:
    """Run this file with `arguments` in a fresh interpreter of the bench virtualenv, its
    OTLP going to a fresh receiver; its last JSON line and what the receiver counted."""
    receiver = Receiver()
    try:
        out = subprocess.run(
            [*prefix, str(BENCH_PYTHON), __file__, *arguments],
            env=child_env(variant, receiver.endpoint),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        census = receiver.close()
    if out.returncode != 0:
        raise SystemExit(f"{variant} {arguments[0]} failed:\n{out.stderr[-3000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith('{"variant"')][-1]
    return json.loads(line), census


def measure_census(variant: str, figures: Figures, requests: int = 1000) -> None:
    _, census = run_child(variant, "--census", variant, "--requests", str(requests))
    figures.census, figures.census_requests = census, requests


def measure_in_process(variant: str, requests: int, rounds: int, figures: Figures) -> None:
    result, census = run_child(
        variant, "--child", variant, "--requests", str(requests), "--rounds", str(rounds)
    )
    figures.cpu_us = min(figures.cpu_us, result["us_per_request"])
    figures.expected["A"] += figures.items_per_request() * result["requests"]
    figures.received["A"] += census.items


_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in")
_WRK_PCT = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not answer {url} within {timeout}s")


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float, int]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  wrk reported errors:\n{out}", file=sys.stderr)
    rps = float(_WRK_RPS.search(out).group(1))  # type: ignore[union-attr]
    pct = {p: float(v) * _UNIT_MS[u] for p, v, u in _WRK_PCT.findall(out)}
    total = int(_WRK_TOTAL.search(out).group(1))  # type: ignore[union-attr]
    return rps, pct["50"], pct["99"], total


def measure_uvicorn(variant: str, seconds: int, connections: int, figures: Figures) -> None:
    from chenu_otel.stack.processes import free_port  # the driver only, never a served app

    port = free_port()
    receiver = Receiver()
    process = subprocess.Popen(
        [str(BENCH_PYTHON), __file__, "--serve", variant, "--port", str(port)],
        env=child_env(variant, receiver.endpoint),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://{LOOPBACK}:{port}/items/7"
    try:
        _wait_ready(url, process)
        _, _, _, warm = wrk(url, 2, connections)
        rps, p50, p99, total = wrk(url, seconds, connections)
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn shuts down; the SDK flushes at exit
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        census = receiver.close()
    figures.rps.append(rps)
    figures.p50_ms.append(p50)
    figures.p99_ms.append(p99)
    # Served: both wrk runs and the readiness probe (requests in flight when wrk stops are
    # served too but not counted, so a small surplus can arrive; it is never counted as lost).
    figures.expected["B"] += figures.items_per_request() * (warm + total + 1)
    figures.received["B"] += census.items


def _spread(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}" if values else "-"


def print_table(results: dict[str, Figures], args: argparse.Namespace) -> None:
    bare = results["bare"]
    bare_rps = statistics.median(bare.rps) if bare.rps else float("nan")
    bare_p50 = statistics.median(bare.p50_ms) if bare.p50_ms else float("nan")
    bare_p99 = statistics.median(bare.p99_ms) if bare.p99_ms else float("nan")
    print(
        f"\n(A) in process, {args.requests} requests x {args.rounds} rounds, best of "
        f"{args.repeat} interleaved processes; (B) uvicorn + wrk -c{args.connections} "
        f"-d{args.seconds}s, median of {args.repeat} (spread of req/s in brackets)"
    )
    print(
        f"{'variant':19} {'µs/req':>7} {'added':>6} {'req/s':>6} {'(spread)':>11} "
        f"{'vs bare':>7} {'p50 ms':>6} {'p99 ms':>6} {'p50x':>5} {'p99x':>5} "
        f"{'spans':>5} {'logs':>5} {'B/req':>6} {'pts/exp':>7} {'ex/exp':>6} {'mB/exp':>6} "
        f"{'lostA':>5} {'lostB':>5}"
    )
    for name, figures in results.items():
        added = figures.cpu_us - bare.cpu_us
        rps = statistics.median(figures.rps) if figures.rps else float("nan")
        p50 = statistics.median(figures.p50_ms) if figures.p50_ms else float("nan")
        p99 = statistics.median(figures.p99_ms) if figures.p99_ms else float("nan")
        census = figures.census or Census()
        per = max(figures.census_requests, 1)
        exports = max(census.metric_exports, 1)
        print(
            f"{name:19} {figures.cpu_us:7.0f} {added:6.0f} {rps:6.0f} "
            f"{'(' + _spread(figures.rps) + ')':>11} {rps / bare_rps:6.2f}x "
            f"{p50:6.2f} {p99:6.2f} {p50 / bare_p50:5.1f} {p99 / bare_p99:5.1f} "
            f"{census.spans / per:5.2f} {census.log_records / per:5.2f} "
            f"{census.body_bytes / per:6.0f} {census.metric_points / exports:7.1f} "
            f"{census.exemplars / exports:6.1f} {census.metric_bytes / exports:6.0f} "
            f"{figures.lost('A'):>5} {figures.lost('B'):>5}"
        )
    print(
        "spans, logs, B/req (trace + log bytes): exported per request, from a census run that "
        "flushes every 100 requests; pts/exp, ex/exp, mB/exp: metric points, exemplars, bytes "
        "per metric export; lostA/lostB: spans + log records the app produced in (A)/(B) that "
        "never reached the receiver (the SDK's bounded queues drop when export falls behind)"
    )
    lean = results.get("native_lean")
    floor = results.get("floor")
    if floor is not None and lean is not None:
        print(
            f"bound: the SDK floor for chenu's payload adds "
            f"{(floor.cpu_us - bare.cpu_us) / (lean.cpu_us - bare.cpu_us):.2f}x the CPU "
            "native_lean adds: an SDK-based chenu-otel cannot go below that ratio"
        )
    for name in CHENU_VARIANTS:
        chenu = results.get(name)
        if chenu is None or lean is None:
            continue
        ratio = (chenu.cpu_us - bare.cpu_us) / (lean.cpu_us - bare.cpu_us)
        rps = statistics.median(chenu.rps) / bare_rps if chenu.rps else float("nan")
        p99 = statistics.median(chenu.p99_ms) / bare_p99 if chenu.p99_ms else float("nan")
        p50 = statistics.median(chenu.p50_ms) / bare_p50 if chenu.p50_ms else float("nan")
        print(
            f"goal check {name}: CPU added / native_lean's = {ratio:.2f} (goal <= 0.5); "
            f"req/s {rps:.2f}x bare (goal >= 0.6); p50 {p50:.1f}x (<= 1.5), p99 {p99:.1f}x (<= 3)"
        )


# --- profile ----------------------------------------------------------------------------------

# Component of a function, by where its code lives (first match wins).
COMPONENTS: list[tuple[str, str]] = [
    ("chenu_otel/otlp_wire", "OTLP encoding (wire)"),
    ("opentelemetry/exporter/otlp/proto/common", "OTLP encoding (official, objects)"),
    ("google/protobuf", "OTLP encoding (official, objects)"),
    ("opentelemetry/proto", "OTLP encoding (official, objects)"),
    ("opentelemetry/exporter", "OTLP export (HTTP client)"),
    ("requests/", "OTLP export (HTTP client)"),
    ("urllib3/", "OTLP export (HTTP client)"),
    ("http/client", "OTLP export (HTTP client)"),
    ("socket.py", "OTLP export (HTTP client)"),
    ("ssl.py", "OTLP export (HTTP client)"),
    ("opentelemetry/sdk/_shared_internal", "SDK batch processors"),
    ("opentelemetry/sdk/trace/export", "SDK batch processors"),
    ("opentelemetry/sdk/_logs/_internal/export", "SDK batch processors"),
    ("opentelemetry/attributes", "SDK attribute validation"),
    ("opentelemetry/sdk/trace", "SDK spans"),
    ("opentelemetry/trace", "SDK spans"),
    ("opentelemetry/context", "SDK spans"),
    ("opentelemetry/sdk/metrics", "SDK metrics"),
    ("opentelemetry/metrics", "SDK metrics"),
    ("opentelemetry/sdk/_logs", "SDK logs"),
    ("opentelemetry/_logs", "SDK logs"),
    ("opentelemetry/sdk/resources", "SDK resource"),
    ("opentelemetry/", "SDK other"),
    ("chenu_otel/scrubbing", "chenu scrubbing"),
    ("chenu_otel/logging", "chenu logging chain"),
    ("structlog/", "chenu logging chain"),
    ("orjson", "chenu logging chain"),
    ("chenu_otel/middleware", "chenu middleware"),
    ("chenu_otel/", "chenu other"),
    ("logging/", "stdlib logging"),
    ("json/", "stdlib logging"),
    ("fastapi/", "FastAPI + Starlette (the app)"),
    ("starlette/", "FastAPI + Starlette (the app)"),
    ("pydantic", "FastAPI + Starlette (the app)"),
    ("asyncio/", "asyncio"),
    ("_collections_abc", "Mapping ABC methods (SDK attribute dicts)"),
    ("enum.py", "enum"),
    ("threading.py", "threading (locks)"),
]


def _component(filename: str) -> str:
    for needle, name in COMPONENTS:
        if needle in filename:
            return name
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C calls)"
    return "other"


def profile_child(variant: str, requests: int) -> None:
    """Child of --profile (run under py-spy): warm up, then `requests` requests and the
    flush that exports them; prints the CPU time per request measured without sampling."""
    app = build_app(variant)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_drive(app, 0, 300))
    flush_all()
    start = time.process_time()
    loop.run_until_complete(_drive(app, 300, requests))
    flush_all()
    cpu_us = (time.process_time() - start) / requests * 1e6
    print(json.dumps({"variant": variant, "us_per_request": cpu_us}))


_FRAME_FILE = re.compile(r"\((.*?)(?::\d+)?\)$")


def _sample_component(frames: list[str]) -> str:
    """The component of the innermost frame that belongs to one (a helper such as copy,
    dataclasses or typing counts for the code that called it)."""
    for frame in reversed(frames):
        match = _FRAME_FILE.search(frame)
        name = _component(match.group(1) if match else frame)
        if name not in ("other", "builtins (C calls)"):
            return name
    return "other"


def profile(variant: str, requests: int, rate: int) -> None:
    """Per-component share of the Python time (GIL held) of `variant`, all threads: py-spy
    samples the child `rate` times a second; each sample counts for the component of its
    innermost Python frame (C functions count for the Python code that called them). The
    main thread counts only while it serves requests or flushes; the SDK's export threads
    always. py-spy rather than cProfile: cProfile also times every C call, which inflates code
    made of many cheap C calls (the wire encoder) far more than code that builds protobuf
    objects in a few big C calls (the official encoder), and it does not see other threads."""
    py_spy = BENCH_VENV / "bin" / "py-spy"
    raw = CACHE / f"peers-profile-{variant}.txt"
    sampler = (str(py_spy), "record", "--gil", "--threads", "--full-filenames", "--format")
    result, census = run_child(
        variant,
        "--profile-child",
        variant,
        "--requests",
        str(requests),
        prefix=(*sampler, "raw", "--rate", str(rate), "--output", str(raw), "--"),
    )
    cpu_us = result["us_per_request"]
    totals: dict[str, int] = {}
    threads: dict[str, int] = {"request thread": 0, "export threads": 0}
    for entry in raw.read_text().splitlines():
        stack, _, count_text = entry.rpartition(" ")
        frames = stack.split(";")
        # frames[0] names the thread; the request thread's outermost frame is this file.
        in_main = len(frames) > 1 and "peers.py" in frames[1]
        if in_main and not any(f.startswith(("_drive ", "flush_all ")) for f in frames):
            continue  # imports, app set-up, warm-up
        if len(frames) < 2 or any("importlib._bootstrap" in f for f in frames):
            continue  # no Python frame (interpreter internals), or a one-time import
        name = _sample_component(frames[1:])
        totals[name] = totals.get(name, 0) + int(count_text)
        threads["request thread" if in_main else "export threads"] += int(count_text)
    whole = sum(totals.values())
    # Sampling pauses the process and stretches it; shares hold, so µs are shares of the
    # CPU time per request measured without sampling.
    print(
        f"profile of {variant}: {requests} requests + the flush that exports them; "
        f"{cpu_us:.0f} µs CPU/request (whole process, unsampled); py-spy --gil at {rate} Hz: "
        f"{whole} samples; µs below = share x {cpu_us:.0f}"
    )
    print(f"{'component':42} {'µs/req':>7} {'share':>6}")
    for name, samples in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{name:42} {samples / whole * cpu_us:7.1f} {samples / whole:6.1%}")
    export = sum(n for c, n in totals.items() if c.startswith(("OTLP", "SDK batch")))
    print(
        f"{'export (encoding + HTTP client + batching)':42} {export / whole * cpu_us:7.1f} "
        f"{export / whole:6.1%}"
    )
    for thread, samples in threads.items():
        print(f"{thread:42} {samples / whole * cpu_us:7.1f} {samples / whole:6.1%}")
    print(f"received: {census.spans} spans, {census.log_records} log records; raw: {raw}")


# --- set-up and entry point -----------------------------------------------------------------


def setup() -> None:
    """Create the bench virtualenv and install the project with its `bench` extra."""
    if not BENCH_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run(
        [
            str(BENCH_PYTHON),
            "-m",
            "pip",
            "install",
            "-qq",
            "-c",
            str(REPO_ROOT / "scripts" / "constraints.txt"),
            "-e",
            f"{REPO_ROOT}[bench]",
        ],
        check=True,
    )
    print(f"bench virtualenv ready: {BENCH_VENV}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the bench virtualenv")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="(B) wrk duration, <= 15")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--skip-uvicorn", action="store_true", help="only (A)")
    parser.add_argument("--profile", choices=VARIANTS, help="py-spy profile of one variant")
    parser.add_argument("--rate", type=int, default=500, help="--profile samples per second")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--census", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    if args.child:
        run_in_process(args.child, args.requests, args.rounds)
        return
    if args.census:
        run_census(args.census, args.requests, 100)
        return
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.profile_child:
        profile_child(args.profile_child, args.requests)
        return
    if not BENCH_PYTHON.exists():
        raise SystemExit("no bench virtualenv: run `python3 bench/peers.py --setup` first")
    if Path(sys.prefix).resolve() != BENCH_VENV.resolve():
        # The parent decodes OTLP too: run it in the bench virtualenv as well.
        os.execv(str(BENCH_PYTHON), [str(BENCH_PYTHON), __file__, *sys.argv[1:]])
    if args.profile:
        profile(args.profile, args.requests * 2, args.rate)
        return
    if args.seconds > 15:
        raise SystemExit("--seconds is at most 15")
    variants = [v for v in args.variants.split(",") if v]
    if "bare" not in variants:
        variants.insert(0, "bare")
    results = {name: Figures() for name in variants}
    started = time.time()
    for round_number in range(args.repeat):
        for name in variants:
            print(
                f"[{time.time() - started:5.0f}s] repeat {round_number + 1}: {name}",
                file=sys.stderr,
            )
            if round_number == 0:
                measure_census(name, results[name])
            measure_in_process(name, args.requests, args.rounds, results[name])
            if not args.skip_uvicorn:
                measure_uvicorn(name, args.seconds, args.connections, results[name])
    print(
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, "
        f"load average at the end {os.getloadavg()[0]:.2f}"
    )
    print_table(results, args)


if __name__ == "__main__":
    main()
