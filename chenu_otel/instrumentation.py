"""Wire a FastAPI app, its SQLAlchemy engine and its Redis client, once.

``instrument_app(app, engine=engine, redis=redis)``:

* adds :class:`~chenu_otel.middleware.MonitoringMiddleware` — the single owner of the HTTP server
  span and of ``http.server.request.duration``. ``FastAPIInstrumentor`` is deliberately not used:
  it would add ``http receive``/``http send`` spans, a second duration histogram and a route
  re-match per request (see ``bench/`` for the cost). An app already instrumented by
  ``FastAPIInstrumentor`` gets a warning, since both would record every request. FastAPI's own
  native telemetry (``FastAPI(telemetry=...)``, on by default once a provider is set) is switched
  off for the app for the same reason;
* instruments the engine with the contrib SQLAlchemy ``EngineTracer`` (one CLIENT span per
  statement, child of the request span) and records ``db.client.operation.duration`` and the
  pool metrics from SQLAlchemy events (the contrib instrumentation emits none of the stable
  ones);
* instruments the Redis client (sync or asyncio) with the contrib Redis instrumentation and
  records ``db.client.operation.duration`` and ``chenu.cache.operations`` (hit/miss for reads)
  from its hooks.

Every step is idempotent per object and tracers follow the global provider, so calling this
before ``chenu_otel.configure()`` is fine. ``instrument_fastapi(app)`` is the seed's name for the
app-only part; called at startup (after the middleware stack is built) it only checks that
``MonitoringMiddleware`` was added.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from contextvars import ContextVar
from typing import Any, Final

from opentelemetry.metrics import NoOpUpDownCounter

from chenu_otel import metrics as _metrics
from chenu_otel.middleware import MonitoringMiddleware
from chenu_otel.proxies import TRACER_PROVIDER

__all__ = ["instrument_app", "instrument_engine", "instrument_fastapi", "instrument_redis"]

_log = logging.getLogger(__name__)

_instrumented: weakref.WeakSet[Any] = weakref.WeakSet()
_instrumented_ids: set[int] = set()  # objects that cannot be weak-referenced


def _once(obj: Any) -> bool:
    """True the first time `obj` is seen."""
    try:
        if obj in _instrumented:
            return False
        _instrumented.add(obj)
    except TypeError:
        if id(obj) in _instrumented_ids:
            return False
        _instrumented_ids.add(id(obj))
    return True


# --- FastAPI / Starlette -----------------------------------------------------------------------
def instrument_fastapi(app: Any, **middleware_options: Any) -> None:
    """Make sure `app` is served through MonitoringMiddleware (the seed's entry point).

    Adds the middleware when the app has not started yet; if it has (called from a startup hook)
    and the middleware is missing, logs a warning saying to call ``app.add_middleware``.
    """
    if getattr(app, "_is_instrumented_by_opentelemetry", False):
        _log.warning(
            "app is also instrumented by FastAPIInstrumentor: every request would get two server "
            "spans and two duration measurements; remove FastAPIInstrumentor.instrument_app()"
        )
    _disable_native_fastapi_telemetry(app)
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


def _disable_native_fastapi_telemetry(app: Any) -> None:
    """FastAPI >= 0.160 traces and measures requests itself whenever a global provider is set
    (``FastAPI(telemetry=...)``): a second server span, a second duration histogram and operation
    sub-spans next to MonitoringMiddleware's. Switch it off for this app, once, so the middleware
    stays the single owner. The config is read per request, so this also works from a startup
    hook."""
    config = getattr(app, "_telemetry", None)
    if isinstance(config, dict):
        config.update(tracing=False, metrics=False, logs=False, operation_spans=False)


# --- SQLAlchemy --------------------------------------------------------------------------------
_SQL_OPERATION: Final = re.compile(r"\s*(?:/\*.*?\*/\s*)?([A-Za-z]+)", re.DOTALL)
_SQL_TABLE: Final = re.compile(
    r"\b(?:FROM|INTO|UPDATE|TABLE)\s+[\"`\[]?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE
)
_START_KEY: Final = "_chenu_otel_start"


def _sql_attributes(system: str, statement: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"db.system.name": system}
    op = _SQL_OPERATION.match(statement)
    if op:
        attrs["db.operation.name"] = op.group(1).upper()
    table = _SQL_TABLE.search(statement)
    if table:
        attrs["db.collection.name"] = table.group(1)
    return attrs


def instrument_engine(engine: Any, *, pool_name: str | None = None) -> None:
    """Trace and measure a SQLAlchemy Engine (or AsyncEngine): spans, operation duration, pool.

    `pool_name` labels the pool metrics (default: the dialect name, e.g. ``sqlite``).
    """
    sync_engine = getattr(engine, "sync_engine", engine)
    if not _once(sync_engine):
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from sqlalchemy import event

    tracer = TRACER_PROVIDER.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    # Pool use is measured below under the stable semconv names; the contrib counter is unused.
    EngineTracer(tracer, sync_engine, NoOpUpDownCounter("db.client.connections.usage"))

    system = _system_name(sync_engine.dialect.name)

    # Signature: (conn, cursor, statement, parameters, context, executemany).
    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:  # fmt: skip
        try:
            setattr(context, _START_KEY, time.perf_counter())
        except Exception:  # telemetry never raises into the caller
            _log.debug("db timing failed", exc_info=True)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:  # fmt: skip
        start = getattr(context, _START_KEY, None)
        if start is None:
            return
        try:
            _metrics.instrument("db.client.operation.duration").record(
                time.perf_counter() - start, _sql_attributes(system, statement)
            )
        except Exception:  # telemetry never raises into the caller
            _log.debug("db metric failed", exc_info=True)

    def on_error(exception_context: Any) -> None:
        context = getattr(exception_context, "execution_context", None)
        start = getattr(context, _START_KEY, None)
        if start is None:
            return
        try:
            attrs = _sql_attributes(system, exception_context.statement or "")
            error_type = type(exception_context.original_exception).__name__
            attrs["error.type"] = error_type
            _metrics.instrument("db.client.operation.duration").record(
                time.perf_counter() - start, attrs
            )
            _metrics.record_error(error_type, source="db")
        except Exception:  # telemetry never raises into the caller
            _log.debug("db error metric failed", exc_info=True)

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", on_error)
    _instrument_pool(sync_engine, pool_name or sync_engine.dialect.name)


def _system_name(dialect: str) -> str:
    return {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}.get(dialect, dialect)


def _instrument_pool(sync_engine: Any, pool_name: str) -> None:
    from sqlalchemy import event

    pool_attrs = {"db.client.connection.pool.name": pool_name}
    used = {**pool_attrs, "db.client.connection.state": "used"}
    idle = {**pool_attrs, "db.client.connection.state": "idle"}
    pool = sync_engine.pool
    size = getattr(pool, "size", None)
    if callable(size):
        try:
            overflow = int(getattr(pool, "_max_overflow", 0))
            _metrics.instrument("db.client.connection.max").add(
                int(size()) + max(overflow, 0), pool_attrs
            )
            _metrics.instrument("db.client.connection.idle.max").add(int(size()), pool_attrs)
        except Exception:
            _log.debug("pool size metric failed", exc_info=True)

    def count(state: dict[str, Any], delta: int) -> None:
        try:
            _metrics.instrument("db.client.connections.usage").add(delta, state)
        except Exception:  # telemetry never raises into the caller
            _log.debug("pool metric failed", exc_info=True)

    def do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        conn_rec.info[_START_KEY + "_connect"] = time.perf_counter()

    def on_connect(dbapi_conn: Any, conn_rec: Any) -> None:
        start = conn_rec.info.pop(_START_KEY + "_connect", None)
        conn_rec.info[_START_KEY + "_state"] = "idle"
        count(idle, 1)
        if start is not None:
            _metrics.instrument("db.client.connection.create_time").record(
                time.perf_counter() - start, pool_attrs
            )

    def on_checkout(dbapi_conn: Any, conn_rec: Any, proxy: Any) -> None:
        if conn_rec.info.get(_START_KEY + "_state") == "idle":
            count(idle, -1)
        conn_rec.info[_START_KEY + "_state"] = "used"
        conn_rec.info[_START_KEY + "_checkout"] = time.perf_counter()
        count(used, 1)

    def on_checkin(dbapi_conn: Any, conn_rec: Any) -> None:
        if conn_rec is None or conn_rec.info.get(_START_KEY + "_state") != "used":
            return
        count(used, -1)
        start = conn_rec.info.pop(_START_KEY + "_checkout", None)
        if start is not None:
            _metrics.instrument("db.client.connection.use_time").record(
                time.perf_counter() - start, pool_attrs
            )
        if dbapi_conn is not None:
            conn_rec.info[_START_KEY + "_state"] = "idle"
            count(idle, 1)
        else:
            conn_rec.info.pop(_START_KEY + "_state", None)

    def on_close(dbapi_conn: Any, conn_rec: Any) -> None:
        state = conn_rec.info.pop(_START_KEY + "_state", None) if conn_rec is not None else None
        if state == "idle":
            count(idle, -1)
        elif state == "used":
            count(used, -1)

    event.listen(sync_engine.dialect, "do_connect", do_connect)
    event.listen(pool, "connect", on_connect)
    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)
    event.listen(pool, "close", on_close)


# --- Redis -------------------------------------------------------------------------------------
_READ_COMMANDS: Final = frozenset({"GET", "GETEX", "GETDEL", "HGET", "MGET", "HMGET", "EXISTS"})
_redis_call: ContextVar[tuple[str, float] | None] = ContextVar("_chenu_redis_call", default=None)


def _redis_request_hook(span: Any, instance: Any, args: Any, kwargs: Any) -> None:
    try:
        command = str(args[0]).upper() if args else "UNKNOWN"
        _redis_call.set((command, time.perf_counter()))
    except Exception:
        _log.debug("redis request hook failed", exc_info=True)


def _redis_response_hook(span: Any, instance: Any, response: Any) -> None:
    try:
        call = _redis_call.get()
        if call is None:
            return
        _redis_call.set(None)
        command, start = call
        duration = time.perf_counter() - start
        _metrics.instrument("db.client.operation.duration").record(
            duration, {"db.system.name": "redis", "db.operation.name": command}
        )
        if command in _READ_COMMANDS:
            empty = response is None or (
                isinstance(response, list | tuple) and all(r is None for r in response)
            )
            result = "miss" if empty or response == 0 else "hit"
        else:
            result = "ok"
        _metrics.instrument("chenu.cache.operations").add(
            1,
            {
                "db.system.name": "redis",
                "chenu.cache.name": "redis",
                "chenu.cache.operation": command.lower(),
                "chenu.cache.result": result,
            },
        )
    except Exception:
        _log.debug("redis response hook failed", exc_info=True)


def instrument_redis(client: Any) -> None:
    """Trace and measure one Redis client (sync or asyncio): a CLIENT span per command,
    ``db.client.operation.duration`` and ``chenu.cache.operations`` with hit/miss for reads."""
    if not _once(client):
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(
        client,
        tracer_provider=TRACER_PROVIDER,
        request_hook=_redis_request_hook,
        response_hook=_redis_response_hook,
    )


# --- Everything --------------------------------------------------------------------------------
def instrument_app(
    app: Any,
    *,
    engine: Any = None,
    redis: Any = None,
    **middleware_options: Any,
) -> None:
    """Instrument `app` (MonitoringMiddleware), and `engine` / `redis` when given; idempotent.

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
