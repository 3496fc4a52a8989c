"""Build the three SDK providers from validated `Settings`: one function per signal.

Each function turns settings into processors or readers around the exporters that
`chenu_otel.exporters.build_exporter` makes, and passes every limit, interval and filter
explicitly (the SDK never falls back to reading the environment for them).
`chenu_otel.configure()` calls these and puts the result behind the global proxies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Final, TypedDict

from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from chenu_otel.exporters import build_exporter
from chenu_otel.scrubbing import ScrubbingSpanExporter
from chenu_otel.settings import (
    BatchSettings,
    ExemplarFilterName,
    Exporter,
    SamplerName,
    Settings,
    Signal,
)

__all__ = [
    "DEPLOYMENT_ENVIRONMENT",
    "logger_provider",
    "meter_provider",
    "propagator",
    "resource",
    "tracer_provider",
]

#: Resource attribute for the deployment environment (semconv ``deployment.environment.name``).
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"

_EXEMPLAR_FILTERS: Final[Mapping[ExemplarFilterName, type[ExemplarFilter]]] = {
    ExemplarFilterName.TRACE_BASED: TraceBasedExemplarFilter,
    ExemplarFilterName.ALWAYS_ON: AlwaysOnExemplarFilter,
    ExemplarFilterName.ALWAYS_OFF: AlwaysOffExemplarFilter,
}


def resource(
    settings: Settings,
    service_name: str | None,
    service_version: str | None,
    environment: str | None,
    extra: Mapping[str, str] | None,
) -> Resource:
    """The resource: `configure()`'s arguments as defaults, the environment overriding them."""
    attributes: dict[str, str] = {}
    if service_name:
        attributes["service.name"] = service_name
    if service_version:
        attributes["service.version"] = service_version
    if environment:
        attributes[DEPLOYMENT_ENVIRONMENT] = environment
    attributes.update(extra or {})
    attributes.update(settings.resource_attributes)
    if settings.service_name:
        attributes["service.name"] = settings.service_name
    return Resource.create(attributes)


def tracer_provider(
    settings: Settings, resource: Resource, extra: Sequence[SpanProcessor]
) -> TracerProvider:
    """A TracerProvider with the sampler and limits of `settings`; `extra` processors first,
    then one batch processor per configured exporter, secrets scrubbed before export."""
    limits = settings.limits
    provider = TracerProvider(
        resource=resource,
        sampler=sampler(settings.sampler, settings.sampler_arg),
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
    for name in settings.exporters[Signal.TRACES]:
        exporter = build_exporter(Signal.TRACES, name, settings)
        if exporter is not None:
            provider.add_span_processor(
                BatchSpanProcessor(ScrubbingSpanExporter(exporter), **_batching(settings.bsp))
            )
    return provider


class _Batching(TypedDict):
    max_queue_size: int
    schedule_delay_millis: int
    max_export_batch_size: int
    export_timeout_millis: int


def _batching(batch: BatchSettings) -> _Batching:
    """The keyword arguments of the SDK's batch processors, from OTEL_BSP_* / OTEL_BLRP_*."""
    return _Batching(
        max_queue_size=batch.max_queue_size,
        schedule_delay_millis=batch.schedule_delay_millis,
        max_export_batch_size=batch.max_export_batch_size,
        export_timeout_millis=batch.export_timeout_millis,
    )


def sampler(name: SamplerName, ratio: float) -> Sampler:
    """The SDK sampler for an ``OTEL_TRACES_SAMPLER`` name and its ratio argument."""
    root: Sampler
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(ratio)
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def meter_provider(
    settings: Settings,
    resource: Resource,
    extra: Sequence[MetricReader],
    views: Sequence[View],
) -> MeterProvider:
    """A MeterProvider with `views` and the exemplar filter of `settings`; `extra` readers
    (e.g. the Prometheus pull reader) next to one periodic reader per configured exporter."""
    readers: list[MetricReader] = list(extra)
    for name in settings.exporters[Signal.METRICS]:
        if name is Exporter.PROMETHEUS:
            continue  # a pull reader, passed in `extra` by configure()
        exporter = build_exporter(Signal.METRICS, name, settings)
        if exporter is not None:
            readers.append(
                PeriodicExportingMetricReader(
                    exporter,
                    export_interval_millis=settings.metric_export_interval_millis,
                    export_timeout_millis=settings.metric_export_timeout_millis,
                )
            )
    return MeterProvider(
        metric_readers=readers,
        resource=resource,
        exemplar_filter=_EXEMPLAR_FILTERS[settings.exemplar_filter](),
        shutdown_on_exit=False,
        views=views,
    )


def logger_provider(
    settings: Settings, resource: Resource, extra: Sequence[LogRecordProcessor]
) -> LoggerProvider:
    """A LoggerProvider with the log record limits of `settings`; `extra` processors first,
    then one batch processor per configured exporter."""
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
    for name in settings.exporters[Signal.LOGS]:
        exporter = build_exporter(Signal.LOGS, name, settings)
        if exporter is not None:
            provider.add_log_record_processor(
                BatchLogRecordProcessor(exporter, **_batching(settings.blrp))
            )
    return provider


def propagator(names: Sequence[str]) -> TextMapPropagator:
    """The composite propagator of the installed propagators called `names`."""
    propagators = []
    for name in names:
        entry = next(iter(entry_points(group="opentelemetry_propagator", name=name)))
        propagators.append(entry.load()())
    return CompositePropagator(propagators)
