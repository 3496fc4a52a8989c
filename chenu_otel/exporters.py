"""The one place exporters are built: one signal, one exporter name, validated settings.

`build_exporter()` turns ``OTEL_{SIGNAL}_EXPORTER`` entries into SDK exporters. Every value an
OTLP exporter needs (endpoint, headers, timeout, compression, and for metrics the temporality
and histogram aggregation) is passed explicitly, so a malformed ``OTEL_*`` variable rejected by
`chenu_otel.settings` never reaches it. OTLP exporters are wrapped so that a process forked
after `configure()` (uvicorn ``--workers``, gunicorn ``--preload``) opens its own gRPC channel or
HTTP connection instead of sharing the parent's. A failure to build one (a bad certificate
path, a missing package) is a warning, never an exception.

``CHENU_OTEL_OTLP_ENCODER`` picks the OTLP exporter classes: ``wire`` (default) the official
exporters with the encoding step of `chenu_otel.otlp_wire_exporters` (same bytes, less CPU),
``official`` the SDK's exporters as they are.

Each OTLP/HTTP exporter gets its own `OtlpHttpSession` (one per process, created in the
fork-safe factory): with plain ``requests``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override
the CA the session was given (psf/requests#3829), so ``OTEL_EXPORTER_OTLP_CERTIFICATE`` would
be ignored in every image that sets one of them.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

import requests
from opentelemetry.sdk._logs.export import (
    ConsoleLogRecordExporter,
    LogRecordExporter,
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
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from chenu_otel.settings import (
    Compression,
    Exporter,
    HistogramAggregation,
    OtlpEncoder,
    OtlpSettings,
    Protocol,
    Settings,
    Signal,
    Temporality,
)

__all__ = ["OtlpHttpSession", "build_exporter", "metric_aggregation", "metric_temporality"]

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

# The same exporters encoding with chenu_otel.otlp_wire (CHENU_OTEL_OTLP_ENCODER=wire).
_WIRE_CLASSES: Final[Mapping[tuple[Signal, Protocol], str]] = {
    (signal, protocol): "chenu_otel.otlp_wire_exporters:"
    + ("Grpc" if protocol is Protocol.GRPC else "Http")
    + f"Wire{kind}Exporter"
    for signal, kind in ((Signal.TRACES, "Span"), (Signal.METRICS, "Metric"), (Signal.LOGS, "Log"))
    for protocol in Protocol
}

# The SDK's variables naming a credential-provider session (it then brings its own session).
_CREDENTIAL_PROVIDER_PREFIX: Final = "OTEL_PYTHON_EXPORTER_OTLP_HTTP_"

# Distinct (endpoint, settings) environment merges one session remembers (an exporter uses one).
_ENDPOINTS_CACHED: Final = 8

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
    classes = _WIRE_CLASSES if settings.otlp_encoder is OtlpEncoder.WIRE else _OTLP_CLASSES
    module, _, class_name = classes[(signal, otlp.protocol)].partition(":")
    exporter_class = getattr(importlib.import_module(module), class_name)
    arguments = _otlp_arguments(otlp)
    own_session = otlp.protocol is Protocol.HTTP_PROTOBUF and not _credential_provider_set()

    def build(**extra: Any) -> Any:
        session = {"session": OtlpHttpSession()} if own_session else {}
        return exporter_class(**arguments, **session, **extra)

    if signal is Signal.TRACES:
        return ForkSafeSpanExporter(build)
    if signal is Signal.LOGS:
        return ForkSafeLogExporter(build)
    temporality = metric_temporality(settings.temporality)
    aggregation = metric_aggregation(settings.histogram_aggregation)
    return ForkSafeMetricExporter(
        lambda: build(preferred_temporality=temporality, preferred_aggregation=aggregation),
        temporality,
        aggregation,
    )


def _credential_provider_set() -> bool:
    """Whether OTEL_PYTHON_EXPORTER_OTLP_HTTP_[SIGNAL_]CREDENTIAL_PROVIDER names a session the
    SDK loads itself (passing ours would silently replace it)."""
    return any(
        name.startswith(_CREDENTIAL_PROVIDER_PREFIX) and name.endswith("CREDENTIAL_PROVIDER")
        and value.strip()
        for name, value in os.environ.items()
    )  # fmt: skip


class OtlpHttpSession(requests.Session):
    """A requests session whose CA certificate, once set (the HTTP exporters set it from
    ``OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE``), wins over ``REQUESTS_CA_BUNDLE`` and
    ``CURL_CA_BUNDLE``; with no certificate set they apply as usual.

    The environment's proxy and CA settings are read once per endpoint and session, not on
    every export: requests scans the whole environment twice per request for them, about a
    quarter of the CPU of posting a batch."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self,
        url: str,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        key = None if proxies else (url, stream, verify, cert, self.verify, self.cert, self.stream)
        if key is not None and (cached := self._environment.get(key)) is not None:
            return dict(cached)
        merged: dict[str, Any] = super().merge_environment_settings(
            url, proxies, stream, verify, cert
        )
        if verify is None and self.verify is not True:  # a CA path, or verification off
            merged["verify"] = self.verify
        if key is not None and len(self._environment) < _ENDPOINTS_CACHED:
            self._environment[key] = dict(merged)
        return merged


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


class _ForkSafeBatches(_ForkSafe[Any]):
    """Export, shutdown and flush of span and log record exporters (the same three calls)."""

    def export(self, batch: Sequence[Any]) -> Any:
        return self._current().export(batch)

    def shutdown(self) -> None:
        self._current().shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._current().force_flush(timeout_millis))


class ForkSafeSpanExporter(_ForkSafeBatches, SpanExporter):
    """A span exporter that re-creates its inner exporter after ``os.fork()``."""


class ForkSafeLogExporter(_ForkSafeBatches, LogRecordExporter):
    """A log record exporter that re-creates its inner exporter after ``os.fork()``."""


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
