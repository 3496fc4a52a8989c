"""SQLAlchemy statements: one CLIENT span each (contrib's EngineTracer, the one contrib class
chenu-otel builds itself) and db.client.operation.duration by operation and table."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from chenu_otel.instrumentation import instrument_engine
from chenu_otel.sqlalchemy_engine import CHECKED_CONTRIB, sql_operation
from chenu_otel.testing import CapturedTelemetry
from chenu_otel.tracing import create_span


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT id FROM threads WHERE id = ?", ("SELECT", "threads")),
        ("  /* hint */ insert into messages (a) values (?)", ("INSERT", "messages")),
        ('UPDATE "threads" SET title = ?', ("UPDATE", "threads")),
        ("CREATE TABLE users (id INTEGER)", ("CREATE", "users")),
        ("PRAGMA journal_mode", ("PRAGMA", None)),
        ("", (None, None)),
    ],
)
def test_statements_are_named_by_operation_and_table(
    statement: str, expected: tuple[str | None, str | None]
) -> None:
    """The operation is the first keyword, the table the one after FROM/INTO/UPDATE/TABLE."""
    assert sql_operation(statement) == expected


def test_a_statement_is_a_client_span_and_a_duration_point(
    capotel: CapturedTelemetry, tmp_path: Path
) -> None:
    """Inside a request span, a statement gives a CLIENT child span and one duration point."""
    engine = create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    instrument_engine(engine)
    with create_span("request") as parent, engine.connect() as connection:
        connection.execute(text("CREATE TABLE threads (id INTEGER)"))
        connection.execute(text("SELECT id FROM threads"))
    clients = [s for s in capotel.spans() if s.kind.name == "CLIENT"]
    assert len(clients) == 2, (
        f"no SQLAlchemy spans: contrib's EngineTracer changed (checked against "
        f"opentelemetry-instrumentation-sqlalchemy {CHECKED_CONTRIB}); update "
        "chenu_otel/sqlalchemy_engine.py"
    )
    assert all(s.parent.span_id == parent.get_span_context().span_id for s in clients)
    operations = {
        (p.attributes.get("db.operation.name"), p.attributes.get("db.collection.name")): p.count
        for p in capotel.metric_points("db.client.operation.duration")
    }
    assert operations == {("CREATE", "threads"): 1, ("SELECT", "threads"): 1}
    engine.dispose()


def test_a_failing_statement_is_measured_and_counted(
    capotel: CapturedTelemetry, tmp_path: Path
) -> None:
    """The failure's duration carries error.type; chenu.errors counts it for the db layer."""
    engine = create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    instrument_engine(engine)
    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.execute(text("SELECT * FROM missing_table"))
    (point,) = capotel.metric_points("db.client.operation.duration")
    assert point.attributes["error.type"] == "OperationalError"
    (error,) = capotel.metric_points("chenu.errors")
    assert dict(error.attributes) == {"error.type": "OperationalError", "chenu.error.source": "db"}
    engine.dispose()
