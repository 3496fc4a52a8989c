"""The earlier module's metric API (chenu_otel.compat, also under chenu_otel.metrics): each
helper records what the native path records, through the same recorders, and never raises."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chenu_otel import metrics as seed
from chenu_otel.genai import agent_run, llm_call, tool_call
from chenu_otel.testing import CapturedTelemetry, capture_telemetry


def points(telemetry: CapturedTelemetry, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {
        tuple(sorted(p.attributes.items())): p.sum if hasattr(p, "bucket_counts") else p.value
        for p in telemetry.metric_points(name)
    }


NATIVE_AND_SEED = [
    "gen_ai.client.token.usage",
    "chenu.llm.cost.usd",
    "chenu.agent.tool.calls",
    "chenu.agent.executions",
    "chenu.agent.tokens",
    "chenu.agent.cost.usd",
]


def test_seed_helpers_record_exactly_what_the_genai_context_managers_record(
    memory_only: None,
) -> None:
    """An agent run reported through record_* equals the same run made with agent_run():
    same metrics, same attributes, same values (token types included)."""
    with capture_telemetry() as native:
        with agent_run("NOVA", agent_id="a-1"):
            with llm_call("m", provider="p") as call:
                call.record_usage(input_tokens=12, output_tokens=3, cost_usd=0.5)
            with tool_call("search"):
                pass
        native_points = {name: points(native, name) for name in NATIVE_AND_SEED}
    with capture_telemetry() as helpers:
        seed.record_llm_call("m", provider="p", input_tokens=12, output_tokens=3, cost_usd=0.5,
                             agent_name="NOVA")  # fmt: skip
        seed.record_tool_call("search", 0.01, agent_name="NOVA")
        seed.record_agent_execution("a-1", "NOVA", 0.2, 15, 0.5, True,
                                    input_tokens=12, output_tokens=3)  # fmt: skip
        helper_points = {name: points(helpers, name) for name in NATIVE_AND_SEED}
    assert helper_points == native_points


def test_an_unsplit_token_count_is_labelled_total(capotel: CapturedTelemetry) -> None:
    """The earlier signature only knows the total: it is counted as gen_ai.token.type=total,
    and the failed run is counted as an error."""
    seed.record_agent_execution("a-1", "NOVA", 1.2, 150, 0.0045, False)
    assert points(capotel, "chenu.agent.tokens") == {
        (("gen_ai.agent.name", "NOVA"), ("gen_ai.token.type", "total")): 150
    }
    assert points(capotel, "chenu.agent.executions") == {
        (("chenu.outcome", "failure"), ("gen_ai.agent.name", "NOVA")): 1
    }
    assert points(capotel, "chenu.errors") == {
        (("chenu.error.source", "agent"), ("error.type", "AgentExecutionFailed")): 1
    }


def test_http_db_cache_thread_and_websocket_helpers(capotel: CapturedTelemetry) -> None:
    """Each helper lands in its catalogue metric with the semconv attributes."""
    seed.record_http_request("get", "/agents", 502, 0.045)
    seed.record_db_query("select", "threads", 0.002, success=False)
    seed.record_cache_operation("get", hit=False, cache="threads")
    seed.record_thread_event("created", "t-1")
    seed.record_thread_event("message", "t-1", role="assistant", tokens=7)
    seed.record_thread_event("archived", "t-1")
    seed.record_websocket_connect("/ws")
    seed.record_websocket_message("/ws", "sent", 5)
    seed.record_websocket_disconnect("/ws", 2.0)
    seed.record_error("Boom", source="worker")
    assert points(capotel, "http.server.request.duration") == {
        (("error.type", "502"), ("http.request.method", "GET"),
         ("http.response.status_code", 502), ("http.route", "/agents")): 0.045
    }  # fmt: skip
    assert points(capotel, "db.client.operation.duration") == {
        (("db.collection.name", "threads"), ("db.operation.name", "SELECT"),
         ("db.system.name", "sqlite"), ("error.type", "_OTHER")): 0.002
    }  # fmt: skip
    (cache,) = points(capotel, "chenu.cache.operations")
    assert dict(cache)["chenu.cache.result"] == "miss"
    assert points(capotel, "chenu.thread.active") == {(): 0}
    assert points(capotel, "chenu.thread.message.tokens") == {
        (("chenu.message.role", "assistant"),): 7
    }
    assert points(capotel, "chenu.websocket.connections.active") == {(("http.route", "/ws"),): 0}
    assert points(capotel, "chenu.websocket.message.size") == {
        (("chenu.websocket.direction", "sent"), ("http.route", "/ws")): 5
    }
    assert points(capotel, "chenu.errors") == {
        (("chenu.error.source", "worker"), ("error.type", "Boom")): 1
    }


def test_prometheus_client_style_metrics(capotel: CapturedTelemetry) -> None:
    """Counter/Gauge/Histogram keep prometheus_client's calls; the module-level seed counters
    land in catalogue metrics with identifiers dropped."""
    events = seed.Counter("custom_events_total", "My custom events", ["event_type"])
    events.labels(event_type="signup").inc()
    events.labels("signup").inc(2)
    queue = seed.Gauge("queue_depth", "Queued jobs", ["queue"])
    queue.labels(queue="mail").inc(3)
    queue.labels(queue="mail").dec()
    latency = seed.Histogram("job_seconds", "Job latency", buckets=[0.1, 1.0, float("inf")])
    latency.observe(0.5)
    seed.agent_cost_usd_total.labels(agent_id="a-1", agent_name="NOVA").inc(0.25)
    seed.agent_executions_total.labels("a-1", "NOVA", "success").inc()
    seed.errors_total.labels(error_type="Timeout", component="llm").inc()
    assert points(capotel, "custom_events") == {(("event_type", "signup"),): 3}
    assert points(capotel, "queue_depth") == {(("queue", "mail"),): 2}
    (histogram,) = capotel.metric_points("job_seconds")
    assert histogram.explicit_bounds == (0.1, 1.0)
    assert points(capotel, "chenu.agent.cost.usd") == {(("gen_ai.agent.name", "NOVA"),): 0.25}
    assert points(capotel, "chenu.agent.executions") == {
        (("chenu.outcome", "success"), ("gen_ai.agent.name", "NOVA")): 1
    }
    assert points(capotel, "chenu.errors") == {
        (("chenu.error.source", "llm"), ("error.type", "Timeout")): 1
    }


def test_unknown_labels_are_dropped_with_one_warning(
    capotel: CapturedTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """Labels outside labelnames are the allow-list at work: dropped, warned about once."""
    counter = seed.Counter("signups_total", "Signups", ["plan"])
    with caplog.at_level(logging.WARNING, logger="chenu_otel"):
        counter.labels(plan="pro", user_id="u-1").inc()
        counter.labels(plan="pro", user_id="u-2").inc()
    assert points(capotel, "signups") == {(("plan", "pro"),): 2}
    assert len([r for r in caplog.records if "not among its labelnames" in r.getMessage()]) == 1


def test_misuse_never_raises_into_the_caller(capotel: CapturedTelemetry) -> None:
    """A counter asked to go down, or a helper given garbage, records nothing and raises
    nothing."""
    counter = seed.Counter("downs_total", "Cannot go down", ["k"])
    counter.labels(k="x").dec()
    seed.record_http_request("GET", "/x", "not a status", 0.1)  # type: ignore[arg-type]
    assert capotel.metric_points("downs") == []
    assert capotel.metric_points("http.server.request.duration") == []
