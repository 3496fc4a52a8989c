"""Connection pool metrics of a SQLAlchemy engine, from the pool's own events.

`PoolConnectionStates` is a small state machine per pooled connection: ``connect`` puts a new
connection in ``idle``, ``checkout`` moves it to ``used``, ``checkin`` back to ``idle`` (or out
of the pool when SQLAlchemy discarded it), ``close`` takes it out from whatever state it was
in. Each transition moves one count between the states of ``db.client.connections.usage``, so
the idle and used series always add up to the connections the pool holds. Connection creation
time and use time are recorded too, and the pool's limits once when it is instrumented.

The pool's configured overflow has no public accessor in SQLAlchemy 2.0: `max_overflow()` reads
the private ``QueuePool._max_overflow`` — the only private SQLAlchemy access in chenu-otel,
checked against :data:`CHECKED_SQLALCHEMY` (``tests/unit/test_sqlalchemy_pool.py`` fails with a
message when an upgrade changes it).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from chenu_otel.recorders import RECORDERS

__all__ = ["CHECKED_SQLALCHEMY", "PoolConnectionStates", "instrument_pool", "max_overflow"]

_log = logging.getLogger("chenu_otel.instrumentation")

#: SQLAlchemy releases the private access in `max_overflow` was checked against.
CHECKED_SQLALCHEMY: Final = ">=2.0.40,<2.1"

IDLE: Final = "idle"
USED: Final = "used"
# Keys in SQLAlchemy's per-connection `info` dict (public, for exactly this kind of use).
_STATE: Final = "chenu_otel.pool.state"
_CONNECT_START: Final = "chenu_otel.pool.connect_start"
_CHECKOUT_START: Final = "chenu_otel.pool.checkout_start"


def max_overflow(pool: Any) -> int | None:
    """How many connections `pool` may open beyond its size (private ``_max_overflow``), or
    None when the pool has no such limit (e.g. SQLite's SingletonThreadPool)."""
    value = getattr(pool, "_max_overflow", None)
    return int(value) if isinstance(value, int) else None


class PoolConnectionStates:
    """The SQLAlchemy pool event handlers that keep the per-state connection counts."""

    def __init__(self, pool_name: str) -> None:
        self.pool_name = pool_name
        self._db = RECORDERS.db

    def _move(self, state: str | None, delta: int) -> None:
        if state is not None:
            self._db.connections(self.pool_name, state, delta)

    def do_connect(self, dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        conn_rec.info[_CONNECT_START] = time.perf_counter()

    def connect(self, dbapi_conn: Any, conn_rec: Any) -> None:
        start = conn_rec.info.pop(_CONNECT_START, None)
        conn_rec.info[_STATE] = IDLE
        self._move(IDLE, 1)
        if start is not None:
            self._db.connection_created(self.pool_name, time.perf_counter() - start)

    def checkout(self, dbapi_conn: Any, conn_rec: Any, proxy: Any) -> None:
        self._move(conn_rec.info.get(_STATE), -1)
        conn_rec.info[_STATE] = USED
        conn_rec.info[_CHECKOUT_START] = time.perf_counter()
        self._move(USED, 1)

    def checkin(self, dbapi_conn: Any, conn_rec: Any) -> None:
        if conn_rec is None or conn_rec.info.get(_STATE) != USED:
            return
        self._move(USED, -1)
        start = conn_rec.info.pop(_CHECKOUT_START, None)
        if start is not None:
            self._db.connection_returned(self.pool_name, time.perf_counter() - start)
        if dbapi_conn is None:  # SQLAlchemy discarded the connection instead of pooling it
            conn_rec.info.pop(_STATE, None)
            return
        conn_rec.info[_STATE] = IDLE
        self._move(IDLE, 1)

    def close(self, dbapi_conn: Any, conn_rec: Any) -> None:
        if conn_rec is not None:
            self._move(conn_rec.info.pop(_STATE, None), -1)

    def guarded(self, name: str) -> Any:
        """The handler called `name`, wrapped so that telemetry never raises into SQLAlchemy."""
        handler = getattr(self, name)

        def listener(*args: Any) -> None:
            try:
                handler(*args)
            except Exception:
                _log.debug("pool metric %s failed", name, exc_info=True)

        return listener


def instrument_pool(sync_engine: Any, pool_name: str) -> PoolConnectionStates:
    """Record the pool metrics of `sync_engine` under `pool_name`."""
    from sqlalchemy import event

    pool = sync_engine.pool
    size = getattr(pool, "size", None)
    if callable(size):
        overflow = max(max_overflow(pool) or 0, 0)
        RECORDERS.db.pool_limits(pool_name, max_connections=size() + overflow, max_idle=size())
    states = PoolConnectionStates(pool_name)
    event.listen(sync_engine.dialect, "do_connect", states.guarded("do_connect"))
    for name in ("connect", "checkout", "checkin", "close"):
        event.listen(pool, name, states.guarded(name))
    return states
