"""Outbound HTTP through httpx, as exported over OTLP: a client app calls the demo's LLM provider
(a second service, its own process) and both export to one receiver on 127.0.0.1.

The client runs in its own interpreter: contrib instrumentations fix the HTTP semantic
conventions of a process the first time one of them runs, so only a fresh process shows what
an app started with ``OTEL_SEMCONV_STABILITY_OPT_IN=http`` (or through the distro) exports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chenu_otel.demo.provider import DEFAULT_API_KEY, PROVIDER_SERVICE_NAME
from chenu_otel.scrubbing import REDACTED
from chenu_otel.stack.processes import LOOPBACK, ManagedProcess, free_port, http_ok
from chenu_otel.testing import OtlpSink, attributes_of, environ_for

CLIENT_SERVICE = "chenu-outbound-client"
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
# Secrets the client puts in URLs and headers; none may reach the receiver.
CANARIES = ("sk-canary-query-42", "hunter2-canary-pw", "canary-token-77", DEFAULT_API_KEY)
ALLOWED_METRIC_KEYS = {
    "http.request.method", "server.address", "http.response.status_code", "error.type",
}  # fmt: skip

# Calls the provider with a sync and an async client, secrets in the query string, the userinfo
# and a captured Authorization header; instruments three times (only the first may count). A
# span processor of the user's own prints every span to stdout as it ends: it sits outside
# chenu-otel's scrubbing exporters, so only scrubbing at the source keeps secrets out of it.
CODE_PATH_CLIENT = textwrap.dedent(
    f"""
    import asyncio, sys
    import httpx
    from fastapi import FastAPI
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    import chenu_otel
    from chenu_otel.instrumentation import instrument_app, instrument_httpx
    from chenu_otel.tracing import create_span

    base = sys.argv[1]
    chenu_otel.configure(service_name="{CLIENT_SERVICE}")
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    instrument_httpx()
    instrument_httpx()
    instrument_app(FastAPI())
    with create_span("agent step") as span:
        with httpx.Client(base_url=base) as client:
            reply = client.post(
                "/v1/completions?api_key=sk-canary-query-42&model=m",
                json={{"model": "m", "prompt": "hello"}},
                headers={{"Authorization": "Bearer {DEFAULT_API_KEY}"}},
            )
            assert reply.status_code == 200, reply.text

        async def health() -> int:
            secret_base = base.replace("http://", "http://alice:hunter2-canary-pw@")
            async with httpx.AsyncClient() as client:
                response = await client.get(f"{{secret_base}}/health?token=canary-token-77")
                return response.status_code

        assert asyncio.run(health()) == 200
    print(format(span.get_span_context().trace_id, "032x"))
    assert chenu_otel.shutdown(10_000)
    """
)

# Plain httpx, no chenu-otel call: `opentelemetry-instrument` with chenu-otel's distro.
ZERO_CODE_CLIENT = textwrap.dedent(
    """
    import sys
    import httpx
    from opentelemetry import trace

    with trace.get_tracer("zero-code").start_as_current_span("job") as span:
        response = httpx.get(f"{sys.argv[1]}/health?api_key=sk-canary-query-42")
        assert response.status_code == 200
    print(format(span.get_span_context().trace_id, "032x"))
    """
)


@pytest.fixture(scope="module")
def sink() -> Iterator[OtlpSink]:
    """One OTLP receiver for the provider and the clients of this module."""
    with OtlpSink() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def provider_url(sink: OtlpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo's LLM provider (``python -m chenu_otel.demo.provider``) exporting to `sink`."""
    port = free_port()
    env = environ_for(sink, "http/protobuf", OTEL_SERVICE_NAME=PROVIDER_SERVICE_NAME)
    argv = [sys.executable, "-m", "chenu_otel.demo.provider", "--port", str(port)]
    process = ManagedProcess("provider", argv, log_dir=tmp_path_factory.mktemp("provider"), env=env)
    url = f"http://{LOOPBACK}:{port}"
    with process:
        process.wait_ready(lambda: http_ok(f"{url}/health"), timeout=60)
        yield url


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


def _run_client(argv: list[str], env: dict[str, str]) -> tuple[str, str]:
    """(the trace id the client printed last, its whole stdout)."""
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1], result.stdout


def _spans_of(sink: OtlpSink, trace_id: str) -> list[tuple[str, Any]]:
    """(service.name, span) of every span of the trace that arrived so far."""
    return [
        (resource["service.name"], span)
        for resource, span in sink.spans()
        if span.trace_id.hex() == trace_id
    ]


def _duration_points(sink: OtlpSink, service: str) -> list[Any]:
    """The latest export's ``http.client.request.duration`` points of `service`."""
    points: list[Any] = []
    for resource, metric in sink.metrics():
        if resource["service.name"] == service and metric.name == "http.client.request.duration":
            points = list(metric.histogram.data_points)  # cumulative: the last one has it all
    return points


def _exemplar_trace_ids(sink: OtlpSink, service: str) -> set[str]:
    """Trace ids of the duration exemplars of `service` in any export (each export carries the
    exemplars of its own interval only)."""
    return {
        exemplar.trace_id.hex()
        for resource, metric in sink.metrics()
        if resource["service.name"] == service and metric.name == "http.client.request.duration"
        for point in metric.histogram.data_points
        for exemplar in point.exemplars
    }


def _assert_no_canary(spans: list[tuple[str, Any]]) -> None:
    for _, span in spans:
        text = repr(attributes_of(span.attributes)) + span.name
        assert not [c for c in CANARIES if c in text], (span.name, text)


def test_one_trace_across_client_and_provider_with_scrubbed_client_spans(
    sink: OtlpSink, provider_url: str
) -> None:
    """Two requests, two CLIENT spans (instrumenting thrice counts once) with the stable semconv
    attributes and no secret; the provider's SERVER span continues the client span's trace
    (traceparent crossed the wire); the duration metric keeps only allow-listed labels."""
    env = _clean_environ()
    env.update(
        environ_for(sink, "http/protobuf", OTEL_SEMCONV_STABILITY_OPT_IN="http"),
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST="authorization",
    )
    trace_id, stdout = _run_client([sys.executable, "-c", CODE_PATH_CLIENT, provider_url], env)
    assert stdout.count('"kind": "SpanKind.CLIENT"') == 2, stdout
    assert not [c for c in CANARIES if c in stdout], stdout

    def both_services(s: OtlpSink) -> list[tuple[str, Any]]:
        spans = _spans_of(s, trace_id)
        servers = [sp for svc, sp in spans if svc == PROVIDER_SERVICE_NAME]
        return spans if len(servers) == 2 else []

    spans = sink.wait_for(both_services, timeout=20)
    clients = [sp for svc, sp in spans if svc == CLIENT_SERVICE and sp.kind == SPAN_KIND_CLIENT]
    assert len(clients) == 2
    (step,) = [sp for svc, sp in spans if sp.name == "agent step"]
    get, post = sorted(clients, key=lambda sp: attributes_of(sp.attributes)["http.request.method"])
    port = int(provider_url.rsplit(":", 1)[1])
    assert attributes_of(post.attributes) == {
        "http.request.method": "POST",
        "url.full": f"{provider_url}/v1/completions?api_key={REDACTED}&model=m",
        "server.address": LOOPBACK,
        "server.port": port,
        "network.peer.address": LOOPBACK,
        "network.peer.port": port,
        "http.request.header.authorization": REDACTED,
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }
    assert post.name == "POST" and post.parent_span_id == step.span_id
    assert attributes_of(get.attributes)["url.full"] == (
        f"http://{REDACTED}@{LOOPBACK}:{port}/health?token={REDACTED}"
    )
    _assert_no_canary(spans)

    servers = {sp.name: sp for svc, sp in spans if svc == PROVIDER_SERVICE_NAME}
    assert set(servers) == {"POST /v1/completions", "GET /health"}
    assert servers["POST /v1/completions"].kind == SPAN_KIND_SERVER
    assert servers["POST /v1/completions"].parent_span_id == post.span_id
    assert servers["GET /health"].parent_span_id == get.span_id

    points = sink.wait_for(lambda s: _duration_points(s, CLIENT_SERVICE), timeout=20)
    labels = [attributes_of(p.attributes) for p in points]
    assert all(set(label) <= ALLOWED_METRIC_KEYS for label in labels), labels
    assert {"http.request.method": "POST", "server.address": LOOPBACK,
            "http.response.status_code": 200} in labels  # fmt: skip
    assert sum(p.count for p in points) == 2
    assert trace_id in _exemplar_trace_ids(sink, CLIENT_SERVICE)


def test_distro_instruments_plain_httpx_with_scrubbing_and_stable_semconv(
    sink: OtlpSink, provider_url: str, tmp_path: Path
) -> None:
    """``opentelemetry-instrument`` with chenu-otel's distro: plain httpx code gets one CLIENT
    span with the stable attributes (the distro's semconv default) and a scrubbed URL, the
    provider continues its trace, and ``http.client.request.duration`` (seconds) is exported."""
    script = tmp_path / "zero_code_client.py"
    script.write_text(ZERO_CODE_CLIENT)
    env = _clean_environ()
    env.update(environ_for(sink, "http/protobuf", OTEL_SERVICE_NAME="zero-code-client"))
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    trace_id, _ = _run_client([str(launcher), sys.executable, str(script), provider_url], env)

    spans = sink.wait_for(
        lambda s: _spans_of(s, trace_id) if len(_spans_of(s, trace_id)) == 3 else []
    )
    (client,) = [sp for svc, sp in spans if sp.kind == SPAN_KIND_CLIENT]
    attributes = attributes_of(client.attributes)
    assert attributes["url.full"] == f"{provider_url}/health?api_key={REDACTED}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    (server,) = [sp for svc, sp in spans if svc == PROVIDER_SERVICE_NAME]
    assert server.parent_span_id == client.span_id
    _assert_no_canary(spans)
    points = sink.wait_for(lambda s: _duration_points(s, "zero-code-client"), timeout=20)
    assert [attributes_of(p.attributes)["http.response.status_code"] for p in points] == [200]
