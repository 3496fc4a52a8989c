"""MonitoringMiddleware: one server span, one duration point, safe request ids, access logs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, WebSocket
from starlette.testclient import TestClient

from chenu_otel.instrumentation import instrument_app
from chenu_otel.logging import setup_logging
from chenu_otel.middleware import MonitoringMiddleware
from chenu_otel.testing import CapturedTelemetry, capture_telemetry


class Boom(RuntimeError):
    pass


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.get("/me")
    async def me(request: Request) -> dict[str, str]:
        request.state.user_id = "from-auth"
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise Boom("kaput")

    @app.websocket("/ws/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        for _ in range(2):
            await ws.send_text(await ws.receive_text())
        await ws.close()

    instrument_app(app)
    return app


@pytest.fixture
def telemetry(memory_only: None) -> Iterator[CapturedTelemetry]:
    with capture_telemetry(service_name="mw-test") as captured:
        setup_logging(level="INFO", format="json")
        yield captured


def server_spans(telemetry: CapturedTelemetry) -> list[Any]:
    return [s for s in telemetry.spans() if s.kind.name == "SERVER"]


def test_one_server_span_named_after_the_route_template(telemetry: CapturedTelemetry) -> None:
    """A routed request yields exactly one SERVER span `GET /items/{item_id}`, no sub-spans."""
    with TestClient(make_app()) as client:
        response = client.get("/items/42")
    assert response.status_code == 200
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["GET /items/{item_id}"]
    attrs = spans[0].attributes
    assert attrs["http.route"] == "/items/{item_id}"
    assert attrs["http.response.status_code"] == 200
    assert attrs["url.path"] == "/items/42"
    assert attrs["chenu.request.id"] == response.headers["x-request-id"]
    assert float(response.headers["x-process-time"]) >= 0


def test_one_duration_point_per_request_with_route_and_exemplar(
    telemetry: CapturedTelemetry,
) -> None:
    """http.server.request.duration counts each request once, by route, with the trace id."""
    with TestClient(make_app()) as client:
        for i in range(3):
            client.get(f"/items/{i}")
        client.get("/nope/1")
        client.get("/nope/2")
    points = telemetry.metric_points("http.server.request.duration")
    by_route = {p.attributes.get("http.route"): p for p in points}
    assert by_route["/items/{item_id}"].count == 3
    assert by_route[None].count == 2  # unmatched paths collapse into one series
    assert sum(p.count for p in points) == 5
    trace_ids = {s.context.trace_id for s in server_spans(telemetry)}
    exemplars = by_route["/items/{item_id}"].exemplars
    assert exemplars and all(e.trace_id in trace_ids for e in exemplars)
    assert by_route["/items/{item_id}"].explicit_bounds[:3] == (0.005, 0.01, 0.025)


def test_safe_request_id_is_kept_and_bound_into_logs(telemetry: CapturedTelemetry) -> None:
    """A safe X-Request-ID is echoed, set on the span and carried by the access log record."""
    with TestClient(make_app()) as client:
        response = client.get(
            "/items/1", headers={"X-Request-ID": "req-abc_1.2", "X-User-ID": "u7"}
        )
    assert response.headers["x-request-id"] == "req-abc_1.2"
    span = telemetry.spans()[0]
    assert span.attributes["user.id"] == "u7"
    access = [r for r in telemetry.logs() if r.log_record.body == "http_request"]
    assert len(access) == 1
    record = access[0].log_record
    assert record.attributes["request_id"] == "req-abc_1.2"
    assert record.attributes["user_id"] == "u7"
    assert record.attributes["http_route"] == "/items/{item_id}"
    assert record.trace_id == span.context.trace_id


def test_user_id_from_request_state_reaches_the_span(telemetry: CapturedTelemetry) -> None:
    """Auth code setting request.state.user_id gets it on the span."""
    with TestClient(make_app()) as client:
        client.get("/me")
    assert telemetry.spans()[0].attributes["user.id"] == "from-auth"


HOSTILE = [
    b"x" * 129,
    b"abc\r\nSet-Cookie: evil=1",
    b"abc\nx",
    "r\u00e9q-\u2603".encode(),
    b"",
    b"has space",
    b"semi;colon",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=lambda r: repr(r[:12]))
def test_hostile_request_id_is_replaced_never_echoed(
    telemetry: CapturedTelemetry, raw: bytes
) -> None:
    """Long, CR/LF, non-ASCII or odd-charset ids are replaced by a fresh 32-hex id."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": "/", "scheme": "http", "http_version": "1.1",
        "headers": [(b"x-request-id", raw), (b"x-user-id", raw)], "query_string": b"",
    }  # fmt: skip
    asyncio.run(MonitoringMiddleware(app)(scope, receive, send))
    headers = dict(sent[0]["headers"])
    echoed = headers[b"x-request-id"]
    assert echoed != raw
    assert len(echoed) == 32 and all(c in b"0123456789abcdef" for c in echoed)
    span = telemetry.spans()[0]
    assert span.attributes["chenu.request.id"] == echoed.decode()
    assert "user.id" not in span.attributes


def test_exception_is_recorded_counted_and_propagated(telemetry: CapturedTelemetry) -> None:
    """An unhandled exception marks the span as error, is counted, and the client gets a 500."""
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    span = telemetry.spans()[0]
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "Boom"
    assert any(e.name == "exception" for e in span.events)
    errors = telemetry.metric_points("chenu.errors")
    assert [(dict(p.attributes), p.value) for p in errors] == [
        ({"error.type": "Boom", "chenu.error.source": "http"}, 1)
    ]
    (point,) = telemetry.metric_points("http.server.request.duration")
    assert point.attributes["http.response.status_code"] == 500
    assert point.attributes["error.type"] == "Boom"


def test_active_requests_returns_to_zero(telemetry: CapturedTelemetry) -> None:
    """http.server.active_requests goes up and down once per request."""
    with TestClient(make_app()) as client:
        client.get("/items/1")
    points = telemetry.metric_points("http.server.active_requests")
    by_method = {p.attributes["http.request.method"]: p.value for p in points}
    assert by_method["GET"] == 0
    assert all(value == 0 for value in by_method.values()), by_method


def test_websocket_connections_and_messages_are_counted(telemetry: CapturedTelemetry) -> None:
    """A websocket session: one span, connection counted and closed, messages in and out."""
    with TestClient(make_app()) as client, client.websocket_connect("/ws/echo") as ws:
        for text in ("a", "b"):
            ws.send_text(text)
            assert ws.receive_text() == text

    def value(name: str) -> Any:
        (point,) = telemetry.metric_points(name)
        assert point.attributes == {"http.route": "/ws/echo"}
        return point.value if hasattr(point, "value") else point.count

    assert value("chenu.websocket.connections") == 1
    assert value("chenu.websocket.connections.active") == 0
    assert value("chenu.websocket.messages.received") == 2
    assert value("chenu.websocket.messages.sent") == 2
    assert value("chenu.websocket.connection.duration") == 1
    assert [s.name for s in server_spans(telemetry)] == ["websocket /ws/echo"]


def test_lifespan_scope_passes_through(telemetry: CapturedTelemetry) -> None:
    """Startup/shutdown produce no span."""
    with TestClient(make_app()):
        pass
    assert telemetry.spans() == ()


def test_native_fastapi_telemetry_would_double_record(telemetry: CapturedTelemetry) -> None:
    """Without instrument_app, FastAPI's own telemetry adds a second server span: the reason
    instrument_app switches it off."""
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, str]:
        return {}

    app.add_middleware(MonitoringMiddleware)
    with TestClient(app) as client:
        client.get("/x")
    assert len(server_spans(telemetry)) == 2
    points = [
        p for p in telemetry.metric_points("http.server.request.duration")
        if p.attributes.get("http.route") == "/x"
    ]  # fmt: skip
    assert [p.count for p in points] == [1, 1]  # one request, measured twice


def test_incoming_traceparent_is_continued(telemetry: CapturedTelemetry) -> None:
    """A W3C traceparent header makes the server span a child of the caller's span."""
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with TestClient(make_app()) as client:
        client.get("/items/1", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        client.get("/items/2")
    continued, fresh = server_spans(telemetry)
    assert format(continued.context.trace_id, "032x") == trace_id
    assert continued.parent is not None and format(continued.parent.span_id, "016x") == parent_id
    assert fresh.parent is None
    assert format(fresh.context.trace_id, "032x") != trace_id


def test_active_requests_counts_a_request_in_flight(telemetry: CapturedTelemetry) -> None:
    """While a handler runs, http.server.active_requests includes it."""
    seen: list[float] = []
    app = FastAPI()

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        points = telemetry.metric_points("http.server.active_requests")
        seen.append(sum(p.value for p in points if p.attributes["http.request.method"] == "GET"))
        return {"ok": True}

    instrument_app(app)
    with TestClient(app) as client:
        client.get("/slow")
    assert seen == [1]


ACCESS_LOG_OUTPUTS = [
    # CHENU_OTEL_ACCESS_LOG, an OTel log record exported?, a JSON line written?
    ("stdout,otel", True, True),
    ("stdout", False, True),
    ("otel", True, False),
    ("none", False, False),
]


@pytest.mark.parametrize(("setting", "exported", "written"), ACCESS_LOG_OUTPUTS)
def test_access_line_goes_where_chenu_otel_access_log_says(
    setting: str,
    exported: bool,
    written: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    memory_only: None,
) -> None:
    """CHENU_OTEL_ACCESS_LOG picks the access line's outputs (OTel log record, stdout line);
    the server span carries the route and status whatever it says."""
    monkeypatch.setenv("CHENU_OTEL_ACCESS_LOG", setting)
    with capture_telemetry(service_name="mw-access") as telemetry:
        setup_logging(level="INFO", format="json")
        with TestClient(make_app()) as client:
            client.get("/items/5")
        records = [r.log_record.body for r in telemetry.logs()]
        (span,) = server_spans(telemetry)
    lines = [line for line in capsys.readouterr().out.splitlines() if "http_request" in line]
    assert ("http_request" in records) is exported
    assert bool(lines) is written
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
