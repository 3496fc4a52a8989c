"""FastAPI's own OpenTelemetry telemetry next to chenu-otel: one owner per request.

FastAPI >= 0.160 traces and measures every request itself as soon as a global provider is set
(a server span, ``http.server.request.duration``, active requests, exception log records and
three operation spans per request). Next to `MonitoringMiddleware` that would record each
request twice, so chenu-otel switches it off for the apps it instruments.

**The public switch** is FastAPI's constructor argument; create the app with it::

    from fastapi import FastAPI
    from chenu_otel.fastapi_telemetry import NATIVE_TELEMETRY_OFF

    app = FastAPI(telemetry=NATIVE_TELEMETRY_OFF)

**The fallback** for an app created without it: `switch_off_native_telemetry(app)` (called by
``instrument_app``) edits the per-app configuration FastAPI keeps in the private attribute
``app._telemetry``; FastAPI reads it on every request, so this also works from a startup hook.
This module is the only place chenu-otel touches FastAPI's private API. Checked against
FastAPI :data:`CHECKED_FASTAPI` (``tests/unit/test_fastapi_telemetry.py`` fails with a message
when a FastAPI upgrade changes it).
"""

from __future__ import annotations

import logging
from typing import Any, Final

__all__ = [
    "CHECKED_FASTAPI",
    "NATIVE_TELEMETRY_OFF",
    "NATIVE_TELEMETRY_SCOPE_KEY",
    "instrumented_by_contrib",
    "native_telemetry_config",
    "switch_off_native_telemetry",
    "warn_native_telemetry_on",
]

_log = logging.getLogger("chenu_otel.middleware")

#: FastAPI releases the private accesses below were checked against.
CHECKED_FASTAPI: Final = ">=0.165,<0.166"

#: ``FastAPI(telemetry=NATIVE_TELEMETRY_OFF)``: no native spans, metrics or log records.
NATIVE_TELEMETRY_OFF: Final = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}

#: The ASGI scope key FastAPI's telemetry sets on a request it records.
NATIVE_TELEMETRY_SCOPE_KEY: Final = "fastapi.telemetry"


def native_telemetry_config(app: Any) -> dict[str, Any] | None:
    """FastAPI's per-app telemetry configuration (private ``app._telemetry``), or None when
    `app` has none (not a FastAPI app, or a FastAPI without native telemetry)."""
    config = getattr(app, "_telemetry", None)
    return config if isinstance(config, dict) else None


def switch_off_native_telemetry(app: Any) -> bool:
    """Switch FastAPI's native telemetry off for `app`; False when `app` has none to switch."""
    config = native_telemetry_config(app)
    if config is None:
        return False
    config.update(NATIVE_TELEMETRY_OFF)
    return True


def instrumented_by_contrib(app: Any) -> bool:
    """True when contrib's ``FastAPIInstrumentor.instrument_app`` ran on `app` (it marks the app
    with the private ``_is_instrumented_by_opentelemetry``; checked against 0.66b1)."""
    return bool(getattr(app, "_is_instrumented_by_opentelemetry", False))


def warn_native_telemetry_on() -> None:
    """Warn that FastAPI's native telemetry also records the requests chenu-otel does."""
    _log.warning(
        "FastAPI's native telemetry is also tracing this app: every request gets two server "
        "spans and two duration measurements; call chenu_otel.instrument_app(app) or create the "
        "app with FastAPI(telemetry=chenu_otel.fastapi_telemetry.NATIVE_TELEMETRY_OFF)"
    )
