"""SQLAlchemy engine spans and ``db.client.operation.duration``.

One CLIENT span per statement, child of the request span, comes from the contrib SQLAlchemy
instrumentation's ``EngineTracer``: its public ``SQLAlchemyInstrumentor().instrument(engine=)``
instruments once per process and also patches ``create_engine`` globally, so chenu-otel builds
the ``EngineTracer`` of one engine itself. That class is not part of contrib's documented API —
the only such use in chenu-otel, checked against :data:`CHECKED_CONTRIB`
(``tests/unit/test_sqlalchemy_engine.py`` fails with a message when an upgrade changes it).
The contrib instrumentation emits none of the stable DB metrics, so the operation duration is
measured here from SQLAlchemy's cursor events, named by the statement's operation and table.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Final

from opentelemetry.metrics import NoOpUpDownCounter

from chenu_otel.catalogue import DB_CLIENT_CONNECTIONS_USAGE
from chenu_otel.errors import error_type
from chenu_otel.proxies import TRACER_PROVIDER
from chenu_otel.recorders import RECORDERS

__all__ = ["CHECKED_CONTRIB", "instrument_engine_tracing", "sql_operation"]

_log = logging.getLogger("chenu_otel.instrumentation")

#: opentelemetry-instrumentation-sqlalchemy releases `EngineTracer` was checked against.
CHECKED_CONTRIB: Final = "==0.66b1"

_SQL_OPERATION: Final = re.compile(r"\s*(?:/\*.*?\*/\s*)?([A-Za-z]+)", re.DOTALL)
_SQL_TABLE: Final = re.compile(
    r"\b(?:FROM|INTO|UPDATE|TABLE)\s+[\"`\[]?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE
)
_START: Final = "_chenu_otel_start"


def sql_operation(statement: str) -> tuple[str | None, str | None]:
    """(operation, table) of a SQL statement: ``("SELECT", "threads")``; None when unknown."""
    operation = _SQL_OPERATION.match(statement)
    table = _SQL_TABLE.search(statement)
    return (
        operation.group(1).upper() if operation else None,
        table.group(1) if table else None,
    )


def instrument_engine_tracing(sync_engine: Any) -> None:
    """Spans (contrib ``EngineTracer``) and operation durations for one sync Engine."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from sqlalchemy import event

    tracer = TRACER_PROVIDER.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    # Pool use is measured by chenu_otel.sqlalchemy_pool; the contrib counter is not used.
    EngineTracer(tracer, sync_engine, NoOpUpDownCounter(DB_CLIENT_CONNECTIONS_USAGE.name))
    system = sync_engine.dialect.name

    def record(start: float, statement: str, failure: str | None) -> None:
        operation, table = sql_operation(statement)
        RECORDERS.db.operation(
            time.perf_counter() - start,
            system=system, operation=operation, collection=table, error_type=failure,
        )  # fmt: skip

    # Signature: (conn, cursor, statement, parameters, context, executemany).
    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:  # fmt: skip
        try:
            setattr(context, _START, time.perf_counter())
        except Exception:  # telemetry never raises into the caller
            _log.debug("db timing failed", exc_info=True)

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:  # fmt: skip
        start = getattr(context, _START, None)
        if start is not None:
            try:
                record(start, statement, None)
            except Exception:  # telemetry never raises into the caller
                _log.debug("db metric failed", exc_info=True)

    def on_error(exception_context: Any) -> None:
        start = getattr(exception_context.execution_context, _START, None)
        if start is None:
            return
        try:
            failure = error_type(exception_context.original_exception)
            record(start, exception_context.statement or "", failure)
            RECORDERS.errors.error(failure, "db")
        except Exception:  # telemetry never raises into the caller
            _log.debug("db error metric failed", exc_info=True)

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", on_error)
