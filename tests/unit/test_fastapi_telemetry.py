"""FastAPI's native telemetry next to MonitoringMiddleware: the public switch, the fallback
adapter for apps created without it, and a loud failure when FastAPI changes what it uses."""

from __future__ import annotations

import logging
from typing import Any

import fastapi
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from chenu_otel.fastapi_telemetry import (
    CHECKED_FASTAPI,
    NATIVE_TELEMETRY_OFF,
    instrumented_by_contrib,
    native_telemetry_config,
)
from chenu_otel.instrumentation import instrument_app
from chenu_otel.middleware import MonitoringMiddleware
from chenu_otel.testing import CapturedTelemetry


def app_with_route(app: FastAPI) -> FastAPI:
    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return app


def served_once(capotel: CapturedTelemetry, app: FastAPI) -> tuple[list[str], list[Any]]:
    """Names of the spans and the duration points one request produced."""
    with TestClient(app) as client:
        assert client.get("/items/1").status_code == 200
    return [s.name for s in capotel.spans()], capotel.metric_points("http.server.request.duration")


def test_the_public_switch_leaves_one_owner(capotel: CapturedTelemetry) -> None:
    """FastAPI(telemetry=NATIVE_TELEMETRY_OFF) plus the middleware: one span, one point."""
    app = app_with_route(FastAPI(telemetry=NATIVE_TELEMETRY_OFF))
    app.add_middleware(MonitoringMiddleware)
    spans, durations = served_once(capotel, app)
    assert spans == ["GET /items/{item_id}"]
    assert [p.count for p in durations] == [1]


def test_the_fallback_switches_off_an_app_created_without_it(capotel: CapturedTelemetry) -> None:
    """instrument_app on a default FastAPI(): still one span and one point per request."""
    app = app_with_route(FastAPI())
    instrument_app(app)
    spans, durations = served_once(capotel, app)
    assert spans == ["GET /items/{item_id}"]
    assert [p.count for p in durations] == [1]


def test_native_telemetry_left_on_is_reported(
    capotel: CapturedTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """Middleware added by hand to a default app: FastAPI records too, and a warning says so."""
    app = app_with_route(FastAPI())
    app.add_middleware(MonitoringMiddleware)
    with caplog.at_level(logging.WARNING, logger="chenu_otel"):
        spans, durations = served_once(capotel, app)
    assert len([s for s in capotel.spans() if s.kind.name == "SERVER"]) == 2, spans
    assert [p.count for p in durations] == [1, 1]
    warnings = [r.getMessage() for r in caplog.records if "native telemetry" in r.getMessage()]
    assert len(warnings) == 1 and "NATIVE_TELEMETRY_OFF" in warnings[0]


def test_fastapi_still_keeps_its_telemetry_config_where_the_adapter_looks() -> None:
    """The fallback edits FastAPI's private per-app config; an upgrade that moves it fails
    here, naming what to update, instead of every request being recorded twice."""
    config = native_telemetry_config(FastAPI())
    assert config is not None and set(NATIVE_TELEMETRY_OFF) <= set(config), (
        f"FastAPI {fastapi.__version__} no longer keeps its telemetry config in app._telemetry "
        f"with the keys {sorted(NATIVE_TELEMETRY_OFF)} (checked against {CHECKED_FASTAPI}): "
        "update chenu_otel/fastapi_telemetry.py"
    )


def test_an_app_instrumented_by_contrib_is_recognized() -> None:
    """FastAPIInstrumentor marks the apps it instruments; instrument_app warns about them."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = FastAPI()
    assert not instrumented_by_contrib(app)
    FastAPIInstrumentor.instrument_app(app)
    try:
        assert instrumented_by_contrib(app), (
            "opentelemetry-instrumentation-fastapi no longer marks instrumented apps with "
            "_is_instrumented_by_opentelemetry: update chenu_otel/fastapi_telemetry.py"
        )
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
