"""Capture all three signals of your own code in memory, through chenu-otel's real pipeline.

::

    from chenu_otel.testing import capture_telemetry

    def test_checkout_logs_and_spans():
        with capture_telemetry(service_name="shop") as telemetry:
            checkout()
        assert telemetry.spans()[0].name == "checkout"
        assert telemetry.logs()[0].log_record.body == "order_placed"

With pytest, the ``capotel`` fixture (`chenu_otel.testing.pytest_plugin`) does the same with
nothing exported anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chenu_otel.pipeline import Pipeline, configure, reset
from chenu_otel.scrubbing import ScrubbingSpanExporter

__all__ = ["CapturedTelemetry", "capture_telemetry", "reset"]


@dataclass
class CapturedTelemetry:
    """What the in-memory exporters received during `capture_telemetry()`."""

    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter
    pipeline: Pipeline

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span that ended so far."""
        return self.span_exporter.get_finished_spans()

    def logs(self) -> tuple[ReadableLogRecord, ...]:
        """Every log record emitted so far."""
        self.pipeline.force_flush()
        return self.log_exporter.get_finished_logs()

    def metrics(self) -> MetricsData | None:
        """The metrics collected now."""
        return self.metric_reader.get_metrics_data()

    def metric_points(self, name: str) -> list[Any]:
        """All data points of the metric called `name` (collects now)."""
        data = self.metrics()
        points: list[Any] = []
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


@contextmanager
def capture_telemetry(**configure_kwargs: Any) -> Iterator[CapturedTelemetry]:
    """Configure chenu-otel with in-memory exporters (next to any from ``OTEL_*``), yield what
    they capture, then shut the pipeline down and `reset` chenu-otel.

    Pass ``OTEL_TRACES_EXPORTER=none`` etc. in the environment to capture only in memory.
    """
    span_exporter = InMemorySpanExporter()
    metric_reader = InMemoryMetricReader()
    log_exporter = InMemoryLogRecordExporter()
    reset()
    # Spans pass the same scrubbing as on their way to a real exporter.
    configure_kwargs["span_processors"] = [
        SimpleSpanProcessor(ScrubbingSpanExporter(span_exporter)),
        *configure_kwargs.get("span_processors", ()),
    ]
    configure_kwargs["metric_readers"] = [
        metric_reader,
        *configure_kwargs.get("metric_readers", ()),
    ]
    configure_kwargs["log_record_processors"] = [
        SimpleLogRecordProcessor(log_exporter),
        *configure_kwargs.get("log_record_processors", ()),
    ]
    pipeline = configure(**configure_kwargs)
    try:
        yield CapturedTelemetry(span_exporter, metric_reader, log_exporter, pipeline)
    finally:
        reset()
