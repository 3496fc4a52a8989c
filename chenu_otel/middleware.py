"""Request monitoring for ASGI apps: one server span, one duration measurement, one access log.

``MonitoringMiddleware`` is pure ASGI (no ``BaseHTTPMiddleware``) and is the single owner of the
HTTP server span and of ``http.server.request.duration``: chenu-otel does not use
``FastAPIInstrumentor`` (no ``http receive``/``http send`` sub-spans, no second histogram, no
per-request route re-matching). Per HTTP request it:

* continues the caller's trace (global propagators) and starts a SERVER span named
  ``{method} {route}`` with semconv attributes;
* takes the request id from ``X-Request-ID`` when it is safe (1-128 chars of ``[A-Za-z0-9._-]``),
  otherwise makes a fresh one; returns it in ``X-Request-ID`` with ``X-Process-Time`` (seconds
  until the response started);
* binds ``request_id`` and ``user_id`` into the structlog context for every log line of the
  request, and sets ``chenu.request.id`` / ``user.id`` on the span. The user id comes from the
  ``X-User-ID`` header (same safety rule); auth code that sets ``request.state.user_id`` gets it
  on the span and the access log too (bind it yourself with ``bind_context`` for earlier lines);
* records ``http.server.request.duration`` (route template from ``scope["route"]`` after the app
  ran; unmatched requests carry no ``http.route``, so they all fall in one series per
  method/status) inside the span, so the point carries the trace id as exemplar;
* tracks ``http.server.active_requests``; optionally request/response body sizes;
* records exceptions on the span (error status) and counts them in ``chenu.errors``;
* writes one structlog access line (``http_request``) inside the span: a JSON line on stdout
  and an OTel log record by default, either or none of them as ``CHENU_OTEL_ACCESS_LOG`` says
  (`chenu_otel.environment_variables`); the span carries the same data in any case.

WebSocket scopes get a SERVER span for the connection's life, connection counts and duration, and
message counts in/out. Other scopes (lifespan) pass straight through. Telemetry failures are
logged at debug level and never reach the application.

Usage::

    app.add_middleware(MonitoringMiddleware)
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final, Protocol

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from chenu_otel.environment_variables import AccessLogOutput
from chenu_otel.errors import mark_error
from chenu_otel.fastapi_telemetry import NATIVE_TELEMETRY_SCOPE_KEY, warn_native_telemetry_on
from chenu_otel.logging import NOT_EXPORTED_KEY, NOT_WRITTEN_KEY, get_logger
from chenu_otel.proxies import TRACER_PROVIDER
from chenu_otel.recorders import RECORDERS, normalize_method
from chenu_otel.settings import read_access_log_outputs

__all__ = ["MonitoringMiddleware", "safe_header_value"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_log = logging.getLogger(__name__)
_http: Final = RECORDERS.http
_websocket: Final = RECORDERS.websocket
_errors: Final = RECORDERS.errors
ACCESS_LOGGER: Final = "chenu_otel.access"
_access_log = get_logger(ACCESS_LOGGER)

REQUEST_ID_HEADER: Final = b"x-request-id"
USER_ID_HEADER: Final = b"x-user-id"
PROCESS_TIME_HEADER: Final = b"x-process-time"
_SAFE_ID: Final = re.compile(rb"[A-Za-z0-9._-]{1,128}")
_OWN_HEADERS: Final = frozenset({REQUEST_ID_HEADER, PROCESS_TIME_HEADER})


def _new_request_id() -> str:
    """A 128-bit random hex id; request ids need uniqueness, not cryptographic strength."""
    return f"{random.getrandbits(128):032x}"


def safe_header_value(raw: bytes | None) -> str | None:
    """`raw` decoded when it is 1-128 chars of ``[A-Za-z0-9._-]``, else None (never echoed)."""
    if raw is None or _SAFE_ID.fullmatch(raw) is None:
        return None
    return raw.decode("ascii")


class _HeaderGetter(Getter[Headers]):
    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier if k == name]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER: Final = _HeaderGetter()


class _PropagatorFields:
    """The header names the global propagator reads, re-computed when it changes."""

    def __init__(self) -> None:
        self.propagator: object = None
        self.names: frozenset[bytes] = frozenset()

    def of(self, propagator: Any) -> frozenset[bytes]:
        if propagator is not self.propagator:
            self.names = frozenset(f.lower().encode("latin-1") for f in propagator.fields)
            self.propagator = propagator
        return self.names


_propagator_fields: Final = _PropagatorFields()


def _extract_parent(headers: Headers) -> otel_context.Context | None:
    """The caller's trace context; the propagators run only when a header they read is present
    (most requests carry none, and extraction scans every header per propagator)."""
    fields = _propagator_fields.of(propagate.get_global_textmap())
    if not any(name in fields for name, _ in headers):
        return None
    return propagate.extract(headers, getter=_GETTER)


def _route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    root = scope.get("app_root_path") or ""
    return f"{root}{path}" if root and not path.startswith(root) else path


def _state_user_id(scope: Scope) -> str | None:
    state = scope.get("state")
    if isinstance(state, dict):
        value = state.get("user_id")
        if value is not None:
            return str(value)
    return None


class MonitoringMiddleware:
    """Pure ASGI request monitoring; see the module docstring for what it records.

    Options (all keyword-only): `record_body_sizes` adds the semconv request/response body size
    histograms (two more measurements per request); `active_requests` tracks
    ``http.server.active_requests``; `access_log` writes one structlog line per request (to
    the outputs ``CHENU_OTEL_ACCESS_LOG`` names, read here); `excluded_paths` are raw paths
    served without telemetry (e.g. health checks).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        record_body_sizes: bool = False,
        active_requests: bool = True,
        access_log: bool = True,
        excluded_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.record_body_sizes = record_body_sizes
        self.active_requests = active_requests
        outputs = read_access_log_outputs() if access_log else frozenset()
        self.access_log = bool(outputs)
        # Private keys of the access event that keep it out of the outputs not asked for.
        self.access_log_markers: dict[str, bool] = {}
        if AccessLogOutput.OTEL not in outputs:
            self.access_log_markers[NOT_EXPORTED_KEY] = True
        if AccessLogOutput.STDOUT not in outputs:
            self.access_log_markers[NOT_WRITTEN_KEY] = True
        self.excluded_paths = frozenset(excluded_paths)
        self.tracer = TRACER_PROVIDER.get_tracer("chenu_otel.middleware")
        self._native_telemetry_reported = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if NATIVE_TELEMETRY_SCOPE_KEY in scope and not self._native_telemetry_reported:
            self._native_telemetry_reported = True  # once per app
            warn_native_telemetry_on()
        if scope_type == "http" and scope.get("path") not in self.excluded_paths:
            await self._serve(_RequestTelemetry, scope, receive, send)
        elif scope_type == "websocket":
            await self._serve(_WebSocketTelemetry, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve(
        self, telemetry: type[_Telemetry], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the app with one request's (or connection's) telemetry around it."""
        try:
            session = telemetry(self, scope)
        except Exception:  # telemetry never raises into the request path
            _log.debug("%s set-up failed", telemetry.__name__, exc_info=True)
            await self.app(scope, receive, send)
            return
        error: BaseException | None = None
        try:
            await self.app(scope, session.wrap_receive(receive), session.wrap_send(send))
        except BaseException as exc:
            error = exc
            raise
        finally:
            session.finish(error)


class _Telemetry(Protocol):
    """What `MonitoringMiddleware._serve` needs from the state of one request or connection."""

    def __init__(self, mw: MonitoringMiddleware, scope: Scope) -> None: ...
    def wrap_receive(self, receive: Receive) -> Receive: ...
    def wrap_send(self, send: Send) -> Send: ...
    def finish(self, error: BaseException | None) -> None: ...


def _scan_ids(headers: Headers) -> tuple[str | None, str | None, bytes | None]:
    """(request id, user id, content-length) from the request headers, in one pass."""
    request_id = user_id = None
    content_length = None
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            request_id = safe_header_value(value)
        elif name == USER_ID_HEADER:
            user_id = safe_header_value(value)
        elif name == b"content-length":
            content_length = value
    return request_id, user_id, content_length


class _RequestTelemetry:
    """The telemetry state of one HTTP request (kept off the middleware for concurrency)."""

    __slots__ = (
        "content_length",
        "log_tokens",
        "method",
        "mw",
        "process_time",
        "request_id",
        "response_length",
        "scheme",
        "scope",
        "span",
        "start",
        "status",
        "token",
        "user_id",
    )

    def __init__(self, mw: MonitoringMiddleware, scope: Scope) -> None:
        self.start = time.perf_counter()
        self.mw = mw
        self.scope = scope
        headers: Headers = scope.get("headers") or []
        request_id, self.user_id, self.content_length = _scan_ids(headers)
        self.request_id = request_id or _new_request_id()
        self.method = normalize_method(scope.get("method", ""))
        self.status = 0
        self.process_time: float | None = None
        self.response_length: bytes | None = None

        self.scheme: str = scope.get("scheme", "http")
        attributes: dict[str, Any] = {
            "http.request.method": self.method,
            "url.path": scope.get("path", ""),
            "url.scheme": self.scheme,
            "network.protocol.version": scope.get("http_version", "1.1"),
            "chenu.request.id": self.request_id,
        }
        if self.method == "_OTHER":
            attributes["http.request.method_original"] = str(scope.get("method", ""))
        if self.user_id is not None:
            attributes["user.id"] = self.user_id
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        parent = _extract_parent(headers)
        self.span = mw.tracer.start_span(
            "HTTP" if self.method == "_OTHER" else self.method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        self.token = otel_context.attach(trace.set_span_in_context(self.span, parent))
        bound: dict[str, str] = {"request_id": self.request_id}
        if self.user_id is not None:
            bound["user_id"] = self.user_id
        self.log_tokens = structlog.contextvars.bind_contextvars(**bound)
        if mw.active_requests:
            _http.request_started(self.method, self.scheme)

    def wrap_receive(self, receive: Receive) -> Receive:
        return receive

    def wrap_send(self, send: Send) -> Send:
        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self.on_response_start(message)
            await send(message)

        return send_wrapper

    def on_response_start(self, message: Message) -> Message:
        try:
            self.status = int(message["status"])
            self.process_time = time.perf_counter() - self.start
            headers: Headers = []
            for name, value in message.get("headers") or ():
                if name.lower() in _OWN_HEADERS:
                    continue
                if name == b"content-length":
                    self.response_length = value
                headers.append((name, value))
            headers.append((REQUEST_ID_HEADER, self.request_id.encode("ascii")))
            headers.append((PROCESS_TIME_HEADER, f"{self.process_time:.6f}".encode("ascii")))
            return {**message, "headers": headers}
        except Exception:  # telemetry never raises into the request path
            _log.debug("response header telemetry failed", exc_info=True)
            return message

    def finish(self, error: BaseException | None) -> None:
        try:
            self._finish(error)
        except Exception:  # telemetry never raises into the request path
            _log.debug("request telemetry failed", exc_info=True)
        finally:
            try:
                otel_context.detach(self.token)
                structlog.contextvars.reset_contextvars(**self.log_tokens)
            except Exception:
                _log.debug("context reset failed", exc_info=True)

    def _finish(self, error: BaseException | None) -> None:
        duration = time.perf_counter() - self.start
        scope, span = self.scope, self.span
        status = self.status or 500  # no response started: the server answers 500
        route = _route_template(scope)
        error_type: str | None = None
        span_attrs: dict[str, Any] = {"http.response.status_code": status}
        if error is not None:
            error_type = mark_error(span, error)
        elif status >= 500:
            error_type = str(status)
            span_attrs["error.type"] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        if error_type is not None:
            _errors.error(error_type, "http")
        if route is not None:
            span_attrs["http.route"] = route
            span.update_name(
                f"HTTP {route}" if self.method == "_OTHER" else f"{self.method} {route}"
            )
        state_user = _state_user_id(scope) if self.user_id is None else None
        if state_user is not None:
            span_attrs["user.id"] = state_user
        span.set_attributes(span_attrs)  # one lock round for all of them

        # Inside the span: the measurement carries the trace id as exemplar.
        sizes = self.mw.record_body_sizes
        _http.request_finished(
            duration,
            method=self.method,
            status_code=status,
            route=route,
            scheme=self.scheme,
            protocol_version=scope.get("http_version", "1.1"),
            error_type=error_type,
            request_size=_length(self.content_length) if sizes else None,
            response_size=_length(self.response_length) if sizes else None,
        )
        if self.mw.active_requests:
            _http.request_ended(self.method, self.scheme)
        if self.mw.access_log:
            extra: dict[str, Any] = self.mw.access_log_markers.copy()
            if state_user is not None:
                extra["user_id"] = state_user
            if error_type is not None:
                extra["error_type"] = error_type
            _access_log.info(
                "http_request",
                http_method=self.method,
                http_route=route,
                http_path=scope.get("path", ""),
                status_code=status,
                duration_ms=round(duration * 1000.0, 3),
                **extra,
            )
        span.end()


def _length(raw: bytes | None) -> int | None:
    """A Content-Length header value as a number, when it is one."""
    return int(raw) if raw is not None and raw.isdigit() else None


class _WebSocketTelemetry:
    """The telemetry state of one WebSocket connection."""

    def __init__(self, mw: MonitoringMiddleware, scope: Scope) -> None:
        self.scope = scope
        self.start = time.perf_counter()
        headers: Headers = scope.get("headers") or []
        request_id, user_id, _ = _scan_ids(headers)
        self.request_id = request_id or _new_request_id()
        self.accepted = False
        self._route_attrs: dict[str, AttributeValue] | None = None
        attributes: dict[str, Any] = {
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "ws"),
            "chenu.request.id": self.request_id,
        }
        if user_id is not None:
            attributes["user.id"] = user_id
        parent = _extract_parent(headers)
        self.span = mw.tracer.start_span(
            "websocket", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        self.token = otel_context.attach(trace.set_span_in_context(self.span, parent))
        bound = {"request_id": self.request_id}
        if user_id is not None:
            bound["user_id"] = user_id
        self.log_tokens = structlog.contextvars.bind_contextvars(**bound)

    def route_attrs(self) -> dict[str, AttributeValue]:
        if self._route_attrs is None:
            route = _route_template(self.scope)
            if route is None:
                return {}  # not routed yet: do not cache
            self._route_attrs = {"http.route": route}
            self.span.update_name(f"websocket {route}")
            self.span.set_attribute("http.route", route)
        return self._route_attrs

    def wrap_receive(self, receive: Receive) -> Receive:
        async def receive_wrapper() -> Message:
            message = await receive()
            self.on_receive(message)
            return message

        return receive_wrapper

    def wrap_send(self, send: Send) -> Send:
        async def send_wrapper(message: Message) -> None:
            await send(self.on_send(message))

        return send_wrapper

    def on_receive(self, message: Message) -> None:
        try:
            if message.get("type") == "websocket.receive":
                _websocket.message(self.route_attrs(), "received")
        except Exception:  # telemetry never raises into the request path
            _log.debug("websocket receive telemetry failed", exc_info=True)

    def on_send(self, message: Message) -> Message:
        try:
            kind = message.get("type")
            if kind == "websocket.send":
                _websocket.message(self.route_attrs(), "sent")
            elif kind == "websocket.accept" and not self.accepted:
                self.accepted = True
                _websocket.connected(self.route_attrs())
                headers = [
                    (k, v) for k, v in message.get("headers") or () if k.lower() not in _OWN_HEADERS
                ]
                headers.append((REQUEST_ID_HEADER, self.request_id.encode("ascii")))
                return {**message, "headers": headers}
        except Exception:  # telemetry never raises into the request path
            _log.debug("websocket send telemetry failed", exc_info=True)
        return message

    def finish(self, error: BaseException | None) -> None:
        try:
            attrs = self.route_attrs()  # also names the span after the route
            if self.accepted:
                _websocket.disconnected(attrs, time.perf_counter() - self.start)
            if error is not None:
                _errors.error(mark_error(self.span, error), "websocket")
            self.span.end()
        except Exception:  # telemetry never raises into the request path
            _log.debug("websocket telemetry failed", exc_info=True)
        finally:
            try:
                otel_context.detach(self.token)
                structlog.contextvars.reset_contextvars(**self.log_tokens)
            except Exception:
                _log.debug("context reset failed", exc_info=True)
