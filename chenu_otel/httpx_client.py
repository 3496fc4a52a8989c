"""Outbound HTTP through httpx: client spans, propagation and ``http.client.request.duration``.

The contrib ``HTTPXClientInstrumentor`` (the release of the other contrib instrumentations)
patches httpx's transports once per process, so every ``httpx.Client`` and ``AsyncClient``
gets, per request:

* a CLIENT span named after the method (``GET``), child of the current span, with the stable
  HTTP semantic conventions when ``OTEL_SEMCONV_STABILITY_OPT_IN`` contains ``http`` (the distro
  sets it): ``http.request.method``, ``url.full``, ``server.address``, ``server.port``,
  ``http.response.status_code``, ``network.protocol.version``, ``error.type``;
* the current context injected into the request headers by the global propagators
  (``traceparent`` by default), so the called service continues the same trace;
* ``http.client.request.duration`` (s) on chenu-otel's meter provider, its attributes cut by the
  catalogue's view to ``http.request.method``, ``server.address``,
  ``http.response.status_code`` and ``error.type`` (ports and URLs never become labels);
* the span's ``url.full`` and captured headers
  (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST``/``..._RESPONSE``) scrubbed by
  `chenu_otel.scrubbing` in the request and response hooks, so credentials in a query string
  (``?api_key=``), in the userinfo or in a captured ``Authorization`` header never reach a span
  processor.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Final

from chenu_otel.proxies import METER_PROVIDER, TRACER_PROVIDER
from chenu_otel.scrubbing import scrub_attributes

__all__ = [
    "INSTRUMENTOR_KWARGS",
    "SEMCONV_OPT_IN",
    "instrument_httpx_clients",
    "scrub_span_attributes",
    "stable_http_semconv",
]

_log = logging.getLogger("chenu_otel.instrumentation")

#: The variable selecting the HTTP semantic conventions contrib instrumentations follow.
SEMCONV_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"


def scrub_span_attributes(span: Any) -> None:
    """Overwrite the span's attributes that carry a credential with their scrubbed value."""
    try:
        attributes = getattr(span, "attributes", None)
        if not attributes or not span.is_recording():
            return
        scrubbed = scrub_attributes(attributes)
        if scrubbed is not None:
            for key, value in scrubbed.items():
                if value is not attributes[key]:
                    span.set_attribute(key, value)
    except Exception:  # telemetry never raises into the request
        _log.debug("scrubbing an httpx span failed", exc_info=True)


def _request_hook(span: Any, request: Any) -> None:
    scrub_span_attributes(span)


def _response_hook(span: Any, request: Any, response: Any) -> None:
    scrub_span_attributes(span)


async def _async_request_hook(span: Any, request: Any) -> None:
    scrub_span_attributes(span)


async def _async_response_hook(span: Any, request: Any, response: Any) -> None:
    scrub_span_attributes(span)


#: What chenu-otel passes to ``HTTPXClientInstrumentor().instrument()`` (the distro too).
INSTRUMENTOR_KWARGS: Final[dict[str, Any]] = {
    "tracer_provider": TRACER_PROVIDER,
    "meter_provider": METER_PROVIDER,
    "request_hook": _request_hook,
    "response_hook": _response_hook,
    "async_request_hook": _async_request_hook,
    "async_response_hook": _async_response_hook,
}


def stable_http_semconv() -> bool:
    """True when ``OTEL_SEMCONV_STABILITY_OPT_IN`` selects the stable HTTP conventions."""
    tokens = {token.strip() for token in os.environ.get(SEMCONV_OPT_IN, "").split(",")}
    return bool(tokens & {"http", "http/dup"})


def instrument_httpx_clients() -> bool:
    """Instrument every httpx client of the process, once; True if this call did it.

    A process already instrumented (by ``opentelemetry-instrument`` through chenu-otel's distro,
    which passes the same hooks, or by an earlier call) is left as it is, so no request is
    recorded twice.
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        return False
    if not stable_http_semconv():
        _log.warning(
            "chenu-otel: %s does not contain 'http': outbound httpx spans and metrics follow "
            "the old HTTP conventions (http.client.duration in ms); set %s=http before the "
            "first instrumentation runs",
            SEMCONV_OPT_IN,
            SEMCONV_OPT_IN,
        )
    instrumentor.instrument(**INSTRUMENTOR_KWARGS)
    return True
