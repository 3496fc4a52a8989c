"""Test helpers: capture all three signals in memory, or receive real OTLP on loopback.

* `capture_telemetry()` — chenu-otel's pipeline with in-memory exporters (`CapturedTelemetry`);
* `OtlpSink` — a real OTLP receiver (gRPC and HTTP/protobuf) on 127.0.0.1, with `environ_for`
  giving the ``OTEL_*`` variables that point a process at it;
* `reset()` — shut chenu-otel down and put no-op providers behind its proxies;
* the pytest plugin (`chenu_otel.testing.pytest_plugin`, registered through the ``pytest11``
  entry point) offers the fixtures ``capotel`` and ``otlp_sink``.
"""

from chenu_otel.testing.capture import CapturedTelemetry, capture_telemetry, reset
from chenu_otel.testing.otlp_sink import OtlpSink, Received, attributes_of, environ_for

__all__ = [
    "CapturedTelemetry",
    "OtlpSink",
    "Received",
    "attributes_of",
    "capture_telemetry",
    "environ_for",
    "reset",
]
