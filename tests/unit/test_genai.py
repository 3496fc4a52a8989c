"""Agent telemetry: GenAI semconv spans, token usage, cost and budget in one call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chenu_otel.genai import TokenBudget, agent_run, llm_call, traced_tool
from chenu_otel.testing import CapturedTelemetry, capture_telemetry


@pytest.fixture
def telemetry(memory_only: None) -> Iterator[CapturedTelemetry]:
    with capture_telemetry(service_name="genai-test") as captured:
        yield captured


def values(telemetry: CapturedTelemetry, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {
        tuple(sorted(p.attributes.items())): (p.sum if hasattr(p, "bucket_counts") else p.value)
        for p in telemetry.metric_points(name)
    }


@traced_tool("search")
def search(query: str) -> str:
    return query.upper()


def test_agent_run_with_llm_and_tool_calls(telemetry: CapturedTelemetry) -> None:
    """invoke_agent > chat + execute_tool spans with semconv attributes; usage, cost, budget."""
    budget = TokenBudget(limit=1000, used=700)
    with agent_run("NOVA", agent_id="agent-001", thread_id="thread-9", token_budget=budget):
        with llm_call("fake-gpt", provider="chenu-fake") as call:
            call.record_usage(
                input_tokens=120, output_tokens=30, cost_usd=0.002, response_model="fake-gpt-1"
            )
        assert search("q") == "Q"

    spans = {s.name: s for s in telemetry.spans()}
    assert set(spans) == {"invoke_agent NOVA", "chat fake-gpt", "execute_tool search"}
    run, chat, tool = (
        spans["invoke_agent NOVA"],
        spans["chat fake-gpt"],
        spans["execute_tool search"],
    )
    assert chat.parent.span_id == run.context.span_id
    assert tool.parent.span_id == run.context.span_id
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.id"] == "agent-001"
    assert run.attributes["gen_ai.conversation.id"] == "thread-9"
    assert run.attributes["gen_ai.usage.input_tokens"] == 120
    assert run.attributes["chenu.token_budget.remaining"] == 150
    assert chat.kind.name == "CLIENT"
    assert chat.attributes["gen_ai.request.model"] == "fake-gpt"
    assert chat.attributes["gen_ai.usage.output_tokens"] == 30
    assert chat.attributes["gen_ai.conversation.id"] == "thread-9"
    assert tool.attributes["gen_ai.tool.name"] == "search"

    usage = values(telemetry, "gen_ai.client.token.usage")
    by_type = {dict(k)["gen_ai.token.type"]: v for k, v in usage.items()}
    assert by_type == {"input": 120, "output": 30}
    assert all(dict(k)["gen_ai.response.model"] == "fake-gpt-1" for k in usage)
    assert len(telemetry.metric_points("gen_ai.client.operation.duration")) == 1
    assert values(telemetry, "chenu.agent.executions") == {
        (("chenu.outcome", "success"), ("gen_ai.agent.name", "NOVA")): 1
    }
    assert values(telemetry, "chenu.agent.cost.usd") == {(("gen_ai.agent.name", "NOVA"),): 0.002}
    assert values(telemetry, "chenu.thread.token_budget.used") == {
        (("gen_ai.agent.name", "NOVA"),): 150
    }
    assert values(telemetry, "chenu.thread.token_budget.remaining") == {
        (("gen_ai.agent.name", "NOVA"),): 150
    }
    assert budget.used == 850
    (steps,) = telemetry.metric_points("chenu.agent.steps")
    assert steps.sum == 2
    (active,) = telemetry.metric_points("chenu.agent.active_runs")
    assert active.value == 0


def test_no_identifier_reaches_a_metric(telemetry: CapturedTelemetry) -> None:
    """Agent id and thread id stay on spans: no metric point carries them."""
    with (
        agent_run("NOVA", agent_id="agent-001", thread_id="thread-9"),
        llm_call("m", provider="p") as call,
    ):
        call.record_usage(input_tokens=1, output_tokens=1, cost_usd=0.1)
    data = telemetry.metrics()
    assert data is not None
    seen = [
        v
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
        for v in p.attributes.values()
    ]
    assert seen and "agent-001" not in seen and "thread-9" not in seen


def test_failure_marks_outcome_records_error_and_propagates(telemetry: CapturedTelemetry) -> None:
    """An exception in the run fails it (span error, failure outcome, error count), unchanged."""

    class ModelDown(Exception):
        pass

    with pytest.raises(ModelDown), agent_run("NOVA"), llm_call("m", provider="p"):
        raise ModelDown("503")

    spans = {s.name: s for s in telemetry.spans()}
    assert spans["chat m"].status.status_code.name == "ERROR"
    assert spans["chat m"].attributes["error.type"] == "ModelDown"
    assert spans["invoke_agent NOVA"].attributes["chenu.outcome"] == "failure"
    assert values(telemetry, "chenu.agent.executions") == {
        (("chenu.outcome", "failure"), ("gen_ai.agent.name", "NOVA")): 1
    }
    (duration,) = telemetry.metric_points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "ModelDown"
    errors = values(telemetry, "chenu.errors")
    assert errors[(("chenu.error.source", "llm"), ("error.type", "ModelDown"))] == 1
    assert errors[(("chenu.error.source", "agent"), ("error.type", "ModelDown"))] == 1


def test_exhausted_budget_is_counted(telemetry: CapturedTelemetry) -> None:
    """A run that uses the rest of the budget counts one exhaustion, utilization 1.0."""
    with (
        agent_run("NOVA", token_budget=TokenBudget(limit=100, used=90)),
        llm_call("m", provider="p") as call,
    ):
        call.record_usage(input_tokens=8, output_tokens=8)
    assert values(telemetry, "chenu.thread.token_budget.exhausted") == {
        (("gen_ai.agent.name", "NOVA"),): 1
    }
    (util,) = telemetry.metric_points("chenu.thread.token_budget.utilization")
    assert util.max == 1.0


async def _async_agent() -> int:
    async with agent_run("ASYNC") as run, llm_call("m", provider="p") as call:
        call.record_usage(input_tokens=2, output_tokens=3)
    return run.input_tokens + run.output_tokens


def test_async_context_managers(telemetry: CapturedTelemetry) -> None:
    """`async with` works the same and accumulates usage on the run."""
    import asyncio

    assert asyncio.run(_async_agent()) == 5
    assert {s.name for s in telemetry.spans()} == {"invoke_agent ASYNC", "chat m"}
