"""The one place exporters are built: one signal, one exporter name, validated settings.

`build_exporter()` turns ``OTEL_{SIGNAL}_EXPORTER`` entries into SDK exporters. Every value an
OTLP exporter needs (endpoint, headers, timeout, compression, and for metrics the temporality
and histogram aggregation) is passed explicitly, so a malformed ``OTEL_*`` variable rejected by
`chenu_otel.settings` never reaches it. OTLP exporters are wrapped so that a process forked
after `configure()` (uvicorn ``--workers``, gunicorn ``--preload``) opens its own gRPC channel or
HTTP connection instead of sharing the parent's. A failure to build one (a bad certificate
path, a missing package) is a warning, never an exception.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from opentelemetry.sdk._logs.export import (
    ConsoleLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import (
    Aggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
)
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult

from chenu_otel.settings import (
    Compression,
    Exporter,
    HistogramAggregation,
    OtlpSettings,
    Protocol,
    Settings,
    Signal,
    Temporality,
)

__all__ = ["build_exporter", "metric_aggregation", "metric_temporality"]

_logger = logging.getLogger("chenu_otel")

E = TypeVar("E")

# "module:class" of the OTLP exporter per signal and protocol, imported only when used.
_OTLP_CLASSES: Final[Mapping[tuple[Signal, Protocol], str]] = {
    (Signal.TRACES, Protocol.GRPC):
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
    (Signal.TRACES, Protocol.HTTP_PROTOBUF):
        "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
    (Signal.METRICS, Protocol.GRPC):
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
    (Signal.METRICS, Protocol.HTTP_PROTOBUF):
        "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
    (Signal.LOGS, Protocol.GRPC):
        "opentelemetry.exporter.otlp.proto.grpc._log_exporter:OTLPLogExporter",
    (Signal.LOGS, Protocol.HTTP_PROTOBUF):
        "opentelemetry.exporter.otlp.proto.http._log_exporter:OTLPLogExporter",
}  # fmt: skip

_DELTA, _CUMULATIVE = AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE
# The specification's table for OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.
_TEMPORALITY: Final[Mapping[Temporality, Mapping[type, AggregationTemporality]]] = {
    Temporality.CUMULATIVE: {
        Counter: _CUMULATIVE, UpDownCounter: _CUMULATIVE, Histogram: _CUMULATIVE,
        ObservableCounter: _CUMULATIVE, ObservableUpDownCounter: _CUMULATIVE,
        ObservableGauge: _CUMULATIVE,
    },
    Temporality.DELTA: {
        Counter: _DELTA, UpDownCounter: _CUMULATIVE, Histogram: _DELTA,
        ObservableCounter: _DELTA, ObservableUpDownCounter: _CUMULATIVE,
        ObservableGauge: _CUMULATIVE,
    },
    Temporality.LOWMEMORY: {
        Counter: _DELTA, UpDownCounter: _CUMULATIVE, Histogram: _DELTA,
        ObservableCounter: _CUMULATIVE, ObservableUpDownCounter: _CUMULATIVE,
        ObservableGauge: _CUMULATIVE,
    },
}  # fmt: skip


def metric_temporality(preference: Temporality) -> dict[type, AggregationTemporality]:
    """Aggregation temporality per instrument class for a temporality preference."""
    return dict(_TEMPORALITY[preference])


def metric_aggregation(histograms: HistogramAggregation) -> dict[type, Aggregation]:
    """Default aggregation per instrument class: only histograms differ from the SDK's."""
    if histograms is HistogramAggregation.BASE2_EXPONENTIAL:
        return {Histogram: ExponentialBucketHistogramAggregation()}
    return {Histogram: ExplicitBucketHistogramAggregation()}


def build_exporter(signal: Signal, name: Exporter, settings: Settings) -> Any:
    """The exporter `name` (``otlp`` or ``console``) for `signal`, or None when it cannot be
    built (the warning says why and that the signal is not exported there)."""
    try:
        if name is Exporter.CONSOLE:
            return _console(signal, settings)
        if name is Exporter.OTLP:
            return _otlp(signal, settings)
        raise ValueError(f"{name} is not an exporter of {signal}")
    except Exception as exc:
        _logger.warning(
            "chenu-otel: could not create the %s %s exporter (%s: %s); %s are not exported",
            name, signal, type(exc).__name__, exc, signal,
        )  # fmt: skip
        return None


def _console(signal: Signal, settings: Settings) -> Any:
    if signal is Signal.TRACES:
        return ConsoleSpanExporter()
    if signal is Signal.LOGS:
        return ConsoleLogRecordExporter()
    return ConsoleMetricExporter(
        preferred_temporality=metric_temporality(settings.temporality),
        preferred_aggregation=metric_aggregation(settings.histogram_aggregation),
    )


def _otlp(signal: Signal, settings: Settings) -> Any:
    otlp = settings.otlp[signal]
    module, _, class_name = _OTLP_CLASSES[(signal, otlp.protocol)].partition(":")
    exporter_class = getattr(importlib.import_module(module), class_name)
    arguments = _otlp_arguments(otlp)
    if signal is Signal.TRACES:
        return ForkSafeSpanExporter(lambda: exporter_class(**arguments))
    if signal is Signal.LOGS:
        return ForkSafeLogExporter(lambda: exporter_class(**arguments))
    temporality = metric_temporality(settings.temporality)
    aggregation = metric_aggregation(settings.histogram_aggregation)
    return ForkSafeMetricExporter(
        lambda: exporter_class(
            **arguments, preferred_temporality=temporality, preferred_aggregation=aggregation
        ),
        temporality,
        aggregation,
    )


def _otlp_arguments(otlp: OtlpSettings) -> dict[str, Any]:
    if otlp.protocol is Protocol.GRPC:
        from grpc import Compression as GrpcCompression

        gzip, plain = GrpcCompression.Gzip, GrpcCompression.NoCompression
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

        gzip, plain = HttpCompression.Gzip, HttpCompression.NoCompression
    return {
        "endpoint": otlp.endpoint,
        "headers": dict(otlp.headers),
        "timeout": otlp.timeout_seconds,
        "compression": gzip if otlp.compression is Compression.GZIP else plain,
    }


class _ForkSafe(Generic[E]):
    """Holds an exporter and re-creates it when used in a forked child.

    A gRPC channel or HTTP connection pool opened in the parent must not be used by workers
    forked from it: each process gets its own.
    """

    def __init__(self, factory: Callable[[], E]) -> None:
        self._factory = factory
        self._pid = os.getpid()
        self._exporter = factory()

    def _current(self) -> E:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._exporter = self._factory()
        return self._exporter


class ForkSafeSpanExporter(_ForkSafe[SpanExporter], SpanExporter):
    """A span exporter that re-creates its inner exporter after ``os.fork()``."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return self._current().export(spans)

    def shutdown(self) -> None:
        self._current().shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._current().force_flush(timeout_millis)


class ForkSafeLogExporter(_ForkSafe[LogRecordExporter], LogRecordExporter):
    """A log record exporter that re-creates its inner exporter after ``os.fork()``."""

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return self._current().export(batch)

    def shutdown(self) -> None:
        self._current().shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._current().force_flush(timeout_millis)


class ForkSafeMetricExporter(_ForkSafe[MetricExporter], MetricExporter):
    """A metric exporter that re-creates its inner exporter after ``os.fork()``; it states the
    same temporality and aggregation preferences its inner exporter was built with."""

    def __init__(
        self,
        factory: Callable[[], MetricExporter],
        temporality: dict[type, AggregationTemporality],
        aggregation: dict[type, Aggregation],
    ) -> None:
        _ForkSafe.__init__(self, factory)
        MetricExporter.__init__(
            self, preferred_temporality=temporality, preferred_aggregation=aggregation
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self._current().export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._current().shutdown(timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._current().force_flush(timeout_millis)
