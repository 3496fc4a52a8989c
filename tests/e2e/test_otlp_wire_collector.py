"""The real collector reads the wire encoder's requests exactly as it reads the official ones.

A chenu-otelcol with an OTLP receiver and a file exporter (tests/e2e/downstream-collector.yaml)
gets the same spans, log records and metrics twice: once from the official exporter, once from
the wire exporter, over OTLP/HTTP and over OTLP/gRPC. Each export becomes one OTLP JSON line in
the collector's output; the two lines of a pair must be identical, and carry what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetrics,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetrics,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from chenu_otel.otlp_wire_exporters import (
    GrpcWireLogExporter,
    GrpcWireMetricExporter,
    GrpcWireSpanExporter,
    HttpWireLogExporter,
    HttpWireMetricExporter,
    HttpWireSpanExporter,
)
from tests.collector_fixtures import DownstreamCollector
from tests.support import poll_until

pytestmark = pytest.mark.slow

RESOURCE = Resource.create(
    {"service.name": "wire-e2e", "host.cores": 2, "regions": ("eu", "us"), "ratio": 0.5},
    schema_url="https://opentelemetry.io/schemas/1.30.0",
)
ATTRIBUTES: dict[str, Any] = {
    "http.route": "/items/{id}",
    "unicode": "données ✓",
    "long": "é" * 150,
    "negative": -(2**40),
    "float": 2.5,
    "flag": False,
    "strings": ["a", ""],
    "ints": [1, -2],
    "floats": [0.5],
    "bools": [True],
}


def make_spans() -> list[ReadableSpan]:
    provider = TracerProvider(resource=RESOURCE)
    captured = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    tracer = provider.get_tracer("wire.e2e", "1.0", schema_url="https://scope/1")
    state = TraceState([("vendor", "v1")])
    parent = SpanContext(0xABCDEF, 0x1234, True, TraceFlags(1), state)
    with tracer.start_as_current_span(
        "GET /items/{id}",
        context=set_span_in_context(NonRecordingSpan(parent)),
        kind=SpanKind.SERVER,
        attributes=ATTRIBUTES,
        links=[Link(SpanContext(0x99, 0x98, True), {"link": 1}), Link(parent)],
    ) as root:
        root.add_event("exception", {"exception.type": "ValueError"})
        root.set_status(Status(StatusCode.ERROR, "failed ✗"))
        for kind in SpanKind:
            with tracer.start_as_current_span(f"child {kind.name}", kind=kind):
                pass
    return list(captured.get_finished_spans())


def make_logs() -> list[ReadableLogRecord]:
    from opentelemetry._logs import SeverityNumber

    provider = LoggerProvider(resource=RESOURCE)
    captured = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(captured))
    logger = provider.get_logger("wire.e2e.logs", "2.0")
    bodies: list[Any] = [
        "http_request",
        {"event": "login", "user": {"id": 7, "roles": ["a"]}, "raw": b"\x00\xff"},
        ["x", 1, 2.5, None],
        42,
        None,
    ]
    with TracerProvider(resource=RESOURCE).get_tracer("t").start_as_current_span("request"):
        for index, body in enumerate(bodies):
            logger.emit(
                body=body,
                severity_number=SeverityNumber.WARN,
                severity_text="WARN",
                attributes={**ATTRIBUTES, "nested": {"k": [1, "v"]}, "index": index},
                event_name="app.event" if index == 0 else None,
            )
    return list(captured.get_finished_logs())


def make_metrics() -> MetricsData:
    reader = InMemoryMetricReader()
    views = [View(instrument_name="exp*", aggregation=ExponentialBucketHistogramAggregation())]
    provider = MeterProvider(metric_readers=[reader], resource=RESOURCE, views=views)
    meter = provider.get_meter("wire.e2e.metrics", "3.0")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    exponential = meter.create_histogram("exp.latency", unit="ms")
    counter = meter.create_counter("requests")
    active = meter.create_up_down_counter("active")
    gauge = meter.create_gauge("temperature")
    with TracerProvider(resource=RESOURCE).get_tracer("t").start_as_current_span("sampled"):
        for value in (0.001, 0.02, 0.3, 4.0):
            duration.record(value, {"http.route": "/items/{id}"})
            exponential.record(value * 1000, {"unit": "ms"})
        counter.add(3, {"http.route": "/items/{id}"})
        active.add(-2)
        gauge.set(21.5, {"room": "a"})
    data = reader.get_metrics_data()
    assert data is not None
    return data


Exporters = tuple[Callable[[str], Any], Callable[[str], Any]]

# Per protocol and signal: (official factory, wire factory), each taking the collector's URL.
EXPORTERS: dict[str, dict[str, Exporters]] = {
    "http": {
        "traces": (
            lambda url: HttpSpans(endpoint=f"{url}/v1/traces"),
            lambda url: HttpWireSpanExporter(endpoint=f"{url}/v1/traces"),
        ),
        "logs": (
            lambda url: HttpLogs(endpoint=f"{url}/v1/logs"),
            lambda url: HttpWireLogExporter(endpoint=f"{url}/v1/logs"),
        ),
        "metrics": (
            lambda url: HttpMetrics(endpoint=f"{url}/v1/metrics"),
            lambda url: HttpWireMetricExporter(endpoint=f"{url}/v1/metrics"),
        ),
    },
    "grpc": {
        "traces": (lambda url: GrpcSpans(endpoint=url), lambda url: GrpcWireSpanExporter(url)),
        "logs": (lambda url: GrpcLogs(endpoint=url), lambda url: GrpcWireLogExporter(url)),
        "metrics": (
            lambda url: GrpcMetrics(endpoint=url),
            lambda url: GrpcWireMetricExporter(endpoint=url),
        ),
    },
}
TOP_KEY = {"traces": "resourceSpans", "logs": "resourceLogs", "metrics": "resourceMetrics"}


def written(collector: DownstreamCollector, signal: str) -> list[dict[str, Any]]:
    """The OTLP JSON documents the collector wrote for one signal, in order."""
    if not collector.output.exists():
        return []
    documents = []
    for line in collector.output.read_text().splitlines():
        try:
            document = json.loads(line)
        except json.JSONDecodeError:  # the last line may still be half-written
            continue
        if TOP_KEY[signal] in document:
            documents.append(document)
    return documents


BUILDERS: dict[str, Callable[[], Any]] = {
    "traces": make_spans,
    "logs": make_logs,
    "metrics": make_metrics,
}


def export_and_read(
    collector: DownstreamCollector, url: str, signal: str, factory: Callable[[str], Any], data: Any
) -> dict[str, Any]:
    """Export `data` once with `factory`'s exporter; the line the collector wrote for it."""
    before = len(written(collector, signal))
    exporter = factory(url)
    result = exporter.export(data)
    exporter.shutdown()
    assert result.name == "SUCCESS", f"{type(exporter).__name__} failed to export {signal}"
    documents = poll_until(
        lambda: written(collector, signal)[before:],
        timeout=20,
        what=f"the collector's file exporter to write the {signal} request",
    )
    assert len(documents) == 1
    return documents[0]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_collector_reads_wire_requests_as_the_official_ones(
    collector_binary: Path, tmp_path: Path, protocol: str
) -> None:
    """For each signal, the collector's JSON of the wire exporter's request equals its JSON
    of the official exporter's request for the same SDK objects, and carries every field
    sent: trace state, links, events, status, nested bodies, exemplars, exponential
    buckets."""
    collector = DownstreamCollector(collector_binary, tmp_path / "logs", tmp_path / "out")
    collector.start()
    try:
        url = collector.http_url if protocol == "http" else f"http://{collector.grpc_address}"
        received = {}
        for signal, (official, wire) in EXPORTERS[protocol].items():
            data = BUILDERS[signal]()
            reference = export_and_read(collector, url, signal, official, data)
            ours = export_and_read(collector, url, signal, wire, data)
            assert ours == reference, signal
            received[signal] = ours
    finally:
        collector.stop()
    spans = received["traces"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    root = next(span for span in spans if span["name"] == "GET /items/{id}")
    assert root["traceState"] == "vendor=v1" and len(root["links"]) == 2
    assert root["events"][0]["name"] == "exception" and root["status"]["code"] == 2
    assert root["flags"] == 0x300
    records = received["logs"]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert records[1]["body"]["kvlistValue"]["values"][0]["key"] == "event"
    assert records[0]["eventName"] == "app.event" and records[0]["traceId"]
    metrics = {
        metric["name"]: metric
        for metric in received["metrics"]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    }
    histogram_point = metrics["http.server.request.duration"]["histogram"]["dataPoints"][0]
    assert histogram_point["exemplars"][0]["traceId"]
    assert metrics["exp.latency"]["exponentialHistogram"]["dataPoints"][0]["positive"]
