"""The README's Python snippets run as written, and do what the README says they do.

Each snippet is taken from README.md at test time (never copied here), run with only the names
it leaves to the reader (``engine``, ``llm``, ``checkout``, ...) defined, and checked through
what it exported to a real OTLP receiver or captured in memory.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

import chenu_otel
from chenu_otel.testing import OtlpSink, environ_for
from chenu_otel.tracing import traced
from tests.support import REPO_ROOT

SNIPPETS = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)


def snippet(first_line: str) -> str:
    """The README snippet that starts with `first_line` (fails if there is not exactly one)."""
    found = [s for s in SNIPPETS if s.startswith(first_line)]
    assert len(found) == 1, f"README.md has {len(found)} python snippets starting {first_line!r}"
    return found[0]


@pytest.fixture
def exporting(otlp_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpSink]:
    """OTEL_* pointing at a real OTLP receiver, for snippets that call configure() themselves."""
    for name, value in environ_for(otlp_sink, "grpc").items():
        monkeypatch.setenv(name, value)
    yield otlp_sink


def flush() -> None:
    pipeline = chenu_otel.current_pipeline()
    assert pipeline is not None and pipeline.force_flush(10_000)


def test_quick_start(exporting: OtlpSink) -> None:
    """configure() + @traced + a bound log: a span and a log record correlated with it."""
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(snippet("import chenu_otel\nfrom chenu_otel.logging import"), namespace)
    asyncio.run(namespace["process_thread"]("t-1"))
    flush()
    ((resource, span),) = exporting.wait_for(lambda s: s.spans(), timeout=10)
    assert span.name == "process_thread"
    assert resource["service.name"] == "chenu-backend"
    assert resource["deployment.environment.name"] == "dev"
    records = exporting.wait_for(
        lambda s: [r for _, r in s.logs() if r.body.string_value == "thread_processing"]
    )
    assert records[0].trace_id == span.trace_id


def test_fastapi_instrumentation(exporting: OtlpSink) -> None:
    """instrument_app(app, engine=..., redis=...): one server span per request."""
    import redis

    namespace: dict[str, Any] = {
        "engine": create_engine("sqlite://"),
        "redis_client": redis.Redis(host="127.0.0.1", port=1),  # never called by the snippet
    }
    exec(snippet("import chenu_otel\nfrom fastapi import FastAPI"), namespace)
    app = namespace["app"]

    @app.get("/threads/{thread_id}")
    def thread(thread_id: int) -> dict[str, int]:
        return {"id": thread_id}

    with TestClient(app) as client:
        assert client.get("/threads/7").status_code == 200
    flush()
    spans = exporting.wait_for(lambda s: s.spans(), timeout=10)
    assert [span.name for _, span in spans] == ["GET /threads/{thread_id}"]


def test_the_earlier_module_snippet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier integration, prefix changed: requests measured, /metrics served."""
    from fastapi import FastAPI, Response

    for signal in ("TRACES", "METRICS", "LOGS"):
        monkeypatch.setenv(f"OTEL_{signal}_EXPORTER", "none")
    namespace: dict[str, Any] = {"app": FastAPI(), "Response": Response}
    exec(snippet("from chenu_otel.logging import setup_logging"), namespace)
    app = namespace["app"]

    @app.get("/agents")
    async def agents() -> list[str]:
        return ["NOVA"]

    with TestClient(app) as client:
        client.get("/agents")
        body = client.get("/metrics").text
    assert 'http_server_request_duration_seconds_count{' in body
    assert 'http_route="/agents"' in body


@dataclass
class Thread:
    id: str
    tokens_used: int


class FakeLLM:
    def complete(self, prompt: str) -> str:
        return prompt.upper()


def test_agents_and_llm_calls(capotel: Any) -> None:
    """agent_run / llm_call / tool_call: the three GenAI spans, usage and budget recorded."""
    namespace: dict[str, Any] = {
        "thread": Thread(id="t-9", tokens_used=100),
        "llm": FakeLLM(),
        "prompt": "plan the week",
    }
    exec(snippet("from chenu_otel.genai import"), namespace)
    spans = {s.name: s for s in capotel.spans()}
    assert set(spans) == {"invoke_agent NOVA", "chat gpt-4o", "execute_tool search"}
    assert spans["invoke_agent NOVA"].attributes["gen_ai.conversation.id"] == "t-9"
    assert spans["invoke_agent NOVA"].attributes["chenu.token_budget.used"] == 250
    usage = capotel.metric_points("gen_ai.client.token.usage")
    assert sorted(p.sum for p in usage) == [30, 120]


def test_testing_your_own_code(memory_only: None) -> None:
    """capture_telemetry() sees the spans of the code under test (the snippet asserts it)."""

    @traced("checkout")
    def checkout() -> None:
        return None

    namespace: dict[str, Any] = {"checkout": checkout}
    exec(snippet("from chenu_otel.testing import"), namespace)
    assert namespace["telemetry"].span_exporter.get_finished_spans()[0].name == "checkout"
