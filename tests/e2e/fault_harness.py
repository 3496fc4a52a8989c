"""The fault suite's moving parts: the app process, backends that can fail, and the accounting.

* `FaultApp` runs tests/e2e/fault_app.py (real chenu_otel, OTLP/gRPC to the collector): every
  request leaves one span, one log record and one counter increment, numbered from 1.
* Backends: `FileBackend` wraps a downstream chenu-otelcol writing OTLP JSON lines (the stand-in
  for Jaeger/Prometheus/Loki used by the other e2e tests); `ControlledOtlpBackend` is a small
  OTLP/HTTP server on loopback that accepts, answers 503 or 429 with Retry-After, or accepts
  the connection and never answers, as the test says.
* `Delivery` is what a backend received for one service: span and log record sequence numbers
  with how often each arrived, and the points of the app's cumulative counter.
* `CollectorWatch` samples the collector's own metrics (heap, RSS, refusals) on its metrics port.
* `Figures` compares the app's summary with a delivery and prints the line each case reports.

Two variables exist only to reproduce a regression: ``CHENU_FAULT_COLLECTOR_CONFIG`` (a config
file used instead of collector/otelcol.yaml) and ``CHENU_FAULT_COLLECTOR_BINARY`` (a collector
binary used instead of the built one). ``CHENU_FAULT_SEED`` changes the kill schedule.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from google.protobuf.message import Message  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.collector_fixtures import BASE_CONFIG, CollectorProcess, DownstreamCollector
from tests.support import LOOPBACK, REPO_ROOT, poll_until

FAULT_APP = REPO_ROOT / "tests" / "e2e" / "fault_app.py"
COUNTER_NAME = "chenu.fault.ticks"
#: The memory_limiter bound the suite runs the collector with (the config's default).
MEMORY_LIMIT_MIB = 400
MIB = 1024 * 1024


def collector_config() -> Path:
    return Path(os.environ.get("CHENU_FAULT_COLLECTOR_CONFIG", str(BASE_CONFIG)))


def kill_seed() -> int:
    return int(os.environ.get("CHENU_FAULT_SEED", "8"))


def sigkill(collector: CollectorProcess) -> None:
    """SIGKILL the collector process: no flush, no shutdown hook, memory gone."""
    assert collector.process is not None and collector.process.proc is not None
    proc = collector.process.proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


# --- what a backend received ---------------------------------------------------------------


@dataclass
class Delivery:
    """Data of one service received by a backend."""

    spans: Counter[int] = field(default_factory=Counter)
    logs: Counter[int] = field(default_factory=Counter)
    #: (time_unix_nano, value) of each point of the app's cumulative counter.
    counter_points: list[tuple[int, float]] = field(default_factory=list)

    def last_counter_value(self) -> float | None:
        """The counter's value a time-series backend shows: its point with the latest time."""
        return max(self.counter_points)[1] if self.counter_points else None

    def add_request(self, request: dict[str, Any], service: str) -> None:
        """Count one OTLP export request (OTLP JSON mapping, as files and MessageToDict give)."""
        for resource_spans in request.get("resourceSpans", []):
            if _service(resource_spans) == service:
                for scope in resource_spans.get("scopeSpans", []):
                    for span in scope.get("spans", []):
                        seq = _int_attribute(span, "fault.seq")
                        if span.get("name") == "fault-tick" and seq is not None:
                            self.spans[seq] += 1
        for resource_logs in request.get("resourceLogs", []):
            if _service(resource_logs) == service:
                for scope in resource_logs.get("scopeLogs", []):
                    for record in scope.get("logRecords", []):
                        seq = _int_attribute(record, "fault_seq")
                        if seq is not None:
                            self.logs[seq] += 1
        for resource_metrics in request.get("resourceMetrics", []):
            if _service(resource_metrics) == service:
                for scope in resource_metrics.get("scopeMetrics", []):
                    for metric in scope.get("metrics", []):
                        if metric.get("name") == COUNTER_NAME:
                            for point in metric.get("sum", {}).get("dataPoints", []):
                                value = point.get("asInt", point.get("asDouble", 0))
                                self.counter_points.append(
                                    (int(point.get("timeUnixNano", 0)), float(value))
                                )


def _service(resource_block: dict[str, Any]) -> str:
    for attribute in resource_block.get("resource", {}).get("attributes", []):
        if attribute.get("key") == "service.name":
            return str(attribute.get("value", {}).get("stringValue", ""))
    return ""


def _int_attribute(item: dict[str, Any], key: str) -> int | None:
    for attribute in item.get("attributes", []):
        if attribute.get("key") == key and "intValue" in attribute.get("value", {}):
            return int(attribute["value"]["intValue"])
    return None


def read_json_lines(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:  # the last line may be half-written while we read
                continue


# --- backends --------------------------------------------------------------------------------


class FileBackend:
    """A downstream chenu-otelcol standing in for Jaeger, Prometheus and Loki at once."""

    def __init__(self, binary: Path, work_dir: Path, name: str = "backend") -> None:
        # The routes Prometheus and Loki serve OTLP on, as the collector's backend env says.
        self.downstream = DownstreamCollector(
            binary,
            work_dir / "logs",
            work_dir / "backend",
            name=name,
            metrics_path="/api/v1/otlp/v1/metrics",
            logs_path="/otlp/v1/logs",
        )

    def collector_env(self) -> dict[str, str]:
        return self.downstream.backend_env()

    def start(self) -> FileBackend:
        self.downstream.start()
        return self

    def stop(self) -> None:
        self.downstream.stop()

    def delivery(self, service: str) -> Delivery:
        delivery = Delivery()
        for request in read_json_lines(self.downstream.outputs()):
            delivery.add_request(request, service)
        return delivery


class ControlledOtlpBackend:
    """An OTLP/HTTP backend on 127.0.0.1 whose behaviour the test switches at any moment.

    Modes: ``accept`` (200, data kept), ``unavailable`` (503 + Retry-After), ``throttle``
    (429 + Retry-After), ``hang`` (reads the request, never answers; the connection is dropped
    without a response when the mode changes). Only accepted requests count as delivered.
    """

    MODES: ClassVar[tuple[str, ...]] = ("accept", "unavailable", "throttle", "hang")
    REQUESTS: ClassVar[dict[str, type[Message]]] = {
        "/v1/traces": trace_service_pb2.ExportTraceServiceRequest,
        "/v1/metrics": metrics_service_pb2.ExportMetricsServiceRequest,
        "/v1/logs": logs_service_pb2.ExportLogsServiceRequest,
    }
    RESPONSES: ClassVar[dict[str, type[Message]]] = {
        "/v1/traces": trace_service_pb2.ExportTraceServiceResponse,
        "/v1/metrics": metrics_service_pb2.ExportMetricsServiceResponse,
        "/v1/logs": logs_service_pb2.ExportLogsServiceResponse,
    }

    def __init__(self, retry_after_seconds: int = 1) -> None:
        self.retry_after = retry_after_seconds
        self._lock = threading.Lock()
        self._mode = "accept"
        self._released = threading.Event()
        self._accepted: list[dict[str, Any]] = []
        #: (path, outcome) -> count; outcome is the status answered or "hung".
        self.attempts: Counter[tuple[str, str]] = Counter()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                backend._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def collector_env(self) -> dict[str, str]:
        """Env for chenu-otelcol with the vendor overlay: every signal goes here."""
        return {"VENDOR_OTLP_ENDPOINT": self.url}

    def start(self) -> ControlledOtlpBackend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def set_mode(self, mode: str) -> None:
        assert mode in self.MODES, mode
        with self._lock:
            self._mode = mode
            if mode == "hang":
                self._released.clear()
            else:
                self._released.set()

    def attempts_by(self, outcome: str) -> Counter[str]:
        with self._lock:
            return Counter({p: n for (p, o), n in self.attempts.items() if o == outcome})

    def delivery(self, service: str) -> Delivery:
        delivery = Delivery()
        with self._lock:
            accepted = list(self._accepted)
        for request in accepted:
            delivery.add_request(request, service)
        return delivery

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        path = handler.path
        with self._lock:
            mode = self._mode
        if path not in self.REQUESTS:
            self._answer(handler, 404, b"")
            return
        if mode == "hang":
            with self._lock:
                self.attempts[(path, "hung")] += 1
            self._released.wait()
            handler.close_connection = True  # dropped without an answer
            return
        if mode in ("unavailable", "throttle"):
            status = 503 if mode == "unavailable" else 429
            with self._lock:
                self.attempts[(path, str(status))] += 1
            self._answer(handler, status, b"", retry_after=True)
            return
        if handler.headers.get("Content-Encoding", "") == "gzip":
            body = gzip.decompress(body)
        message = self.REQUESTS[path]()
        message.ParseFromString(body)
        request = MessageToDict(message)
        with self._lock:
            self.attempts[(path, "200")] += 1
            self._accepted.append(request)
        self._answer(handler, 200, self.RESPONSES[path]().SerializeToString())

    def _answer(
        self, handler: BaseHTTPRequestHandler, status: int, body: bytes, retry_after: bool = False
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/x-protobuf")
        handler.send_header("Content-Length", str(len(body)))
        if retry_after:
            handler.send_header("Retry-After", str(self.retry_after))
        handler.end_headers()
        handler.wfile.write(body)


# --- the app ---------------------------------------------------------------------------------


class FaultApp:
    """tests/e2e/fault_app.py in its own process, sending to `endpoint` over OTLP/gRPC."""

    def __init__(
        self,
        work_dir: Path,
        service: str,
        endpoint: str,
        rate: float = 50,
        max_requests: int = 6000,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.service = service
        self.stop_file = work_dir / f"{service}.stop"
        self.output = work_dir / f"{service}.out"
        self.errors_log = work_dir / f"{service}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            {
                "OTEL_SERVICE_NAME": service,
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_TRACES_SAMPLER": "always_on",
                "OTEL_METRIC_EXPORT_INTERVAL": "500",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_BLRP_SCHEDULE_DELAY": "100",
                # The SDK's own pipeline-health metrics: what it dropped or failed to export.
                "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true",
                "PYTHONPATH": str(REPO_ROOT),
                **(extra_env or {}),
            }
        )
        self._env = env
        self._argv = [sys.executable, str(FAULT_APP), str(self.stop_file), str(rate)]
        self._argv.append(str(max_requests))
        self._proc: subprocess.Popen[bytes] | None = None
        self.summary: dict[str, Any] = {}

    def start(self) -> FaultApp:
        with self.output.open("wb") as out, self.errors_log.open("wb") as err:
            self._proc = subprocess.Popen(
                self._argv, stdout=out, stderr=err, env=self._env, cwd=REPO_ROOT
            )
        return self

    def sent_so_far(self) -> int:
        """Requests run so far; raises (with the app's output) if the app has died."""
        assert self._proc is not None
        if self._proc.poll() is not None and not self.stop_file.exists():
            raise RuntimeError(
                f"the app exited with {self._proc.returncode}:\n{self._stderr_tail()}"
            )
        lines = [ln for ln in self.output.read_text().splitlines() if ln.startswith("sent ")]
        return int(lines[-1].split()[1]) if lines else 0

    def wait_sent(self, count: int, timeout: float = 60) -> None:
        poll_until(
            lambda: self.sent_so_far() >= count, timeout=timeout, what=f"the app to send {count}"
        )

    def stop(self, timeout: float = 90) -> dict[str, Any]:
        """Stop sending, let the app flush and exit; returns its summary."""
        self.stop_file.touch()
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            raise
        output = self.output.read_text()
        assert code == 0, f"app exited with {code}:\n{output[-2000:]}\n{self._stderr_tail()}"
        self.summary = json.loads(output.strip().splitlines()[-1])
        return self.summary

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def _stderr_tail(self) -> str:
        lines = self.errors_log.read_text(errors="replace").splitlines()
        return "\n".join(ln for ln in lines if '"event":"fault tick"' not in ln)[-3000:]


# --- the collector's own metrics ------------------------------------------------------------


def metric_total(text: str, name: str) -> float:
    """Sum of every series of `name` (with or without a _total suffix) in Prometheus text."""
    pattern = re.compile(rf"^{re.escape(name)}(?:_total)?(?:\{{[^}}]*\}})?\s+(\S+)$", re.M)
    return sum(float(value) for value in pattern.findall(text))


class CollectorWatch:
    """Samples a collector's own metrics every half second, across restarts, in a thread."""

    def __init__(self, collector: CollectorProcess) -> None:
        self.collector = collector
        self.max_heap = 0.0
        self.max_rss = 0.0
        self.samples = 0
        self.last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CollectorWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> None:
        text = self.collector.own_metrics()
        heap = metric_total(text, "otelcol_process_runtime_heap_alloc_bytes")
        rss = metric_total(text, "otelcol_process_memory_rss")
        self.max_heap = max(self.max_heap, heap)
        self.max_rss = max(self.max_rss, rss)
        self.samples += 1
        self.last = {
            name: metric_total(text, name)
            for name in (
                "otelcol_receiver_refused_spans",
                "otelcol_receiver_refused_log_records",
                "otelcol_exporter_enqueue_failed_spans",
                "otelcol_exporter_enqueue_failed_log_records",
                "otelcol_exporter_send_failed_spans",
            )
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):  # the collector is down (killed or restarting)
                self.sample()
            self._stop.wait(0.5)

    def memory_line(self) -> str:
        return (
            f"collector heap max {self.max_heap / MIB:.0f} MiB, RSS max {self.max_rss / MIB:.0f}"
            f" MiB (memory_limiter {MEMORY_LIMIT_MIB} MiB, {self.samples} samples)"
        )

    def assert_under_limit(self) -> None:
        assert self.samples > 0, "no sample of the collector's own metrics was taken"
        limit = MEMORY_LIMIT_MIB * MIB
        assert self.max_heap < limit, self.memory_line()
        assert self.max_rss < limit, self.memory_line()


# --- figures ---------------------------------------------------------------------------------


@dataclass
class Figures:
    """One case's accounting: what the app sent against what the backend holds."""

    case: str
    sent: int
    delivery: Delivery
    app_errors: int

    @property
    def lost_spans(self) -> int:
        return len(set(range(1, self.sent + 1)) - set(self.delivery.spans))

    @property
    def lost_logs(self) -> int:
        return len(set(range(1, self.sent + 1)) - set(self.delivery.logs))

    @property
    def complete(self) -> bool:
        return (
            self.lost_spans == 0
            and self.lost_logs == 0
            and self.delivery.last_counter_value() == self.sent
        )

    def line(self) -> str:
        spans, logs = self.delivery.spans, self.delivery.logs
        return (
            f"FAULT {self.case}: sent {self.sent} spans / {self.sent} logs; "
            f"delivered {len(spans)} / {len(logs)}; "
            f"duplicates {sum(spans.values()) - len(spans)} / {sum(logs.values()) - len(logs)}; "
            f"lost {self.lost_spans} / {self.lost_logs}; app errors {self.app_errors}; "
            f"counter app {self.sent} backend {self.delivery.last_counter_value()}"
        )


def wait_for_delivery(
    case: str,
    summary: dict[str, Any],
    deliver: Callable[[], Delivery],
    timeout: float = 60,
    allowed_lost: tuple[int, int] = (0, 0),
) -> Figures:
    """Poll the backend until everything the app sent is there, short of `allowed_lost`
    (spans, log records) the app itself counted as dropped, or until `timeout`."""
    figures = Figures(case, int(summary["sent"]), Delivery(), int(summary["errors"]))

    def complete() -> bool:
        figures.delivery = deliver()
        return (
            figures.lost_spans <= allowed_lost[0]
            and figures.lost_logs <= allowed_lost[1]
            and figures.delivery.last_counter_value() == figures.sent
        )

    # On timeout the figures say what is missing; the caller asserts on them.
    with contextlib.suppress(TimeoutError):
        poll_until(complete, timeout=timeout, interval=0.5, what=f"{case}: full delivery")
    return figures
