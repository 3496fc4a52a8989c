"""The earlier module's integration snippet runs with only the import prefix changed."""

from __future__ import annotations

import importlib
import re
import subprocess

from fastapi import FastAPI
from starlette.testclient import TestClient

import chenu_otel
from chenu_otel import pipeline
from tests.support import DEBIAN_PROMTOOL, REPO_ROOT, require_binary


def build_seed_app() -> FastAPI:
    # --- the seed README's snippet, `app.` replaced by `chenu_otel.` ---
    from chenu_otel.logging import setup_logging
    from chenu_otel.metrics import init_metrics
    from chenu_otel.middleware import MonitoringMiddleware
    from chenu_otel.tracing import instrument_fastapi, setup_tracing

    app = FastAPI()

    @app.on_event("startup")
    async def startup() -> None:
        setup_logging(level="INFO", format="json")
        init_metrics("chenu-backend", "1.0.0", "dev")
        setup_tracing()
        instrument_fastapi(app)

    app.add_middleware(MonitoringMiddleware)

    @app.get("/metrics")
    async def metrics():  # type: ignore[no-untyped-def]
        from fastapi import Response

        from chenu_otel.metrics import get_content_type, get_metrics

        return Response(get_metrics(), media_type=get_content_type())

    # --- end of snippet ---

    @app.get("/agents")
    async def agents() -> list[str]:
        return ["NOVA"]

    return app


def test_seed_snippet_serves_requests_and_metrics(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Startup configures everything; requests are measured; /metrics is valid Prometheus text."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    # No exporter asks for a pull endpoint: init_metrics() itself must provide /metrics.
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    pipeline.reset()
    with TestClient(build_seed_app()) as client:
        assert (
            client.get("/agents", headers={"X-Request-ID": "seed-1"}).headers["x-request-id"]
            == "seed-1"
        )
        body = client.get("/metrics").content
    assert chenu_otel.current_pipeline() is not None
    assert b"http_server_request_duration_seconds_count{" in body
    assert b'http_route="/agents"' in body
    assert b'service_name="chenu-backend"' in body or b"chenu-backend" in body
    promtool = require_binary(DEBIAN_PROMTOOL, "run scripts/install-debian-packages")
    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=30, check=False)  # fmt: skip
    assert check.returncode == 0, check.stderr.decode()


# Every public name the README documents, by module (the README's own lists, section by section).
README_NAMES = {
    "chenu_otel": ["configure", "shutdown", "instrument_app", "current_pipeline"],
    "chenu_otel.logging": [
        "setup_logging", "get_logger", "bind_context", "clear_context", "log_request",
        "log_database_query", "log_cache_operation", "log_agent_execution", "log_thread_event",
    ],
    "chenu_otel.tracing": [
        "traced", "create_span", "add_span_attributes", "get_tracer", "setup_tracing",
        "instrument_fastapi",
    ],
    "chenu_otel.metrics": [
        "views", "get_metrics", "get_content_type", "init_metrics", "record_http_request",
        "record_agent_execution", "record_db_query", "record_cache_operation",
        "record_thread_event", "record_websocket_connect", "record_websocket_disconnect",
        "record_websocket_message", "agent_cost_usd_total", "Counter",
    ],
    "chenu_otel.middleware": ["MonitoringMiddleware"],
    "chenu_otel.genai": [
        "agent_run", "llm_call", "tool_call", "TokenBudget", "traced_agent", "traced_tool",
    ],
    "chenu_otel.testing": ["capture_telemetry", "OtlpSink"],
    "chenu_otel.demo": ["create_app"],
}  # fmt: skip


def test_every_public_name_the_readme_documents_still_resolves() -> None:
    """The names listed above, and every dotted ``chenu_otel.…`` name in README.md, resolve."""
    readme = (REPO_ROOT / "README.md").read_text()
    dotted = set(re.findall(r"`(chenu_otel(?:\.\w+)+)", readme))
    missing = []
    for module, names in README_NAMES.items():
        imported = importlib.import_module(module)
        missing += [f"{module}.{n}" for n in names if not hasattr(imported, n)]
    for name in sorted(dotted):
        parts = name.split(".")
        for split in range(len(parts), 0, -1):
            try:
                target: object = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                target = getattr(target, attribute, None)
            if target is None:
                missing.append(name)
            break
    assert not missing, f"README names that no longer resolve: {missing}"
    assert len(dotted) >= 8, dotted  # the scan found the README's references
