"""chenu-otel's pytest plugin, registered through the ``pytest11`` entry point.

Installed with chenu-otel, it gives every test suite two fixtures:

``capotel``
    chenu-otel configured with in-memory exporters only (no ``OTEL_*`` exporter is used), the
    three signals captured: ``capotel.spans()``, ``capotel.logs()``,
    ``capotel.metric_points("http.server.request.duration")``. chenu-otel is reset afterwards.
``otlp_sink``
    a real OTLP receiver (gRPC and HTTP/protobuf) on 127.0.0.1 for the duration of the test.

::

    def test_checkout_is_traced(capotel):
        checkout()
        assert [span.name for span in capotel.spans()] == ["checkout"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chenu_otel.environment_variables import OTLP_PER_SIGNAL
from chenu_otel.testing.capture import CapturedTelemetry, capture_telemetry
from chenu_otel.testing.otlp_sink import OtlpSink

__all__ = ["capotel", "otlp_sink"]


@pytest.fixture
def capotel(monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturedTelemetry]:
    """chenu-otel capturing traces, metrics and logs in memory only, reset after the test."""
    for variables in OTLP_PER_SIGNAL.values():
        monkeypatch.setenv(variables.exporter, "none")
    with capture_telemetry() as captured:
        yield captured


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    """A real OTLP receiver (gRPC + HTTP/protobuf) on 127.0.0.1."""
    with OtlpSink() as sink:
        yield sink
