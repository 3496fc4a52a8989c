"""The demo app end to end in process: real SQLite, real Redis, all three signals captured."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from chenu_otel.demo.app import create_app
from chenu_otel.logging import setup_logging
from chenu_otel.testing import CapturedTelemetry, capture_telemetry

# 10,000 requests with distinct users and random paths must stay under this many series for
# the HTTP duration histogram: routes (7) x methods seen x status codes seen, plus one
# unmatched series per method/status. Identifiers never add series.
HTTP_SERIES_BOUND = 40


@pytest.fixture
def telemetry(memory_only: None) -> Iterator[CapturedTelemetry]:
    with capture_telemetry(service_name="chenu-demo") as captured:
        setup_logging(level="INFO", format="json")
        yield captured


@pytest.fixture
def client(telemetry: CapturedTelemetry, database_url: str, redis_url: str) -> Iterator[TestClient]:
    app = create_app(database_url, redis_url)
    app.state.cache.flushdb()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def by_trace(telemetry: CapturedTelemetry, trace_id: int) -> list[Any]:
    return [s for s in telemetry.spans() if s.context.trace_id == trace_id]


def test_request_trace_holds_sqlalchemy_and_redis_spans(
    telemetry: CapturedTelemetry, client: TestClient
) -> None:
    """One server span per request; its trace holds the SQLAlchemy and Redis client spans."""
    tid = client.post("/threads", json={"title": "t"}).json()["id"]
    client.post(f"/threads/{tid}/messages", json={"content": "hello there"})
    response = client.get(f"/threads/{tid}")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    (server,) = [
        s for s in telemetry.spans()
        if s.kind.name == "SERVER" and s.attributes["chenu.request.id"] == request_id
    ]  # fmt: skip
    trace = by_trace(telemetry, server.context.trace_id)
    assert [s.name for s in trace if s.kind.name == "SERVER"] == ["GET /threads/{thread_id}"]
    clients = [s for s in trace if s.kind.name == "CLIENT"]
    systems = {s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in clients}
    assert {"sqlite", "redis"} <= systems, [(s.name, dict(s.attributes)) for s in clients]
    assert all(s.parent is not None for s in clients)


def test_agent_spans_metrics_and_db_metrics(
    telemetry: CapturedTelemetry, client: TestClient
) -> None:
    """Posting a message runs the fake agent: GenAI spans under the request, token metrics."""
    tid = client.post("/threads", json={"title": "t"}).json()["id"]
    client.post(f"/threads/{tid}/messages", json={"content": "what is the plan"})
    names = {s.name for s in telemetry.spans()}
    assert {"invoke_agent NOVA", "chat chenu-fake-1", "execute_tool lookup_context"} <= names
    usage = telemetry.metric_points("gen_ai.client.token.usage")
    assert {p.attributes["gen_ai.token.type"] for p in usage} == {"input", "output"}
    ops = {p.attributes.get("db.operation.name")
           for p in telemetry.metric_points("db.client.operation.duration")}  # fmt: skip
    assert {"INSERT", "SELECT"} <= ops
    assert telemetry.metric_points("chenu.agent.cost.usd")[0].value > 0


def test_cache_hits_and_misses_are_counted(
    telemetry: CapturedTelemetry, client: TestClient
) -> None:
    """A first read misses the cache, the second hits it."""
    tid = client.post("/threads", json={"title": "t"}).json()["id"]
    client.get(f"/threads/{tid}")
    client.get(f"/threads/{tid}")
    results = {(p.attributes["chenu.cache.operation"], p.attributes["chenu.cache.result"]): p.value
               for p in telemetry.metric_points("chenu.cache.operations")}  # fmt: skip
    assert results[("get", "miss")] == 1
    assert results[("get", "hit")] == 1


def test_duration_histogram_has_route_templates_and_exemplars(
    telemetry: CapturedTelemetry, client: TestClient
) -> None:
    """Route templates, never raw paths; exemplars point at the request traces."""
    tid = client.post("/threads", json={"title": "t"}).json()["id"]
    for _ in range(3):
        client.get(f"/threads/{tid}")
    points = telemetry.metric_points("http.server.request.duration")
    routes = {p.attributes.get("http.route") for p in points}
    assert {"/threads", "/threads/{thread_id}"} <= routes
    assert not any(r and str(tid) in r for r in routes)
    trace_ids = {s.context.trace_id for s in telemetry.spans() if s.kind.name == "SERVER"}
    (point,) = [p for p in points if p.attributes.get("http.route") == "/threads/{thread_id}"]
    assert point.exemplars and {e.trace_id for e in point.exemplars} <= trace_ids


def test_logs_carry_request_id_and_trace_id(
    telemetry: CapturedTelemetry, client: TestClient
) -> None:
    """Application log lines inside a request carry its request id and trace id."""
    response = client.post("/threads", json={"title": "t"}, headers={"X-Request-ID": "req-42"})
    (server,) = [s for s in telemetry.spans() if s.kind.name == "SERVER"]
    records = [r.log_record for r in telemetry.logs() if r.log_record.body == "thread_created"]
    assert len(records) == 1
    assert records[0].attributes["request_id"] == "req-42" == response.headers["x-request-id"]
    assert records[0].trace_id == server.context.trace_id


def test_flaky_endpoint_errors_are_recorded(
    telemetry: CapturedTelemetry, client: TestClient
) -> None:
    """Every 5th call fails with 500, recorded on the span and in chenu.errors."""
    statuses = [client.get("/flaky").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 500]
    errors = telemetry.metric_points("chenu.errors")
    assert [(p.attributes["error.type"], p.value) for p in errors] == [("RuntimeError", 1)]


def test_websocket_messages_are_counted(telemetry: CapturedTelemetry, client: TestClient) -> None:
    """Websocket round trips count messages in and out on the route template."""
    with client.websocket_connect("/ws/threads/1") as ws:
        for i in range(3):
            ws.send_text(f"m{i}")
            ws.receive_text()
    (received,) = telemetry.metric_points("chenu.websocket.messages.received")
    assert received.attributes == {"http.route": "/ws/threads/{thread_id}"}
    assert received.value == 3


async def _drive(app: Any, total: int) -> None:
    """Call the ASGI app directly (no HTTP client): 10,000 requests in a few seconds."""
    rng = random.Random(1)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for i in range(total):
        path = f"/random/{rng.randrange(10**12)}/{i}" if i % 2 else "/health"
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000 + i % 1000),
            "headers": [(b"host", b"testserver"), (b"x-user-id", f"user-{i}".encode()),
                        (b"x-request-id", f"req-{i}".encode())],
        }  # fmt: skip
        await app(scope, receive, send)
    assert sorted(set(statuses)) == [200, 404]


def test_series_stay_bounded_under_hostile_cardinality(
    telemetry: CapturedTelemetry, client: TestClient
) -> None:
    """10,000 requests with distinct user ids, request ids and random paths stay bounded."""
    asyncio.run(_drive(client.app, 10_000))
    points = telemetry.metric_points("http.server.request.duration")
    assert sum(p.count for p in points) == 10_000
    assert len(points) <= HTTP_SERIES_BOUND
    data = telemetry.metrics()
    assert data is not None
    total_series = sum(
        len(m.data.data_points)
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    )  # fmt: skip
    assert total_series <= 60
