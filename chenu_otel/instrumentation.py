"""Wire a FastAPI app, its SQLAlchemy engine and its Redis client, once.

``instrument_app(app, engine=engine, redis=redis)``:

* adds :class:`~chenu_otel.middleware.MonitoringMiddleware` — the single owner of the HTTP server
  span and of ``http.server.request.duration``. ``FastAPIInstrumentor`` is deliberately not used:
  it would add ``http receive``/``http send`` spans, a second duration histogram and a route
  re-match per request (see ``bench/`` for the cost). An app already instrumented by
  ``FastAPIInstrumentor`` gets a warning, since both would record every request. FastAPI's own
  native telemetry is switched off for the app for the same reason (see
  `chenu_otel.fastapi_telemetry` for the public switch, ``FastAPI(telemetry=...)``);
* instruments the engine (`chenu_otel.sqlalchemy_engine`: one CLIENT span per statement and
  ``db.client.operation.duration``; `chenu_otel.sqlalchemy_pool`: the pool metrics);
* instruments the Redis client (`chenu_otel.redis_client`: spans, operation duration and cache
  hits/misses);
* instruments outbound HTTP through httpx, once per process (`chenu_otel.httpx_client`: CLIENT
  spans with ``traceparent`` injected, ``http.client.request.duration``, secrets scrubbed);
  ``httpx=False`` leaves httpx alone.

Every step is idempotent per object and the tracers and instruments follow the pipeline
`chenu_otel.configure()` installs, so calling this before ``configure()`` is fine.
``instrument_fastapi(app)`` is the earlier module's name for the app-only part; called at
startup (after the middleware stack is built) it only checks that ``MonitoringMiddleware`` is
there.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from chenu_otel.fastapi_telemetry import instrumented_by_contrib, switch_off_native_telemetry
from chenu_otel.httpx_client import instrument_httpx_clients
from chenu_otel.middleware import MonitoringMiddleware
from chenu_otel.redis_client import instrument_redis_client
from chenu_otel.sqlalchemy_engine import instrument_engine_tracing
from chenu_otel.sqlalchemy_pool import instrument_pool

__all__ = [
    "instrument_app",
    "instrument_engine",
    "instrument_fastapi",
    "instrument_httpx",
    "instrument_redis",
]

_log = logging.getLogger(__name__)


class _Instrumented:
    """The objects already instrumented (weakly held; by id for those that cannot be)."""

    def __init__(self) -> None:
        self._objects: weakref.WeakSet[Any] = weakref.WeakSet()
        self._ids: set[int] = set()

    def first_time(self, obj: Any) -> bool:
        """True the first time `obj` is seen."""
        try:
            if obj in self._objects:
                return False
            self._objects.add(obj)
        except TypeError:
            if id(obj) in self._ids:
                return False
            self._ids.add(id(obj))
        return True


_instrumented = _Instrumented()


def instrument_fastapi(app: Any, **middleware_options: Any) -> None:
    """Make sure `app` is served through MonitoringMiddleware (the earlier module's name).

    Adds the middleware when the app has not started yet; if it has (called from a startup hook)
    and the middleware is missing, logs a warning saying to call ``app.add_middleware``.
    """
    if instrumented_by_contrib(app):
        _log.warning(
            "app is also instrumented by FastAPIInstrumentor: every request would get two server "
            "spans and two duration measurements; remove FastAPIInstrumentor.instrument_app()"
        )
    switch_off_native_telemetry(app)
    user_middleware = getattr(app, "user_middleware", None)
    if user_middleware is None:
        _log.warning("instrument_fastapi: %r is not a Starlette/FastAPI app", type(app).__name__)
        return
    if any(getattr(m, "cls", None) is MonitoringMiddleware for m in user_middleware):
        return
    try:
        app.add_middleware(MonitoringMiddleware, **middleware_options)
    except RuntimeError:
        _log.warning(
            "MonitoringMiddleware is missing and the app has already started: add "
            "`app.add_middleware(MonitoringMiddleware)` before startup"
        )


def instrument_engine(engine: Any, *, pool_name: str | None = None) -> None:
    """Trace and measure a SQLAlchemy Engine (or AsyncEngine): spans, operation duration, pool.

    `pool_name` labels the pool metrics (default: the dialect name, e.g. ``sqlite``).
    """
    sync_engine = getattr(engine, "sync_engine", engine)
    if not _instrumented.first_time(sync_engine):
        return
    instrument_engine_tracing(sync_engine)
    instrument_pool(sync_engine, pool_name or sync_engine.dialect.name)


def instrument_redis(client: Any) -> None:
    """Trace and measure one Redis client (sync or asyncio): a CLIENT span per command,
    ``db.client.operation.duration`` and ``chenu.cache.operations`` with hit/miss for reads."""
    if _instrumented.first_time(client):
        instrument_redis_client(client)


def instrument_httpx() -> None:
    """Trace and measure every httpx client of the process (sync and async): a CLIENT span per
    request with the trace context injected, ``http.client.request.duration``, credentials in
    ``url.full`` and captured headers scrubbed. Once per process; a process the distro already
    instrumented is left alone."""
    instrument_httpx_clients()


def instrument_app(
    app: Any,
    *,
    engine: Any = None,
    redis: Any = None,
    httpx: bool = True,
    **middleware_options: Any,
) -> None:
    """Instrument `app` (MonitoringMiddleware), `engine` / `redis` when given and, unless
    `httpx` is False, outbound httpx requests; idempotent.

    Example::

        app = FastAPI()
        engine = create_engine("sqlite:///threads.db")
        cache = redis.Redis()
        instrument_app(app, engine=engine, redis=cache)
    """
    instrument_fastapi(app, **middleware_options)
    if engine is not None:
        instrument_engine(engine)
    if redis is not None:
        instrument_redis(redis)
    if httpx:
        instrument_httpx()
