"""A real OTLP receiver on loopback, for tests of what an exporter really sends.

::

    with OtlpSink() as sink:            # gRPC and HTTP/protobuf on 127.0.0.1, free ports
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.grpc_endpoint
        ...
        sink.wait_for(lambda s: s.spans(), timeout=10)
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as LogRecordPb
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanPb

__all__ = ["OtlpSink", "Received", "attributes_of", "environ_for"]

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_of(key_values: Sequence[KeyValue]) -> dict[str, Any]:
    """OTLP ``KeyValue`` list → plain dict."""
    return {kv.key: _any_value(kv.value) for kv in key_values}


@dataclass
class Received:
    """One OTLP export request as it arrived."""

    transport: str  # "grpc" or "http"
    signal: str  # "traces", "metrics" or "logs"
    request: Any
    headers: dict[str, str]


@dataclass
class OtlpSink:
    """A minimal OTLP receiver on 127.0.0.1: gRPC and HTTP/protobuf, every signal.

    It answers success to every export and keeps the decoded requests; `delay` makes each
    answer slow (a hanging collector).
    """

    grpc_port: int = 0
    http_port: int = 0
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _grpc_server: Any = None
    _http_server: ThreadingHTTPServer | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def start(self) -> OtlpSink:
        import grpc

        sink = self
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

        def handler(signal: str, response: Any) -> Callable[[Any, Any], Any]:
            def export(request: Any, context: Any) -> Any:
                sink._store("grpc", signal, request, dict(context.invocation_metadata()))
                return response

            return export

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            Export = staticmethod(handler("traces", trace_service_pb2.ExportTraceServiceResponse()))

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            Export = staticmethod(
                handler("metrics", metrics_service_pb2.ExportMetricsServiceResponse())
            )

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            Export = staticmethod(handler("logs", logs_service_pb2.ExportLogsServiceResponse()))

        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
        self.grpc_port = server.add_insecure_port(f"{LOOPBACK}:{self.grpc_port}")
        server.start()
        self._grpc_server = server

        self._http_server = ThreadingHTTPServer((LOOPBACK, self.http_port), _http_handler(self))
        self.http_port = int(self._http_server.server_address[1])
        threading.Thread(
            target=self._http_server.serve_forever, name="otlp-sink-http", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()

    def __enter__(self) -> OtlpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _store(self, transport: str, signal: str, request: Any, headers: dict[str, str]) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.received.append(Received(transport, signal, request, headers))

    def _requests(self, signal: str, transport: str | None) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.received
                if r.signal == signal and (transport is None or r.transport == transport)
            ]

    def spans(self, transport: str | None = None) -> list[tuple[dict[str, Any], SpanPb]]:
        """(resource attributes, span) for every span received."""
        return [
            (attributes_of(rs.resource.attributes), span)
            for r in self._requests("traces", transport)
            for rs in r.request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def logs(self, transport: str | None = None) -> list[tuple[dict[str, Any], LogRecordPb]]:
        return [
            (attributes_of(rl.resource.attributes), record)
            for r in self._requests("logs", transport)
            for rl in r.request.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]

    def metrics(self, transport: str | None = None) -> list[tuple[dict[str, Any], Metric]]:
        return [
            (attributes_of(rm.resource.attributes), metric)
            for r in self._requests("metrics", transport)
            for rm in r.request.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        ]

    def wait_for(self, probe: Callable[[OtlpSink], T], timeout: float = 15.0) -> T:
        """Poll `probe(sink)` until it returns something truthy; raise after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe(self)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"the OTLP sink did not receive the expected data in {timeout}s")
            time.sleep(0.05)


_HTTP_PATHS: dict[str, tuple[str, Any]] = {
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest),
    "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest),
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest),
}


def _http_handler(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            route = _HTTP_PATHS.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if route is None:
                self.send_error(404)
                return
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            signal, message_type = route
            request = message_type()
            request.ParseFromString(body)
            sink._store("http", signal, request, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler


def environ_for(sink: OtlpSink, protocol: str = "grpc", **extra: str) -> dict[str, str]:
    """OTEL_* variables that point every signal at `sink` with fast export intervals."""
    endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_BLRP_SCHEDULE_DELAY": "50",
        **extra,
    }
