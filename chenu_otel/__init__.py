"""chenu-otel: OpenTelemetry-first telemetry for CHE·NU FastAPI services.

One call turns a service into an OTLP emitter of correlated traces, metrics and logs, configured
by the standard ``OTEL_*`` environment variables:

>>> import chenu_otel
>>> chenu_otel.configure(service_name="chenu-backend")  # doctest: +SKIP

With zero code, ``opentelemetry-instrument python app.py`` does the same through this package's
``opentelemetry_distro``/``opentelemetry_configurator`` entry points.

The data path is app → OTLP → collector → backends: this package is the app side (it emits only
OTLP); ``collector/`` holds the collector distribution and its configs, ``deploy/`` the
backends, and `chenu_otel.stack` runs all of them on loopback (``chenu-otel stack run``). Inside:
`chenu_otel.catalogue` declares every metric, `chenu_otel.recorders` records them,
`chenu_otel.settings` reads ``OTEL_*``, `chenu_otel.pipeline` builds the providers behind the
proxies of `chenu_otel.proxies`, and `chenu_otel.compat` keeps the earlier module's API.
"""

from chenu_otel.instrumentation import instrument_app, instrument_fastapi
from chenu_otel.logging import bind_context, clear_context, get_logger, setup_logging
from chenu_otel.middleware import MonitoringMiddleware
from chenu_otel.pipeline import Pipeline, configure, current_pipeline, shutdown
from chenu_otel.tracing import add_span_attributes, create_span, get_tracer, traced

__all__ = [
    "MonitoringMiddleware",
    "Pipeline",
    "add_span_attributes",
    "bind_context",
    "clear_context",
    "configure",
    "create_span",
    "current_pipeline",
    "get_logger",
    "get_tracer",
    "instrument_app",
    "instrument_fastapi",
    "setup_logging",
    "shutdown",
    "traced",
]
