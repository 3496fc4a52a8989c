"""Encoding cost per span / log record / metric point: the official OTLP encoder vs the wire
encoder (chenu_otel.otlp_wire), on the same SDK objects, in one process.

    .venv/bin/python bench/otlp_wire_encode.py [--batch 512] [--rounds 15]

The spans look like chenu-otel's HTTP server span (8 attributes, one per request id/path
unique), the log records like its access log record (a string body, 8 attributes, trace
context), the metrics like one export of its HTTP duration histogram with exemplars. Each
figure is the best of --rounds over a batch; the official one includes serialisation
(``SerializeToString``), as its exporters do. A benchmark, not a test: it only refuses to
print figures when the two encoders' bytes differ.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as official_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as official_metrics,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_spans,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chenu_otel.otlp_wire import encode_logs, encode_spans
from chenu_otel.otlp_wire_metrics import encode_metrics

RESOURCE = Resource.create(
    {"service.name": "bench", "service.version": "1.0.0", "deployment.environment.name": "dev"}
)
ROUTES = ("/items/{item_id}", "/threads/{thread_id}", "/health")


def request_attributes(index: int) -> dict[str, Any]:
    return {
        "http.request.method": "GET",
        "url.path": f"/items/{index}",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "chenu.request.id": f"{index:032x}",
        "client.address": "127.0.0.1",
        "http.route": ROUTES[index % 3],
        "http.response.status_code": 200,
    }


def make_data(batch: int) -> tuple[list[Any], list[Any], Any]:
    tracer_provider = TracerProvider(resource=RESOURCE)
    spans = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tracer_provider.get_tracer("chenu_otel.middleware", "0.1.0")
    logger_provider = LoggerProvider(resource=RESOURCE)
    logs = InMemoryLogRecordExporter()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    logger = logger_provider.get_logger("chenu.access")
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], resource=RESOURCE).get_meter("chenu_otel")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    for index in range(batch):
        attributes = request_attributes(index)
        with tracer.start_as_current_span(
            "GET /items/{item_id}", kind=SpanKind.SERVER, attributes=attributes
        ):
            duration.record(0.001 * (index % 50), {"http.route": attributes["http.route"]})
            logger.emit(
                body="http_request",
                severity_text="info",
                attributes={**attributes, "duration_ms": 1.25},
            )
    return (
        list(spans.get_finished_spans()),
        list(logs.get_finished_logs()),
        reader.get_metrics_data(),
    )


def best_us(function: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    spans, logs, metrics = make_data(args.batch)
    points = sum(
        len(metric.data.data_points)
        for rm in metrics.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    )
    cases: list[tuple[str, int, Callable[[], object], Callable[[], object]]] = [
        (
            "span (8 attributes)",
            len(spans),
            lambda: official_spans(spans).SerializeToString(),
            lambda: encode_spans(spans),
        ),
        (
            "log record (9 attributes)",
            len(logs),
            lambda: official_logs(logs).SerializeToString(),
            lambda: encode_logs(logs),
        ),
        (
            f"metric point ({points} with exemplars)",
            points,
            lambda: official_metrics(metrics).SerializeToString(),
            lambda: encode_metrics(metrics),
        ),
    ]
    print(f"batch of {args.batch}, best of {args.rounds} rounds, µs per item")
    print(f"{'item':34} {'official':>9} {'wire':>9} {'official/wire':>14}")
    for name, count, official, wire in cases:
        if official() != wire():
            raise SystemExit(
                f"{name}: the encoders disagree; the figures would compare unequal work"
            )
        official_us = best_us(official, args.rounds) / count
        wire_us = best_us(wire, args.rounds) / count
        print(f"{name:34} {official_us:9.2f} {wire_us:9.2f} {official_us / wire_us:13.1f}x")
    build_only = best_us(lambda: official_spans(spans), args.rounds) / len(spans)
    request = official_spans(spans)
    serialise = best_us(request.SerializeToString, args.rounds) / len(spans)
    print(f"official span split: building objects {build_only:.2f} µs, serialising {serialise:.2f}")


if __name__ == "__main__":
    main()
