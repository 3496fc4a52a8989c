"""configure() counts what the app itself loses: the SDK's otel.sdk.* counters reach the metrics
endpoint while the traces endpoint is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import chenu_otel
from chenu_otel import pipeline
from chenu_otel.stack.processes import LOOPBACK, free_port
from chenu_otel.testing.otlp_sink import OtlpSink, attributes_of, environ_for


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        for name, value in environ_for(running, "grpc").items():
            monkeypatch.setenv(name, value)
        # Spans go nowhere: nothing listens on this port.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://{LOOPBACK}:{free_port()}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "500")
        yield running
        pipeline.reset()  # before the sink stops, so the final flush has somewhere to go


def failed_spans(sink: OtlpSink) -> int:
    total = 0
    for _, metric in sink.metrics():
        if metric.name != "otel.sdk.exporter.span.exported":
            continue
        for point in metric.sum.data_points:
            if "error.type" in attributes_of(point.attributes):
                total = max(total, point.as_int)
    return total


def test_spans_the_exporter_could_not_send_are_counted_at_the_metrics_endpoint(
    sink: OtlpSink,
) -> None:
    """Spans that never reached the collector show up as otel.sdk.exporter.span.exported points
    with error.type, exported like any app metric."""
    chenu_otel.configure(service_name="health-check")
    tracer = chenu_otel.tracing.get_tracer("health-check")
    for index in range(5):
        with tracer.start_as_current_span(f"lost-{index}"):
            pass
    sink.wait_for(lambda s: failed_spans(s) >= 5, timeout=30)
    assert failed_spans(sink) >= 5
    assert sink.spans() == []
