"""The wire exporters plugged into the SDK send, over real OTLP/HTTP and OTLP/gRPC on loopback,
exactly the request the official exporters send, and keep their retry and size-limit rules."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as official_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as official_metrics,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_spans,
)
from opentelemetry.exporter.otlp.proto.grpc.exporter import OTLPExporterMixin
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as OfficialHttpSpanExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor as SimpleLogProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chenu_otel.otlp_wire_exporters import (
    PRIVATE_MEMBERS,
    GrpcWireLogExporter,
    GrpcWireMetricExporter,
    GrpcWireSpanExporter,
    HttpWireLogExporter,
    HttpWireMetricExporter,
    HttpWireSpanExporter,
    check_compatible,
)
from chenu_otel.testing import OtlpSink

RESOURCE = Resource.create({"service.name": "wire-exporters", "deployment.environment.name": "t"})


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpSink]:
    """A loopback OTLP receiver; the official exporters' own encoding is made to fail, so
    what arrives can only have been written by the wire encoder."""

    def refuse(*args: Any) -> Any:
        raise AssertionError("the official encoder was called")

    for module, name in [
        ("trace_exporter", "encode_spans"),
        ("_log_exporter", "encode_logs"),
        ("metric_exporter", "encode_metrics"),
    ]:
        for transport in ("http", "grpc"):
            monkeypatch.setattr(
                f"opentelemetry.exporter.otlp.proto.{transport}.{module}.{name}", refuse
            )
    with OtlpSink() as running:
        yield running


def _span_exporter(protocol: str, sink: OtlpSink) -> Any:
    if protocol == "grpc":
        return GrpcWireSpanExporter(endpoint=sink.grpc_endpoint)
    return HttpWireSpanExporter(endpoint=f"{sink.http_endpoint}/v1/traces")


def _sent(sink: OtlpSink, signal: str, transport: str) -> list[Any]:
    return [r.request for r in sink.received if r.signal == signal and r.transport == transport]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_spans_through_a_batch_processor_arrive_as_the_official_request(
    protocol: str, sink: OtlpSink
) -> None:
    """Spans exported by the SDK's BatchSpanProcessor through the wire exporter reach the
    receiver as the request the official encoder builds for the same spans."""
    provider = TracerProvider(resource=RESOURCE)
    captured = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    provider.add_span_processor(BatchSpanProcessor(_span_exporter(protocol, sink)))
    tracer = provider.get_tracer("wire", "1.0")
    with tracer.start_as_current_span("GET /items/{id}", attributes={"http.route": "/items"}):
        for index in range(20):
            with tracer.start_as_current_span(f"child {index}") as child:
                child.add_event("event", {"n": index})
    assert provider.force_flush(10_000)
    provider.shutdown()
    requests = _sent(sink, "traces", protocol)
    spans: list[ReadableSpan] = list(captured.get_finished_spans())
    assert len(requests) == 1, f"expected one batch, got {len(requests)}"
    assert requests[0] == official_spans(spans)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_logs_through_a_batch_processor_arrive_as_the_official_request(
    protocol: str, sink: OtlpSink
) -> None:
    """Log records exported by the SDK's BatchLogRecordProcessor arrive as the official
    request for the same records, trace context included."""
    exporter = (
        GrpcWireLogExporter(endpoint=sink.grpc_endpoint)
        if protocol == "grpc"
        else HttpWireLogExporter(endpoint=f"{sink.http_endpoint}/v1/logs")
    )
    provider = LoggerProvider(resource=RESOURCE)
    captured = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogProcessor(captured))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger("wire.logs")
    tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
    with tracer.start_as_current_span("request"):
        for index in range(10):
            logger.emit(body={"event": "http_request", "n": index}, attributes={"i": index})
    logger.emit(body="outside")
    assert provider.force_flush(10_000)
    provider.shutdown()
    requests = _sent(sink, "logs", protocol)
    assert len(requests) == 1
    assert requests[0] == official_logs(captured.get_finished_logs())


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_metrics_arrive_as_the_official_request(protocol: str, sink: OtlpSink) -> None:
    """What a metric reader collected (with exemplars from a sampled span) arrives as the
    official request for the same data."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE)
    meter = provider.get_meter("wire.metrics")
    histogram = meter.create_histogram("http.server.request.duration", unit="s")
    counter = meter.create_counter("requests")
    with TracerProvider(resource=RESOURCE).get_tracer("t").start_as_current_span("sampled"):
        histogram.record(0.02, {"http.route": "/items"})
        counter.add(3, {"http.route": "/items"})
    data = reader.get_metrics_data()
    assert data is not None
    exporter = (
        GrpcWireMetricExporter(endpoint=sink.grpc_endpoint)
        if protocol == "grpc"
        else HttpWireMetricExporter(endpoint=f"{sink.http_endpoint}/v1/metrics")
    )
    assert exporter.export(data) is MetricExportResult.SUCCESS
    exporter.shutdown()
    requests = _sent(sink, "metrics", protocol)
    assert len(requests) == 1
    assert requests[0] == official_metrics(data)
    point = requests[0].resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0]
    assert point.exemplars and point.exemplars[0].trace_id


class _FlakyReceiver:
    """An OTLP/HTTP endpoint that answers 503 with Retry-After: 0 to the first `failures`
    requests, then 200; it keeps every body it got."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                failing = len(receiver.bodies) <= receiver.failures
                self.send_response(503 if failing else 200)
                if failing:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _spans(count: int) -> list[ReadableSpan]:
    provider = TracerProvider(resource=RESOURCE)
    captured = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    for index in range(count):
        with provider.get_tracer("t").start_as_current_span(f"span {index}"):
            pass
    return list(captured.get_finished_spans())


def test_http_retries_a_503_like_the_official_exporter() -> None:
    """A 503 is retried by the official client's rules (Retry-After honoured) and the same
    bytes are sent again until the receiver accepts them."""
    receiver = _FlakyReceiver(failures=2)
    try:
        exporter: Any = HttpWireSpanExporter(endpoint=receiver.url, timeout=10)
        assert exporter.export(_spans(3)) is SpanExportResult.SUCCESS
        exporter.shutdown()
    finally:
        receiver.close()
    assert len(receiver.bodies) == 3 and len(set(receiver.bodies)) == 1


def test_http_batch_over_the_size_limit_is_dropped_before_sending() -> None:
    """The official max_request_size applies to our bytes: an oversized batch fails and
    nothing is sent."""
    receiver = _FlakyReceiver(failures=0)
    try:
        exporter: Any = HttpWireSpanExporter(endpoint=receiver.url, max_request_size=1000)
        assert exporter.export(_spans(20)) is SpanExportResult.FAILURE
        assert exporter.export(_spans(1)) is SpanExportResult.SUCCESS
        exporter.shutdown()
    finally:
        receiver.close()
    assert len(receiver.bodies) == 1


def test_an_official_exporter_without_a_member_we_use_is_refused() -> None:
    """If an upgrade of the official exporter drops a private member this module relies on,
    the check names it instead of failing at export time."""
    exporter = OfficialHttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    check_compatible(exporter)
    del exporter._client
    with pytest.raises(RuntimeError, match="_client"):
        check_compatible(exporter)


def test_http_exporter_falls_back_to_the_official_encoding_when_a_member_is_gone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After an upgrade that drops a member this module uses, the exporter warns once and
    sends what the official exporter sends, instead of failing every export."""
    members = dict(PRIVATE_MEMBERS)
    members[OfficialHttpSpanExporter] = (*members[OfficialHttpSpanExporter], "_gone")
    monkeypatch.setattr("chenu_otel.otlp_wire_exporters.PRIVATE_MEMBERS", members)
    receiver = _FlakyReceiver(failures=0)
    spans = _spans(2)
    try:
        exporter: Any = HttpWireSpanExporter(endpoint=receiver.url)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    finally:
        receiver.close()
    assert "_gone" in caplog.text and "falls back to the official encoding" in caplog.text
    assert receiver.bodies == [official_spans(spans).SerializePartialToString()]


def test_grpc_exporter_falls_back_to_the_official_encoding_when_a_member_is_gone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The gRPC exporters fall back the same way: official stub, official request."""
    members = dict(PRIVATE_MEMBERS)
    members[OTLPExporterMixin] = (*members[OTLPExporterMixin], "_gone")
    monkeypatch.setattr("chenu_otel.otlp_wire_exporters.PRIVATE_MEMBERS", members)
    spans = _spans(2)
    with OtlpSink() as sink:
        exporter = GrpcWireSpanExporter(endpoint=sink.grpc_endpoint)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
        requests = _sent(sink, "traces", "grpc")
    assert "falls back to the official encoding" in caplog.text
    assert requests == [official_spans(spans)]
