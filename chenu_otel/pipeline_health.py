"""The app's own telemetry pipeline health: what the SDK dropped or failed to export, counted.

When the collector is unreachable or refuses (queue full, memory limit), the SDK's batch
processors queue and then drop, and its exporters give up after their timeout. OpenTelemetry
Python 1.45 counts both itself ("SDK self-observability", semconv ``otel.sdk.*``), but only
when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true`` at the moment a component is built, and
that one switch also turns on per-span and per-log-record counters that double the cost of a
span (measured here: ≈ 15 → 35 µs per span).

`batch_pipeline_metrics()` switches it on only while chenu-otel builds its batch processors and
OTLP exporters, so the app exports, through OTLP like its other metrics:

=================================================  ==========================================
``otel.sdk.processor.span.processed``              spans handed to export; with ``error.type``
``otel.sdk.processor.log.processed``               (``queue_full``) the ones dropped
``otel.sdk.processor.{span,log}.queue.size``       items waiting in the batch queue
``otel.sdk.processor.{span,log}.queue.capacity``   its bound
``otel.sdk.exporter.{span,log}.exported``          items sent; with ``error.type`` the ones
``otel.sdk.exporter.metric_data_point.exported``   whose export failed after all retries
=================================================  ==========================================

Tracers and loggers created afterwards get no per-item counters. Setting the variable yourself
(``true`` or ``false``) wins: then it is left alone. The Prometheus names are
`PROMETHEUS_NAMES`; deploy/prometheus/rules/chenu-telemetry-pipeline.yml alerts on drops.

>>> with batch_pipeline_metrics():  # doctest: +SKIP
...     processor = BatchSpanProcessor(exporter)

or, on the function that builds the providers, ``@counting_losses``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, MutableMapping
from typing import Final, ParamSpec, TypeVar

from chenu_otel.catalogue import InstrumentKind, prometheus_name

__all__ = [
    "DROPPED_OR_FAILED",
    "PROMETHEUS_NAMES",
    "SDK_INTERNAL_METRICS_ENABLED",
    "batch_pipeline_metrics",
    "counting_losses",
]

P = ParamSpec("P")
R = TypeVar("R")

#: The SDK's switch for its own metrics (``opentelemetry.sdk.environment_variables``).
SDK_INTERNAL_METRICS_ENABLED: Final = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"

#: Counters whose points carrying ``error.type`` are items that never reached the collector,
#: with their units (semconv ``otel.sdk.*``).
DROPPED_OR_FAILED: Final = {
    "otel.sdk.processor.span.processed": "{span}",
    "otel.sdk.processor.log.processed": "{log_record}",
    "otel.sdk.exporter.span.exported": "{span}",
    "otel.sdk.exporter.log.exported": "{log_record}",
    "otel.sdk.exporter.metric_data_point.exported": "{data_point}",
}

#: OTel name → the name Prometheus stores after the standard OTLP translation.
PROMETHEUS_NAMES: Final = {
    name: prometheus_name(name, unit, InstrumentKind.COUNTER)
    for name, unit in DROPPED_OR_FAILED.items()
}


@contextlib.contextmanager
def batch_pipeline_metrics(environ: MutableMapping[str, str] | None = None) -> Iterator[None]:
    """Batch processors and OTLP exporters built inside the block count what they drop, fail to
    export and hold in their queues; nothing built after the block is affected. A value of the
    variable set before the block (``true`` or ``false``) is kept as it is."""
    env = os.environ if environ is None else environ
    if SDK_INTERNAL_METRICS_ENABLED in env:
        yield
        return
    env[SDK_INTERNAL_METRICS_ENABLED] = "true"
    try:
        yield
    finally:
        env.pop(SDK_INTERNAL_METRICS_ENABLED, None)


def counting_losses(build: Callable[P, R]) -> Callable[P, R]:
    """Decorator for the function that builds the providers: whatever batch processors and
    OTLP exporters it makes count their losses (`batch_pipeline_metrics` around each call)."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with batch_pipeline_metrics():
            return build(*args, **kwargs)

    return wrapper
