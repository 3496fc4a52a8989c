"""`configure()`: build the three SDK providers from ``OTEL_*`` and put them behind the proxies.

The first call installs chenu-otel's proxy providers as the OpenTelemetry globals
(`chenu_otel.proxies`); every call builds a `Pipeline` from the validated settings and swaps it
in behind them. Calling `configure()` again with the same arguments returns the pipeline it
already built; with different arguments it applies them (a new pipeline replaces the old one,
which is flushed and shut down) and logs a warning naming what changed. `shutdown()` flushes
and stops the pipeline within a bound; `reset()` also forgets it (for test suites). After
``os.fork()`` the SDK restarts the batch workers and gives the child its own
``service.instance.id``; the exporters open their own connection in the child.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from opentelemetry import propagate
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from chenu_otel import catalogue, pipeline_health, providers, proxies
from chenu_otel.logging import ensure_logging
from chenu_otel.settings import Exporter, Settings, Signal, load_settings

__all__ = ["ConfigureOptions", "Pipeline", "configure", "current_pipeline", "reset", "shutdown"]

_logger = logging.getLogger("chenu_otel")


@dataclass(frozen=True)
class ConfigureOptions:
    """The keyword arguments of `configure()`; two calls are "the same" when these are equal."""

    service_name: str | None = None
    service_version: str | None = None
    environment: str | None = None
    resource_attributes: Mapping[str, str] | None = None
    metrics_endpoint: bool = False
    span_processors: Sequence[SpanProcessor] = ()
    metric_readers: Sequence[MetricReader] = ()
    log_record_processors: Sequence[LogRecordProcessor] = ()
    views: Sequence[View] | None = None

    def differences(self, other: ConfigureOptions) -> list[str]:
        """``name: old -> new`` for each argument that differs from `other`."""
        return [
            f"{f.name}: {getattr(other, f.name)!r} -> {getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


@dataclass
class Pipeline:
    """What `configure()` built; returned so callers and tests can flush or inspect it."""

    settings: Settings
    options: ConfigureOptions
    resource: Resource
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    #: The prometheus_client registry behind the ``/metrics`` pull endpoint, when configured.
    prometheus_registry: Any = None
    _shutdown_done: bool = field(default=False, repr=False)

    @property
    def enabled(self) -> bool:
        """False when ``OTEL_SDK_DISABLED=true``: nothing is recorded or exported."""
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


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    metrics_endpoint: bool = False,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_record_processors: Sequence[LogRecordProcessor] = (),
    views: Sequence[View] | None = None,
) -> Pipeline:
    """Build the TracerProvider, MeterProvider and LoggerProvider and make them global.

    Logging is set up too (JSON lines on stdout and OTel LogRecords) unless
    `chenu_otel.logging.setup_logging()` ran before. Keyword arguments are defaults:
    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` win over them. Everything else comes
    from the standard ``OTEL_*`` variables. Malformed values produce a warning naming the
    variable and fall back to the documented default. A second call with the same arguments
    returns the existing pipeline; with different ones it builds and installs a new pipeline,
    shuts the old one down and logs a warning naming the changed arguments.

    `metrics_endpoint` adds the pull reader whose data `chenu_otel.metrics.get_metrics()`
    renders for a ``/metrics`` route (also added when ``OTEL_METRICS_EXPORTER`` lists
    ``prometheus``). `span_processors`, `metric_readers` and `log_record_processors` are added
    next to the exporters configured from the environment (tests pass in-memory ones here);
    `views` replace the catalogue's cardinality views.

    >>> import chenu_otel
    >>> pipeline = chenu_otel.configure(service_name="chenu-backend")  # doctest: +SKIP
    """
    options = ConfigureOptions(
        service_name=service_name,
        service_version=service_version,
        environment=environment,
        resource_attributes=dict(resource_attributes) if resource_attributes else None,
        metrics_endpoint=metrics_endpoint,
        span_processors=tuple(span_processors),
        metric_readers=tuple(metric_readers),
        log_record_processors=tuple(log_record_processors),
        views=tuple(views) if views is not None else None,
    )
    global _pipeline
    with _lock:
        previous = _pipeline
        if previous is not None and previous.options == options:
            return previous
        pipeline = _build(options)
        foreign = proxies.install()
        if foreign:
            _logger.warning(
                "chenu-otel: another OpenTelemetry provider was made global for %s before "
                "configure(); chenu-otel's own telemetry uses its pipeline, code asking "
                "OpenTelemetry for the global provider keeps getting the other one",
                ", ".join(foreign),
            )
        proxies.set_providers(
            pipeline.tracer_provider, pipeline.meter_provider, pipeline.logger_provider
        )
        propagate.set_global_textmap(providers.propagator(pipeline.settings.propagators))
        _pipeline = pipeline
    if previous is not None:
        _logger.warning(
            "chenu-otel: configure() called again with different arguments (%s); applied: the "
            "new pipeline replaces the previous one, which is shut down",
            "; ".join(options.differences(previous.options)),
        )
        previous.shutdown(5_000)
    ensure_logging()
    return pipeline


@pipeline_health.counting_losses
def _build(options: ConfigureOptions) -> Pipeline:
    settings = load_settings()
    _apply_sdk_environment(settings)
    resource = providers.resource(
        settings,
        options.service_name,
        options.service_version,
        options.environment,
        options.resource_attributes,
    )
    pipeline = Pipeline(settings=settings, options=options, resource=resource)
    if settings.sdk_disabled:
        _logger.info("chenu-otel: OTEL_SDK_DISABLED=true, telemetry is not recorded")
        return pipeline
    readers = list(options.metric_readers)
    if options.metrics_endpoint or Exporter.PROMETHEUS in settings.exporters[Signal.METRICS]:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        pipeline.prometheus_registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=pipeline.prometheus_registry))
    views = options.views if options.views is not None else catalogue.views()
    pipeline.tracer_provider = providers.tracer_provider(
        settings, resource, options.span_processors
    )
    pipeline.meter_provider = providers.meter_provider(settings, resource, readers, views)
    pipeline.logger_provider = providers.logger_provider(
        settings, resource, options.log_record_processors
    )
    return pipeline


def _apply_sdk_environment(settings: Settings) -> None:
    """Give the SDK code paths that read the environment themselves the validated values (see
    `chenu_otel.settings`): the only place chenu-otel writes ``os.environ``."""
    for name, value in settings.sdk_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
        _logger.warning(
            "chenu-otel: %s is read by the SDK's exporters themselves: %s for this process",
            name,
            "removed" if value is None else "reduced to its valid entries",
        )


def shutdown(timeout_millis: int = 10_000) -> bool:
    """Flush and stop the pipeline within `timeout_millis`. True when everything was flushed."""
    pipeline = _pipeline
    return pipeline.shutdown(timeout_millis) if pipeline is not None else True


def reset(timeout_millis: int = 5_000) -> None:
    """Shut the pipeline down, put no-op providers behind the proxies and forget the pipeline,
    so that the next `configure()` starts afresh (public, for test suites)."""
    global _pipeline
    with _lock:
        if _pipeline is not None:
            _pipeline.shutdown(timeout_millis)
        _pipeline = None
        proxies.set_providers()


@atexit.register
def _shutdown_at_exit() -> None:
    shutdown(5_000)


def _bounded(work: Callable[[], bool], timeout_millis: int) -> bool:
    """Run `work` in a daemon thread and wait at most `timeout_millis` for it.

    Exporters can hang on an unresponsive collector; the caller (request path, interpreter
    exit) must not.
    """
    done = threading.Event()
    succeeded = threading.Event()

    def run() -> None:
        try:
            if work():
                succeeded.set()
        except Exception:
            _logger.exception("chenu-otel: flushing telemetry failed")
        finally:
            done.set()

    threading.Thread(target=run, name="chenu-otel-flush", daemon=True).start()
    done.wait(timeout_millis / 1000.0)
    return succeeded.is_set()
