"""Build the three SDK providers from validated `Settings` and install them globally.

One function per signal (`_tracer_provider`, `_meter_provider`, `_logger_provider`), each
turning settings into exporters and processors. `configure()` runs them once per process;
a second call returns the pipeline it already built. After ``os.fork()`` the SDK itself
restarts the batch workers and gives the child its own ``service.instance.id``; the OTLP
exporters are wrapped so that a child opens its own connection instead of sharing the
parent's (see `_ForkSafe*Exporter`).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry import _logs, metrics, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, LogRecordProcessor
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.util._importlib_metadata import entry_points
from prometheus_client import CollectorRegistry

from chenu_otel.catalogue import views as catalogue_views
from chenu_otel.scrubbing import ScrubbingSpanExporter
from chenu_otel.settings import OtlpSettings, Settings, Signal, load_settings

_logger = logging.getLogger("chenu_otel")

E = TypeVar("E")

#: Resource attribute for the deployment environment (semconv ``deployment.environment.name``).
DEPLOYMENT_ENVIRONMENT = "deployment.environment.name"


@dataclass
class Pipeline:
    """What `configure()` built; returned so callers and tests can flush or inspect it."""

    settings: Settings
    resource: Resource
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    prometheus_registry: CollectorRegistry | None = None
    _shutdown_done: bool = field(default=False, repr=False)

    @property
    def enabled(self) -> bool:
        return not self.settings.sdk_disabled

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything buffered in all three signals; False when the bound was hit."""
        return _bounded(
            lambda: all(
                p.force_flush(timeout_millis)
                for p in (self.tracer_provider, self.meter_provider, self.logger_provider)
                if p is not None
            ),
            timeout_millis,
        )

    def shutdown(self, timeout_millis: int = 10_000) -> bool:
        """Flush, then stop all exporters, returning within `timeout_millis` in any case."""
        if self._shutdown_done:
            return True
        self._shutdown_done = True

        def run() -> bool:
            flushed = self.force_flush(timeout_millis)
            for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
                if provider is not None:
                    provider.shutdown()
            return flushed

        return _bounded(run, timeout_millis)


_lock = threading.RLock()
_pipeline: Pipeline | None = None


def current_pipeline() -> Pipeline | None:
    """The pipeline `configure()` installed in this process, if any."""
    return _pipeline


def prometheus_registry() -> CollectorRegistry | None:
    """The registry behind the ``/metrics`` pull endpoint, when one was configured."""
    return _pipeline.prometheus_registry if _pipeline is not None else None


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    resource_attributes: dict[str, str] | None = None,
    metrics_endpoint: bool = False,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_record_processors: Sequence[LogRecordProcessor] = (),
    views: Sequence[View] | None = None,
) -> Pipeline:
    """Build the TracerProvider, MeterProvider and LoggerProvider and set them globally.

    Logging is set up too (JSON lines on stdout and OTel LogRecords) unless
    `chenu_otel.logging.setup_logging()` ran before. Keyword arguments are defaults:
    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` win over them. Everything else
    comes from the standard ``OTEL_*`` variables (see the README's table). Malformed values
    produce a warning naming the variable and fall back to the documented default. A second
    call returns the existing pipeline and changes nothing.

    `metrics_endpoint` adds a pull reader whose data `chenu_otel.metrics.get_metrics()` renders
    for a ``/metrics`` route (also added when ``OTEL_METRICS_EXPORTER`` lists ``prometheus``).
    `span_processors`, `metric_readers` and `log_record_processors` are added next to the
    exporters configured from the environment (tests pass in-memory ones here).

    >>> import chenu_otel
    >>> pipeline = chenu_otel.configure(service_name="chenu-backend")  # doctest: +SKIP
    """
    global _pipeline
    with _lock:
        if _pipeline is not None:
            return _pipeline
        settings = load_settings()
        resource = _resource(
            settings, service_name, service_version, environment, resource_attributes
        )
        pipeline = Pipeline(settings=settings, resource=resource)
        if settings.sdk_disabled:
            _logger.info("chenu-otel: OTEL_SDK_DISABLED=true, telemetry is not exported")
            _pipeline = pipeline
            return pipeline

        if views is None:
            views = catalogue_views()
        pipeline.tracer_provider = _tracer_provider(settings, resource, span_processors)
        if metrics_endpoint or "prometheus" in settings.exporters["metrics"]:
            pipeline.prometheus_registry = CollectorRegistry(auto_describe=True)
        pipeline.meter_provider = _meter_provider(
            settings, resource, metric_readers, views, pipeline.prometheus_registry
        )
        pipeline.logger_provider = _logger_provider(settings, resource, log_record_processors)

        trace.set_tracer_provider(pipeline.tracer_provider)
        metrics.set_meter_provider(pipeline.meter_provider)
        _logs.set_logger_provider(pipeline.logger_provider)
        # Imported only now: opentelemetry.propagate reads OTEL_PROPAGATORS at import time and
        # raises on an unknown name, which load_settings() has just replaced.
        from opentelemetry import propagate

        propagate.set_global_textmap(_propagator(settings.propagators))
        _pipeline = pipeline
        atexit.register(pipeline.shutdown, 5_000)
        from chenu_otel.logging import ensure_logging

        ensure_logging()
        return pipeline


def shutdown(timeout_millis: int = 10_000) -> bool:
    """Flush and stop the pipeline within `timeout_millis`. True when everything was flushed."""
    pipeline = _pipeline
    return pipeline.shutdown(timeout_millis) if pipeline is not None else True


# --- resource -------------------------------------------------------------------------------


def _resource(
    settings: Settings,
    service_name: str | None,
    service_version: str | None,
    environment: str | None,
    extra: dict[str, str] | None,
) -> Resource:
    attributes: dict[str, str] = {}
    if service_name:
        attributes["service.name"] = service_name
    if service_version:
        attributes["service.version"] = service_version
    if environment:
        attributes[DEPLOYMENT_ENVIRONMENT] = environment
    attributes.update(extra or {})
    # The environment overrides the code's defaults.
    attributes.update(settings.resource_attributes)
    if settings.service_name:
        attributes["service.name"] = settings.service_name
    return Resource.create(attributes)


# --- traces ---------------------------------------------------------------------------------


def _tracer_provider(
    settings: Settings, resource: Resource, extra: Sequence[SpanProcessor]
) -> TracerProvider:
    limits = settings.limits
    provider = TracerProvider(
        resource=resource,
        sampler=_sampler(settings.sampler, settings.sampler_arg),
        span_limits=SpanLimits(
            max_attributes=limits.attribute_count,
            max_attribute_length=limits.attribute_value_length,
            max_span_attributes=limits.span_attribute_count,
            max_span_attribute_length=limits.span_attribute_value_length,
            max_events=limits.span_event_count,
            max_links=limits.span_link_count,
            max_event_attributes=limits.event_attribute_count,
            max_link_attributes=limits.link_attribute_count,
        ),
        shutdown_on_exit=False,
    )
    for processor in extra:
        provider.add_span_processor(processor)
    bsp = settings.bsp
    for name in settings.exporters["traces"]:
        exporter = _build("traces", name, settings.otlp["traces"])
        if exporter is not None:
            provider.add_span_processor(
                BatchSpanProcessor(
                    ScrubbingSpanExporter(exporter),
                    max_queue_size=bsp.max_queue_size,
                    schedule_delay_millis=bsp.schedule_delay_millis,
                    max_export_batch_size=bsp.max_export_batch_size,
                    export_timeout_millis=bsp.export_timeout_millis,
                )
            )
    return provider


def _sampler(name: str, ratio: float) -> Sampler:
    root: Sampler
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(ratio)
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


# --- metrics --------------------------------------------------------------------------------

_EXEMPLAR_FILTERS: dict[str, Callable[[], ExemplarFilter]] = {
    "trace_based": TraceBasedExemplarFilter,
    "always_on": AlwaysOnExemplarFilter,
    "always_off": AlwaysOffExemplarFilter,
}


def _meter_provider(
    settings: Settings,
    resource: Resource,
    extra: Sequence[MetricReader],
    views: Sequence[View],
    registry: CollectorRegistry | None,
) -> MeterProvider:
    readers: list[MetricReader] = list(extra)
    for name in settings.exporters["metrics"]:
        if name == "prometheus":
            continue  # the pull reader below serves it
        exporter = _build("metrics", name, settings.otlp["metrics"])
        if exporter is not None:
            readers.append(
                PeriodicExportingMetricReader(
                    exporter,
                    export_interval_millis=settings.metric_export_interval_millis,
                    export_timeout_millis=settings.metric_export_timeout_millis,
                )
            )
    if registry is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        readers.append(PrometheusMetricReader(registry=registry))
    return MeterProvider(
        metric_readers=readers,
        resource=resource,
        exemplar_filter=_EXEMPLAR_FILTERS[settings.exemplar_filter](),
        shutdown_on_exit=False,
        views=views,
    )


# --- logs -----------------------------------------------------------------------------------


def _logger_provider(
    settings: Settings, resource: Resource, extra: Sequence[LogRecordProcessor]
) -> LoggerProvider:
    limits = settings.limits
    provider = LoggerProvider(
        resource=resource,
        shutdown_on_exit=False,
        log_record_limits=LogRecordLimits(
            max_attributes=limits.log_attribute_count,
            max_attribute_length=limits.log_attribute_value_length,
        ),
    )
    for processor in extra:
        provider.add_log_record_processor(processor)
    blrp = settings.blrp
    for name in settings.exporters["logs"]:
        exporter = _build("logs", name, settings.otlp["logs"])
        if exporter is not None:
            provider.add_log_record_processor(
                BatchLogRecordProcessor(
                    exporter,
                    max_queue_size=blrp.max_queue_size,
                    schedule_delay_millis=blrp.schedule_delay_millis,
                    max_export_batch_size=blrp.max_export_batch_size,
                    export_timeout_millis=blrp.export_timeout_millis,
                )
            )
    return provider


# --- shared ---------------------------------------------------------------------------------


# Per signal: the console exporter, the OTLP exporter class for each protocol ("module:class",
# imported only when used), and the fork-safe wrapper.
_EXPORTERS: dict[Signal, tuple[Callable[[], Any], str, str, Callable[[Callable[[], Any]], Any]]] = {
    "traces": (
        ConsoleSpanExporter,
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter",
        lambda factory: _ForkSafeSpanExporter(factory),
    ),
    "metrics": (
        ConsoleMetricExporter,
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
        lambda factory: _ForkSafeMetricExporter(factory),
    ),
    "logs": (
        ConsoleLogRecordExporter,
        "opentelemetry.exporter.otlp.proto.grpc._log_exporter:OTLPLogExporter",
        "opentelemetry.exporter.otlp.proto.http._log_exporter:OTLPLogExporter",
        lambda factory: _ForkSafeLogExporter(factory),
    ),
}


def _build(signal: Signal, name: str, otlp: OtlpSettings) -> Any:
    """Create one exporter; a failure (bad certificate path, missing package) is a warning."""
    console, grpc_class, http_class, fork_safe = _EXPORTERS[signal]
    try:
        if name == "console":
            return console()
        module, _, cls = (grpc_class if otlp.protocol == "grpc" else http_class).partition(":")
        exporter_class = getattr(importlib.import_module(module), cls)
        arguments = _otlp_arguments(otlp)
        return fork_safe(lambda: exporter_class(**arguments))
    except Exception as exc:
        _logger.warning(
            "chenu-otel: could not create the %s %s exporter (%s: %s); %s are not exported",
            name,
            signal,
            type(exc).__name__,
            exc,
            signal,
        )
        return None


def _otlp_arguments(otlp: OtlpSettings) -> dict[str, Any]:
    if otlp.protocol == "grpc":
        from grpc import Compression as GrpcCompression

        gzip, plain = GrpcCompression.Gzip, GrpcCompression.NoCompression
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

        gzip, plain = HttpCompression.Gzip, HttpCompression.NoCompression
    return {
        "endpoint": otlp.endpoint,
        "headers": dict(otlp.headers),
        "timeout": otlp.timeout_seconds,
        "compression": gzip if otlp.compression == "gzip" else plain,
    }


def _propagator(names: Sequence[str]) -> CompositePropagator:
    propagators = []
    for name in names:
        entry = next(iter(entry_points(group="opentelemetry_propagator", name=name)))
        propagators.append(entry.load()())
    return CompositePropagator(propagators)


def _bounded(work: Callable[[], bool], timeout_millis: int) -> bool:
    """Run `work` in a daemon thread and wait at most `timeout_millis` for it.

    Exporters can hang on an unresponsive collector; the caller (request path, interpreter
    exit) must not.
    """
    outcome: list[bool] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception:
            _logger.exception("chenu-otel: flushing telemetry failed")
            outcome.append(False)

    worker = threading.Thread(target=run, name="chenu-otel-flush", daemon=True)
    worker.start()
    worker.join(timeout_millis / 1000.0)
    return bool(outcome and outcome[0])


class _ForkSafe(Generic[E]):
    """Holds an exporter and re-creates it when used in a forked child.

    A gRPC channel or HTTP connection pool opened in the parent must not be used by workers
    forked from it (uvicorn --workers, gunicorn --preload): each process gets its own.
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


class _ForkSafeSpanExporter(_ForkSafe[SpanExporter], SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return self._current().export(spans)

    def shutdown(self) -> None:
        self._current().shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._current().force_flush(timeout_millis)


class _ForkSafeLogExporter(_ForkSafe[LogRecordExporter], LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return self._current().export(batch)

    def shutdown(self) -> None:
        self._current().shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._current().force_flush(timeout_millis)


class _ForkSafeMetricExporter(_ForkSafe[MetricExporter], MetricExporter):
    def __init__(self, factory: Callable[[], MetricExporter]) -> None:
        _ForkSafe.__init__(self, factory)
        inner = self._exporter
        # Temporality and aggregation preferences are the inner exporter's.
        MetricExporter.__init__(
            self,
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self._current().export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._current().shutdown(timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._current().force_flush(timeout_millis)


def reset_for_tests() -> None:
    """Shut the pipeline down and forget it, so that `configure()` can run again.

    For test suites only: the OpenTelemetry API lets a process set each global provider once,
    so this also clears those guards (as OpenTelemetry's own test utilities do).
    """
    global _pipeline
    with _lock:
        if _pipeline is not None:
            _pipeline.shutdown(5_000)
        _pipeline = None
        from opentelemetry.util._once import Once

        trace._TRACER_PROVIDER_SET_ONCE = Once()
        trace._TRACER_PROVIDER = None
        metrics._internal._METER_PROVIDER_SET_ONCE = Once()
        metrics._internal._METER_PROVIDER = None
        _logs._internal._LOGGER_PROVIDER_SET_ONCE = Once()
        _logs._internal._LOGGER_PROVIDER = None
