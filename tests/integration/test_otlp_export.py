"""All three signals over real OTLP (gRPC and HTTP/protobuf) to a receiver on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry import metrics

import chenu_otel
from chenu_otel.logging import bind_context, clear_context, get_logger
from chenu_otel.testing import OtlpSink, attributes_of, environ_for
from chenu_otel.tracing import create_span

PROTOCOLS = ["grpc", "http/protobuf"]
ENCODERS = ["wire", "official"]  # CHENU_OTEL_OTLP_ENCODER


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_three_signals_arrive_correlated_with_exemplar(
    protocol: str,
    encoder: str,
    otlp_sink: OtlpSink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Span, log and histogram reach the receiver, whichever encoder writes them (the wire one
    without falling back to the official encoding); the log and the exemplar point at the
    span."""
    for name, value in environ_for(otlp_sink, protocol, OTEL_SERVICE_NAME="otlp-test").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CHENU_OTEL_OTLP_ENCODER", encoder)
    transport = "grpc" if protocol == "grpc" else "http"

    pipeline = chenu_otel.configure(service_version="9.9.9")
    histogram = metrics.get_meter("test").create_histogram("chenu.test.duration", unit="s")
    bind_context(request_id="req-otlp")
    with create_span("GET /threads/{thread_id}") as span:
        get_logger("api").info("thread_loaded", thread_id="t-9")
        histogram.record(0.042, {"route": "/threads/{thread_id}"})
    clear_context()
    assert pipeline.force_flush(10_000)
    trace_id = span.get_span_context().trace_id.to_bytes(16, "big")

    def exemplar_found(sink: OtlpSink) -> bool:
        return any(
            exemplar.trace_id == trace_id
            for _, metric in sink.metrics(transport)
            if metric.name == "chenu.test.duration"
            for point in metric.histogram.data_points
            for exemplar in point.exemplars
        )

    otlp_sink.wait_for(lambda s: s.spans(transport) and s.logs(transport), timeout=15)
    otlp_sink.wait_for(exemplar_found, timeout=15)

    ((resource, sent_span),) = otlp_sink.spans(transport)
    assert resource["service.name"] == "otlp-test"
    assert resource["service.version"] == "9.9.9"
    assert sent_span.name == "GET /threads/{thread_id}"
    assert sent_span.trace_id == trace_id
    (record,) = [r for _, r in otlp_sink.logs(transport) if r.body.string_value == "thread_loaded"]
    assert record.trace_id == trace_id
    assert record.span_id == sent_span.span_id
    assert attributes_of(record.attributes) == {"request_id": "req-otlp", "thread_id": "t-9"}
    assert not [r.getMessage() for r in caplog.records if "official encoding" in r.getMessage()]


def test_hanging_collector_never_blocks_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a receiver that takes seconds per export, telemetry calls stay fast and shutdown
    returns within its bound, reporting that not everything was flushed."""
    with OtlpSink(delay=3.0) as slow:
        for name, value in environ_for(slow, "grpc", OTEL_EXPORTER_OTLP_TIMEOUT="10000").items():
            monkeypatch.setenv(name, value)
        chenu_otel.configure(service_name="patient")
        for i in range(200):
            with create_span(f"work-{i}"):
                get_logger("app").info("working", i=i)
        assert chenu_otel.shutdown(timeout_millis=300) is False


def test_unreachable_collector_does_not_raise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens at the endpoint: the app's calls succeed and the failure is reported
    naming the endpoint."""
    from tests.support import free_port

    port = free_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
    chenu_otel.configure(service_name="alone")
    with create_span("still-works"):
        get_logger("app").info("still_logging")
    chenu_otel.shutdown(timeout_millis=3_000)
    failures = [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")]
    assert any(f"127.0.0.1:{port}" in message for message in failures), failures


FORK_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import chenu_otel
    from chenu_otel.tracing import create_span
    from chenu_otel.logging import get_logger

    chenu_otel.configure(service_name="forked")      # once, in the parent (gunicorn --preload)
    with create_span("parent-before-fork"):
        pass
    children = []
    for worker in range(2):
        pid = os.fork()
        if pid == 0:                                  # a worker
            with create_span(f"worker-{worker}"):
                get_logger("worker").info("worker_ready", worker=worker)
            ok = chenu_otel.shutdown(timeout_millis=10_000)
            os._exit(0 if ok else 3)
        children.append(pid)
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    with create_span("parent-after-fork"):
        pass
    ok = chenu_otel.shutdown(timeout_millis=10_000)
    sys.exit(0 if ok and not any(codes) else 4)
    """
)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_forked_workers_export_with_their_own_instance_id(
    protocol: str, encoder: str, otlp_sink: OtlpSink, tmp_path: Path
) -> None:
    """configure() in the parent, then fork: each worker's spans and logs arrive, each worker
    with its own service.instance.id, and nothing is exported twice."""
    script = tmp_path / "fork_app.py"
    script.write_text(FORK_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(environ_for(otlp_sink, protocol), CHENU_OTEL_OTLP_ENCODER=encoder)
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr

    spans = {span.name: resource["service.instance.id"] for resource, span in otlp_sink.spans()}
    names = sorted(span.name for _, span in otlp_sink.spans())
    assert names == ["parent-after-fork", "parent-before-fork", "worker-0", "worker-1"]
    instance_ids = {spans["parent-before-fork"], spans["worker-0"], spans["worker-1"]}
    assert len(instance_ids) == 3
    assert spans["parent-after-fork"] == spans["parent-before-fork"]
    logs = [(res["service.instance.id"], rec.body.string_value) for res, rec in otlp_sink.logs()]
    assert sorted(logs) == sorted(
        [(spans["worker-0"], "worker_ready"), (spans["worker-1"], "worker_ready")]
    )


ZERO_CODE_APP = textwrap.dedent(
    """
    import logging
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from opentelemetry import metrics, trace

    app = FastAPI()

    @app.get("/agents/{agent_id}")
    def agent(agent_id: str) -> dict:
        logging.getLogger("app").warning("agent_requested")
        metrics.get_meter("app").create_counter("app.calls").add(1)
        return {"id": agent_id}

    with TestClient(app) as client:
        assert client.get("/agents/nova").status_code == 200
    # opentelemetry-instrument's configurator flushes at exit
    """
)


def test_opentelemetry_instrument_gives_the_same_signals(
    otlp_sink: OtlpSink, tmp_path: Path
) -> None:
    """`opentelemetry-instrument python app.py` with our distro: one server span per request
    (no receive/send sub-spans), the stdlib log correlated with it, and app metrics."""
    script = tmp_path / "zero_code_app.py"
    script.write_text(ZERO_CODE_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(environ_for(otlp_sink, "http/protobuf", OTEL_SERVICE_NAME="zero-code"))
    launcher = Path(sys.executable).with_name("opentelemetry-instrument")
    result = subprocess.run(
        [str(launcher), sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    otlp_sink.wait_for(lambda s: s.spans() and s.logs() and s.metrics(), timeout=15)
    spans = [span for _, span in otlp_sink.spans()]
    assert [span.name for span in spans] == ["GET /agents/{agent_id}"]
    resource = otlp_sink.spans()[0][0]
    assert resource["service.name"] == "zero-code"
    assert "telemetry.auto.version" in resource
    (record,) = [r for _, r in otlp_sink.logs() if r.body.string_value == "agent_requested"]
    assert record.trace_id == spans[0].trace_id
    metric_names = {metric.name for _, metric in otlp_sink.metrics()}
    assert "app.calls" in metric_names
    assert "http.server.request.duration" in metric_names
    # stdout carries the same record as a JSON line
    assert '"event":"agent_requested"' in result.stdout
