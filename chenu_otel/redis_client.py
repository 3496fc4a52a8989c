"""Redis client spans and metrics: the contrib Redis instrumentation plus our hooks.

Each command gets a CLIENT span (contrib ``RedisInstrumentor.instrument_client``, tracer from
chenu-otel's proxy so it follows `configure()`), ``db.client.operation.duration``, and
``chenu.cache.operations`` with ``hit``/``miss`` for reads (``ok`` for everything else).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any, Final

from chenu_otel.proxies import TRACER_PROVIDER
from chenu_otel.recorders import RECORDERS

__all__ = ["instrument_redis_client"]

_log = logging.getLogger("chenu_otel.instrumentation")

_READ_COMMANDS: Final = frozenset({"GET", "GETEX", "GETDEL", "HGET", "MGET", "HMGET", "EXISTS"})
_redis_call: ContextVar[tuple[str, float] | None] = ContextVar("_chenu_redis_call", default=None)


def _request_hook(span: Any, instance: Any, args: Any, kwargs: Any) -> None:
    try:
        command = str(args[0]).upper() if args else "UNKNOWN"
        _redis_call.set((command, time.perf_counter()))
    except Exception:
        _log.debug("redis request hook failed", exc_info=True)


def cache_result(command: str, response: Any) -> str:
    """``hit`` or ``miss`` for a read command by its response, ``ok`` for other commands."""
    if command not in _READ_COMMANDS:
        return "ok"
    empty = response is None or (
        isinstance(response, list | tuple) and all(r is None for r in response)
    )
    return "miss" if empty or response == 0 else "hit"


def _response_hook(span: Any, instance: Any, response: Any) -> None:
    try:
        call = _redis_call.get()
        if call is None:
            return
        _redis_call.set(None)
        command, start = call
        RECORDERS.db.operation(time.perf_counter() - start, system="redis", operation=command)
        RECORDERS.cache.operation(
            command, cache_result(command, response), cache="redis", system="redis"
        )
    except Exception:
        _log.debug("redis response hook failed", exc_info=True)


def instrument_redis_client(client: Any) -> None:
    """Trace and measure one Redis client (sync or asyncio)."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(
        client,
        tracer_provider=TRACER_PROVIDER,
        request_hook=_request_hook,
        response_hook=_response_hook,
    )
