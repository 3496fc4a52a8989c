"""One user request, one trace across two services, with real binaries on loopback.

The native stack (`chenu_otel.stack`: our collector, Prometheus 3, Jaeger v2, Redis) runs the
demo, which starts its LLM provider as a second service and calls it through httpx. A message
posted with a known ``traceparent`` must come back from Jaeger as one trace holding both
services' spans, the provider's server span a child of the demo's client span; the outbound
duration reaches Prometheus as ``http_client_request_duration_seconds_*`` with bounded labels and
exemplars that open such traces.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chenu_otel.demo.provider import PROVIDER_SERVICE_NAME
from chenu_otel.stack.binaries import find_binary
from chenu_otel.stack.runner import (
    SERVICE_NAME,
    SERVICE_NAMESPACE,
    NativeStack,
    StackBinaries,
    StackFiles,
)
from tests.collector_fixtures import build_collector
from tests.deploy_files import backend_binary
from tests.support import REPO_ROOT, poll_until

pytestmark = pytest.mark.slow

MESSAGES = 5
CLIENT_DURATION = "http_client_request_duration_seconds"
# Labels the catalogue's view lets through, plus what Prometheus adds from the resource.
ALLOWED_LABELS = {
    "__name__", "job", "instance", "service_name", "service_namespace", "service_version",
    "deployment_environment_name", "otel_scope_name", "otel_scope_version",
    "otel_scope_schema_url", "http_request_method", "server_address",
    "http_response_status_code", "error_type",
}  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NativeStack, list[str]]]:
    """The native stack without Alertmanager, logs to VictoriaLogs (as `chenu-otel stack run`
    runs it); `MESSAGES` messages posted, each under a trace id of our own (returned with the
    stack)."""
    binaries = StackBinaries(
        collector=build_collector(),
        prometheus=backend_binary("prometheus"),
        jaeger=backend_binary("jaeger"),
        alertmanager=backend_binary("alertmanager"),  # not started: with_alertmanager=False
        redis_server=find_binary("redis-server"),
        victoria_logs=backend_binary("victoria-logs"),
    )
    native = NativeStack(
        tmp_path_factory.mktemp("cross-service"), binaries, StackFiles(REPO_ROOT),
        with_alertmanager=False,
    )  # fmt: skip
    native.start()
    try:
        trace_ids = []
        with httpx.Client(base_url=native.demo_url, timeout=10) as client:
            thread_id = client.post("/threads", json={"title": "two services"}).json()["id"]
            for turn in range(MESSAGES):
                trace_id = secrets.token_hex(16)
                response = client.post(
                    f"/threads/{thread_id}/messages",
                    json={"content": f"question {turn}"},
                    headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
                )
                assert response.status_code == 201, response.text
                trace_ids.append(trace_id)
        yield native, trace_ids
    finally:
        native.stop()


def _service_of(trace: dict[str, Any], span: dict[str, Any]) -> str:
    return str(trace["processes"][span["processID"]]["serviceName"])


def _tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span.get("tags", []) if t["key"] == key), None)


def _parent(span: dict[str, Any]) -> str | None:
    return next(
        (str(r["spanID"]) for r in span.get("references", []) if r.get("refType") == "CHILD_OF"),
        None,
    )


def _complete_trace(native: NativeStack, trace_id: str) -> dict[str, Any]:
    """The trace once Jaeger holds both services' server spans (each process exports its own
    spans in its own batches, so either may land last)."""

    def landed() -> dict[str, Any] | None:
        trace = native.jaeger.trace(trace_id)
        if trace and {SERVICE_NAME, PROVIDER_SERVICE_NAME} <= {
            _service_of(trace, s)
            for s in trace["spans"]
            if any(t["key"] == "span.kind" and t["value"] == "server" for t in s["tags"])
        }:
            return trace
        return None

    return poll_until(landed, timeout=45, what=f"trace {trace_id} with both server spans")


def test_message_trace_spans_both_services_with_correct_parent_links(
    stack: tuple[NativeStack, list[str]],
) -> None:
    """Each posted message is one trace: the demo's server span → agent → LLM call → httpx
    CLIENT span (scrubbed, stable semconv) → the provider's SERVER span, parented across the
    process boundary by the injected traceparent."""
    native, trace_ids = stack
    for trace_id in trace_ids:
        trace = _complete_trace(native, trace_id)
        spans = {s["spanID"]: s for s in trace["spans"]}
        assert {s["traceID"] for s in trace["spans"]} == {trace_id}
        assert {_service_of(trace, s) for s in trace["spans"]} == {
            SERVICE_NAME,
            PROVIDER_SERVICE_NAME,
        }
        (provider_server,) = [
            s for s in trace["spans"] if _service_of(trace, s) == PROVIDER_SERVICE_NAME
        ]
        assert provider_server["operationName"] == "POST /v1/completions"
        assert _tag(provider_server, "span.kind") == "server"
        client = spans[str(_parent(provider_server))]
        assert _service_of(trace, client) == SERVICE_NAME
        assert _tag(client, "span.kind") == "client"
        assert client["operationName"] == "POST"
        assert _tag(client, "http.request.method") == "POST"
        assert _tag(client, "http.response.status_code") == 200
        assert _tag(client, "server.address") == "127.0.0.1"
        assert str(_tag(client, "url.full")).endswith("/v1/completions")
        # client → LLM call span → ... → the demo's server span, whose parent is our traceparent
        ancestors = []
        current = _parent(client)
        while current in spans:
            ancestors.append(spans[current])
            current = _parent(spans[current])
        assert ancestors[0]["operationName"].startswith("chat ")
        assert _tag(ancestors[-1], "span.kind") == "server"
        assert ancestors[-1]["operationName"] == "POST /threads/{thread_id}/messages"


def test_client_duration_reaches_prometheus_with_bounded_labels_and_exemplars(
    stack: tuple[NativeStack, list[str]],
) -> None:
    """``http.client.request.duration`` arrives as ``http_client_request_duration_seconds_*``
    for the demo's job, one series per method/host/status, and its exemplars are traces that
    reach the provider."""
    native, _ = stack
    job = f"{SERVICE_NAMESPACE}/{SERVICE_NAME}"
    selector = f'{CLIENT_DURATION}_count{{job="{job}"}}'

    def counted() -> list[dict[str, Any]] | None:
        result = list(native.prometheus.query(selector)["result"])
        return result if sum(float(r["value"][1]) for r in result) >= MESSAGES else None

    series = poll_until(counted, timeout=60, what=f"{MESSAGES} requests in {selector}")
    assert len(series) == 1, series
    labels = series[0]["metric"]
    assert set(labels) <= ALLOWED_LABELS, set(labels) - ALLOWED_LABELS
    assert (labels["http_request_method"], labels["server_address"]) == ("POST", "127.0.0.1")
    assert labels["http_response_status_code"] == "200"
    assert native.prometheus.query(f'{CLIENT_DURATION}_bucket{{job="{job}", le="+Inf"}}')["result"]

    exemplar_traces = poll_until(
        lambda: native.prometheus.exemplar_trace_ids(f"{CLIENT_DURATION}_bucket"),
        timeout=30,
        what=f"exemplars on {CLIENT_DURATION}_bucket",
    )
    trace = _complete_trace(native, exemplar_traces[0])
    assert PROVIDER_SERVICE_NAME in {_service_of(trace, s) for s in trace["spans"]}


def test_message_logs_are_found_in_victorialogs_by_the_trace_id(
    stack: tuple[NativeStack, list[str]],
) -> None:
    """The stack's logs backend: a LogsQL query by a posted message's trace id returns log lines
    of that trace only, each with a span id Jaeger holds for it."""
    native, trace_ids = stack
    assert native.victorialogs is not None
    api = native.victorialogs.api
    for trace_id in trace_ids[:2]:
        trace = _complete_trace(native, trace_id)
        lines = poll_until(
            lambda t=trace_id: api.logsql(f'trace_id:"{t}"'),  # type: ignore[misc]
            timeout=30,
            what=f"log lines of trace {trace_id} in VictoriaLogs",
        )
        assert {line["trace_id"] for line in lines} == {trace_id}, lines
        assert {line["span_id"] for line in lines} <= {s["spanID"] for s in trace["spans"]}, lines
