"""The proxy providers: installed once, the real providers swapped behind them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chenu_otel import pipeline
from chenu_otel.testing import CapturedTelemetry, capture_telemetry


def test_telemetry_objects_taken_early_follow_every_pipeline(memory_only: None) -> None:
    """A tracer, an instrument and a logger obtained before configure() reach the pipeline in
    place when they are used — the first one, then a second one after a reset."""
    pipeline.reset()
    tracer = trace.get_tracer("early")
    counter = metrics.get_meter("early").create_counter("early.calls")
    logger = _logs.get_logger("early")
    for run in ("first", "second"):
        with capture_telemetry(service_name=run) as telemetry:
            with tracer.start_as_current_span(f"span-{run}"):
                counter.add(1)
                logger.emit(body=f"log-{run}")
            (span,) = telemetry.spans()
            assert span.name == f"span-{run}"
            assert span.resource.attributes["service.name"] == run
            (point,) = telemetry.metric_points("early.calls")
            assert point.value == 1  # each pipeline starts counting afresh
            (record,) = [r.log_record for r in telemetry.logs()]
            assert record.body == f"log-{run}"
            assert record.trace_id == span.context.trace_id


def test_after_reset_nothing_is_recorded(capotel: CapturedTelemetry) -> None:
    """reset() puts no-op providers behind the proxies: spans stop recording."""
    pipeline.reset()
    with trace.get_tracer("after").start_as_current_span("nothing") as span:
        assert not span.is_recording()
    assert capotel.spans() == ()


FOREIGN_PROVIDER = textwrap.dedent(
    """
    import logging
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())   # someone else's, set first
    logging.basicConfig(level=logging.WARNING)
    import chenu_otel
    chenu_otel.configure(service_name="late")
    from chenu_otel.tracing import create_span
    with create_span("ours") as span:
        assert span.is_recording()
    """
)


def test_a_provider_made_global_before_configure_is_reported() -> None:
    """configure() after another TracerProvider was made global says so, naming the signal,
    and chenu-otel's own spans still go to its pipeline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({f"OTEL_{s}_EXPORTER": "none" for s in ("TRACES", "METRICS", "LOGS")})
    result = subprocess.run(
        [sys.executable, "-c", FOREIGN_PROVIDER],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "another OpenTelemetry provider was made global for traces" in output


def test_processors_added_through_the_global_provider_receive_spans(
    capotel: CapturedTelemetry,
) -> None:
    """The usual `trace.get_tracer_provider().add_span_processor(...)` reaches the SDK provider
    behind the proxy."""
    extra = InMemorySpanExporter()
    provider: Any = trace.get_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(extra))
    with trace.get_tracer("user").start_as_current_span("seen-twice"):
        pass
    assert [s.name for s in extra.get_finished_spans()] == ["seen-twice"]
    assert [s.name for s in capotel.spans()] == ["seen-twice"]
