"""The typed recorders: each method's measurements, as exported, and the views they pass."""

from __future__ import annotations

from typing import Any

import pytest

from chenu_otel.recorders import RECORDERS, normalize_method
from chenu_otel.testing import CapturedTelemetry, capture_telemetry


def points(capotel: CapturedTelemetry, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    """Metric points of `name` by their sorted attributes: sums for histograms, else values."""
    return {
        tuple(sorted(p.attributes.items())): p.sum if hasattr(p, "bucket_counts") else p.value
        for p in capotel.metric_points(name)
    }


def test_http_request_finished_records_duration_and_body_sizes(
    capotel: CapturedTelemetry,
) -> None:
    """One finished request: one duration point with the semconv attributes, and its sizes."""
    RECORDERS.http.request_finished(
        0.25, method="GET", status_code=503, route="/items/{id}", scheme="https",
        protocol_version="2", error_type="503", request_size=10, response_size=2000,
    )  # fmt: skip
    expected = (
        ("error.type", "503"),
        ("http.request.method", "GET"),
        ("http.response.status_code", 503),
        ("http.route", "/items/{id}"),
        ("network.protocol.version", "2"),
        ("url.scheme", "https"),
    )
    assert points(capotel, "http.server.request.duration") == {expected: 0.25}
    assert points(capotel, "http.server.request.body.size") == {expected: 10}
    assert points(capotel, "http.server.response.body.size") == {expected: 2000}


def test_an_unmatched_request_has_no_route(capotel: CapturedTelemetry) -> None:
    """Without a route template the point carries no http.route (one series for all)."""
    RECORDERS.http.request_finished(0.1, method="GET", status_code=404, route=None)
    ((attributes, _),) = points(capotel, "http.server.request.duration").items()
    assert "http.route" not in dict(attributes)


def test_active_requests_count_in_flight_requests(capotel: CapturedTelemetry) -> None:
    """Started and ended requests move http.server.active_requests by method and scheme."""
    RECORDERS.http.request_started("POST", "http")
    RECORDERS.http.request_started("POST", "http")
    RECORDERS.http.request_ended("POST", "http")
    mine = {
        key: value
        for key, value in points(capotel, "http.server.active_requests").items()
        if dict(key)["http.request.method"] == "POST"
    }
    assert mine == {(("http.request.method", "POST"), ("url.scheme", "http")): 1}
    RECORDERS.http.request_ended("POST", "http")


def test_methods_are_normalized_as_semconv_says() -> None:
    """Known methods are upper-cased; anything else is _OTHER (bounded cardinality)."""
    assert [normalize_method(m) for m in ("get", "PATCH", "BREW")] == ["GET", "PATCH", "_OTHER"]


def test_db_operations_and_pool(capotel: CapturedTelemetry) -> None:
    """Operation durations by system/operation/table; pool limits, states and times."""
    db = RECORDERS.db
    db.operation(0.003, system="sqlite", operation="SELECT", collection="threads")
    db.operation(0.5, system="sqlite", operation="INSERT", error_type="IntegrityError")
    db.pool_limits("main", max_connections=15, max_idle=5)
    db.connections("main", "idle", 1)
    db.connections("main", "idle", -1)
    db.connections("main", "used", 1)
    db.connection_created("main", 0.01)
    db.connection_returned("main", 0.2)
    durations = points(capotel, "db.client.operation.duration")
    assert durations[
        (("db.collection.name", "threads"), ("db.operation.name", "SELECT"),
         ("db.system.name", "sqlite"))
    ] == pytest.approx(0.003)  # fmt: skip
    assert durations[
        (("db.operation.name", "INSERT"), ("db.system.name", "sqlite"),
         ("error.type", "IntegrityError"))
    ] == pytest.approx(0.5)  # fmt: skip
    pool = (("db.client.connection.pool.name", "main"),)
    assert points(capotel, "db.client.connection.max") == {pool: 15}
    assert points(capotel, "db.client.connection.idle.max") == {pool: 5}
    usage = points(capotel, "db.client.connections.usage")
    assert usage[(("db.client.connection.pool.name", "main"), ("db.client.connection.state",
                                                               "idle"))] == 0  # fmt: skip
    assert usage[(("db.client.connection.pool.name", "main"), ("db.client.connection.state",
                                                               "used"))] == 1  # fmt: skip
    assert points(capotel, "db.client.connection.create_time") == {pool: pytest.approx(0.01)}
    assert points(capotel, "db.client.connection.use_time") == {pool: pytest.approx(0.2)}


def test_cache_operations_make_the_hit_ratio(capotel: CapturedTelemetry) -> None:
    """Lookups by result; a failed operation's duration carries error.type."""
    cache = RECORDERS.cache
    for result in ("hit", "hit", "miss"):
        cache.operation("GET", result, cache="threads", system="redis")
    cache.operation("set", "error", cache="threads", system="redis", duration_s=0.002)
    operations = points(capotel, "chenu.cache.operations")
    counts = {dict(k)["chenu.cache.result"]: v for k, v in operations.items()}
    assert counts == {"hit": 2, "miss": 1, "error": 1}
    assert {dict(k)["chenu.cache.operation"] for k in operations} == {"get", "set"}
    assert points(capotel, "chenu.cache.operation.duration") == {
        (("chenu.cache.name", "threads"), ("chenu.cache.operation", "set"),
         ("db.system.name", "redis"), ("error.type", "_OTHER")): pytest.approx(0.002)
    }  # fmt: skip


def test_genai_calls_tools_and_runs(capotel: CapturedTelemetry) -> None:
    """LLM usage by token type and cost, durations with error.type, tools, runs by outcome."""
    genai = RECORDERS.genai
    llm = genai.llm_attributes("gpt-4o", "openai", response_model="gpt-4o-2024")
    genai.llm_usage(llm, input_tokens=120, output_tokens=30, cost_usd=0.002, agent="NOVA")
    genai.llm_finished(llm, 1.5, "Timeout")
    genai.tool_call("search", outcome="failure", duration_s=0.2, agent="NOVA")
    genai.run_started("NOVA")
    genai.run_ended("NOVA")
    genai.run_finished(
        "NOVA", outcome="success", duration_s=2.0, tokens={"input": 120, "output": 30},
        cost_usd=0.002, steps=2,
    )  # fmt: skip
    usage = points(capotel, "gen_ai.client.token.usage")
    by_type = {dict(k)["gen_ai.token.type"]: v for k, v in usage.items()}
    assert by_type == {"input": 120, "output": 30}
    (duration,) = points(capotel, "gen_ai.client.operation.duration")
    assert dict(duration)["error.type"] == "Timeout"
    (cost,) = points(capotel, "chenu.llm.cost.usd").items()
    assert dict(cost[0])["gen_ai.agent.name"] == "NOVA" and cost[1] == pytest.approx(0.002)
    assert points(capotel, "chenu.agent.tool.calls") == {
        (("chenu.outcome", "failure"), ("gen_ai.agent.name", "NOVA"),
         ("gen_ai.tool.name", "search")): 1
    }  # fmt: skip
    nova = (("gen_ai.agent.name", "NOVA"),)
    assert points(capotel, "chenu.agent.active_runs") == {nova: 0}
    assert points(capotel, "chenu.agent.executions") == {
        (("chenu.outcome", "success"), ("gen_ai.agent.name", "NOVA")): 1
    }
    tokens = points(capotel, "chenu.agent.tokens")
    assert {dict(k)["gen_ai.token.type"]: v for k, v in tokens.items()} == by_type
    assert points(capotel, "chenu.agent.cost.usd") == {nova: pytest.approx(0.002)}
    (steps,) = capotel.metric_points("chenu.agent.steps")
    assert steps.sum == 2


def test_threads_and_token_budgets(capotel: CapturedTelemetry) -> None:
    """Thread lifecycle, messages by role, and a budget charge that exhausts it."""
    threads = RECORDERS.threads
    threads.opened()
    threads.event("created")
    threads.message("assistant", tokens=42)
    threads.ended("archived")
    threads.budget_charged("NOVA", charged=100, limit=100, used=120)
    assert points(capotel, "chenu.thread.created") == {(): 1}
    assert points(capotel, "chenu.thread.active") == {(): 0}
    assert points(capotel, "chenu.thread.closed") == {
        (("chenu.thread.close_reason", "archived"),): 1
    }
    assistant = (("chenu.message.role", "assistant"),)
    assert points(capotel, "chenu.thread.messages") == {assistant: 1}
    assert points(capotel, "chenu.thread.message.tokens") == {assistant: 42}
    nova = (("gen_ai.agent.name", "NOVA"),)
    assert points(capotel, "chenu.thread.token_budget.used") == {nova: 100}
    assert points(capotel, "chenu.thread.token_budget.remaining") == {nova: 0}
    assert points(capotel, "chenu.thread.token_budget.utilization") == {nova: 1.0}
    assert points(capotel, "chenu.thread.token_budget.exhausted") == {nova: 1}


def test_websocket_connections_and_messages(capotel: CapturedTelemetry) -> None:
    """A connection's life and its messages by direction, with sizes when known."""
    websocket = RECORDERS.websocket
    route = {"http.route": "/ws/{id}"}
    websocket.connected(route)
    websocket.message(route, "received", size=12)
    websocket.message(route, "sent")
    websocket.disconnected(route, 3.0)
    key = (("http.route", "/ws/{id}"),)
    assert points(capotel, "chenu.websocket.connections") == {key: 1}
    assert points(capotel, "chenu.websocket.connections.active") == {key: 0}
    assert points(capotel, "chenu.websocket.messages.received") == {key: 1}
    assert points(capotel, "chenu.websocket.messages.sent") == {key: 1}
    assert points(capotel, "chenu.websocket.connection.duration") == {key: 3.0}
    assert points(capotel, "chenu.websocket.message.size") == {
        (("chenu.websocket.direction", "received"), ("http.route", "/ws/{id}")): 12
    }


def test_errors_by_type_and_source(capotel: CapturedTelemetry) -> None:
    """chenu.errors counts by error.type and the layer that saw it."""
    RECORDERS.errors.error("ValueError", "http")
    RECORDERS.errors.error("ValueError", "http", 2)
    assert points(capotel, "chenu.errors") == {
        (("chenu.error.source", "http"), ("error.type", "ValueError")): 3
    }


def test_identifiers_never_reach_a_metric(capotel: CapturedTelemetry) -> None:
    """The catalogue's views drop any attribute outside the allow-list, identifiers included."""
    RECORDERS.http.request_duration.record(
        0.1, {"http.route": "/x", "user.id": "u-1", "chenu.request.id": "r-1"}
    )
    assert points(capotel, "http.server.request.duration") == {(("http.route", "/x"),): 0.1}


def test_recorders_follow_each_new_pipeline(capotel: CapturedTelemetry) -> None:
    """The same recorder instruments record into whichever pipeline is installed now."""
    RECORDERS.errors.error("First", "test")
    assert points(capotel, "chenu.errors")
    with capture_telemetry() as second:
        RECORDERS.errors.error("Second", "test")
        assert points(second, "chenu.errors") == {
            (("chenu.error.source", "test"), ("error.type", "Second")): 1
        }
