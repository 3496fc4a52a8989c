"""Pool metrics of a SQLAlchemy engine: the per-connection state machine, through real pool
events, and the one private SQLAlchemy access (the configured overflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import create_engine, text
from sqlalchemy.pool import QueuePool

from chenu_otel.instrumentation import instrument_engine
from chenu_otel.sqlalchemy_pool import CHECKED_SQLALCHEMY, max_overflow
from chenu_otel.testing import CapturedTelemetry

POOL = "main"


def usage(capotel: CapturedTelemetry) -> dict[str, Any]:
    """db.client.connections.usage of the test pool, by state."""
    return {
        p.attributes["db.client.connection.state"]: p.value
        for p in capotel.metric_points("db.client.connections.usage")
        if p.attributes["db.client.connection.pool.name"] == POOL
    }


def pool_value(capotel: CapturedTelemetry, name: str) -> Any:
    (point,) = [
        p for p in capotel.metric_points(name)
        if p.attributes["db.client.connection.pool.name"] == POOL
    ]  # fmt: skip
    return point.value if hasattr(point, "value") else point.count


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", poolclass=QueuePool, pool_size=2, max_overflow=3
    )
    yield engine
    engine.dispose()


def test_connections_move_between_idle_and_used(capotel: CapturedTelemetry, engine: Any) -> None:
    """connect → idle, checkout → used, checkin → idle, dispose → gone; always consistent."""
    instrument_engine(engine, pool_name=POOL)
    first, second = engine.connect(), engine.connect()
    first.execute(text("select 1"))
    assert usage(capotel) == {"idle": 0, "used": 2}
    first.close()
    assert usage(capotel) == {"idle": 1, "used": 1}
    second.close()
    assert usage(capotel) == {"idle": 2, "used": 0}
    with engine.connect():  # reuses a pooled connection: no new one is created
        assert usage(capotel) == {"idle": 1, "used": 1}
    engine.dispose()
    assert usage(capotel) == {"idle": 0, "used": 0}
    assert pool_value(capotel, "db.client.connection.create_time") == 2
    assert pool_value(capotel, "db.client.connection.use_time") == 3


def test_an_invalidated_connection_leaves_the_pool(
    capotel: CapturedTelemetry, engine: Any
) -> None:
    """A connection invalidated while in use is counted out of `used`, never back into `idle`."""
    instrument_engine(engine, pool_name=POOL)
    connection = engine.connect()
    connection.invalidate()
    connection.close()
    assert usage(capotel) == {"idle": 0, "used": 0}


def test_pool_limits_are_recorded_once(capotel: CapturedTelemetry, engine: Any) -> None:
    """db.client.connection.max is size + overflow; idle.max the pool size."""
    instrument_engine(engine, pool_name=POOL)
    instrument_engine(engine, pool_name=POOL)  # idempotent
    assert pool_value(capotel, "db.client.connection.max") == 5
    assert pool_value(capotel, "db.client.connection.idle.max") == 2


def test_the_private_overflow_accessor_still_matches_sqlalchemy(engine: Any) -> None:
    """SQLAlchemy keeps max_overflow in the private QueuePool._max_overflow; if an upgrade
    renames it, this fails instead of the pool limit silently going wrong."""
    assert max_overflow(engine.pool) == 3, (
        f"SQLAlchemy {sqlalchemy.__version__} no longer exposes QueuePool._max_overflow as "
        f"chenu_otel/sqlalchemy_pool.py expects (checked against {CHECKED_SQLALCHEMY}): "
        "update max_overflow()"
    )
