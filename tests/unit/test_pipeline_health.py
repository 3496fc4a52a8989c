"""chenu_otel.pipeline_health: the SDK counts what it drops or fails to export, per signal,
without per-span counters."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chenu_otel.pipeline_health import (
    SDK_INTERNAL_METRICS_ENABLED,
    batch_pipeline_metrics,
    counting_losses,
)
from tests.support import LOOPBACK, free_port


class BlockedExporter(SpanExporter):
    """Holds every export until released, so the batch queue fills up behind it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: object) -> SpanExportResult:
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def meters(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    """A MeterProvider reading into `reader`, passed to the components under test."""
    provider = MeterProvider(metric_readers=[reader])
    yield provider
    provider.shutdown()


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, object], int]]:
    """(attributes, value) of every point of the metric `name` the reader collected."""
    found: list[tuple[dict[str, object], int]] = []
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        value = int(point.value)  # type: ignore[union-attr]
                        found.append((dict(point.attributes or {}), value))
    return found


def finished_spans(count: int) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for n in range(count):
        provider.get_tracer("test").start_span(f"span {n}").end()
    return list(exporter.get_finished_spans())


def test_spans_dropped_by_a_full_batch_queue_are_counted(
    reader: InMemoryMetricReader, meters: MeterProvider
) -> None:
    """A batch processor built inside the block counts each span its full queue drops under
    error.type=queue_full, and reports its queue capacity."""
    exporter = BlockedExporter()
    with batch_pipeline_metrics():
        processor = BatchSpanProcessor(
            exporter, max_queue_size=4, max_export_batch_size=1, meter_provider=meters
        )
    for span in finished_spans(12):
        processor.on_end(span)
    dropped = sum(
        value
        for attributes, value in points(reader, "otel.sdk.processor.span.processed")
        if attributes.get("error.type") == "queue_full"
    )
    capacity = points(reader, "otel.sdk.processor.span.queue.capacity")
    exporter.release.set()
    processor.shutdown()
    # 12 offered, at most 4 queued and 1 in the blocked export: at least 7 dropped.
    assert dropped >= 7, points(reader, "otel.sdk.processor.span.processed")
    assert [value for _, value in capacity] == [4]


def test_spans_an_exporter_fails_to_send_are_counted(
    reader: InMemoryMetricReader, meters: MeterProvider
) -> None:
    """An OTLP exporter built inside the block counts spans whose export failed (nothing listens
    at its endpoint), with the error type."""
    with batch_pipeline_metrics():
        exporter = OTLPSpanExporter(
            endpoint=f"http://{LOOPBACK}:{free_port()}/v1/traces", timeout=1, meter_provider=meters
        )
    result = exporter.export(finished_spans(3))
    exporter.shutdown()
    assert result is SpanExportResult.FAILURE
    failed = [
        (attributes, value)
        for attributes, value in points(reader, "otel.sdk.exporter.span.exported")
        if attributes.get("error.type")
    ]
    assert [value for _, value in failed] == [3], failed


def test_tracers_made_after_the_block_get_no_per_span_counters(
    reader: InMemoryMetricReader, meters: MeterProvider
) -> None:
    """Outside the block the switch is off again: spans cost no metric update, and the process
    environment is as it was."""
    with batch_pipeline_metrics():
        assert os.environ[SDK_INTERNAL_METRICS_ENABLED] == "true"
    assert SDK_INTERNAL_METRICS_ENABLED not in os.environ
    provider = TracerProvider(meter_provider=meters)
    provider.get_tracer("test").start_span("work").end()
    assert points(reader, "otel.sdk.span.started") == []


def test_a_value_set_by_the_user_wins(
    reader: InMemoryMetricReader, meters: MeterProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=false set beforehand keeps the counters off."""
    monkeypatch.setenv(SDK_INTERNAL_METRICS_ENABLED, "false")
    with batch_pipeline_metrics():
        processor = BatchSpanProcessor(BlockedExporter(), meter_provider=meters)
    processor.shutdown()
    assert os.environ[SDK_INTERNAL_METRICS_ENABLED] == "false"
    assert points(reader, "otel.sdk.processor.span.queue.capacity") == []


def test_a_provider_builder_decorated_counts_its_losses(
    reader: InMemoryMetricReader, meters: MeterProvider
) -> None:
    """@counting_losses on a builder: its batch processors report their queue, and the switch is
    off again once it returned."""

    @counting_losses
    def build(queue_size: int) -> BatchSpanProcessor:
        return BatchSpanProcessor(
            BlockedExporter(),
            max_queue_size=queue_size,
            max_export_batch_size=1,
            meter_provider=meters,
        )

    processor = build(16)
    assert SDK_INTERNAL_METRICS_ENABLED not in os.environ
    capacity = points(reader, "otel.sdk.processor.span.queue.capacity")
    processor.shutdown()
    assert [value for _, value in capacity] == [16]
