"""Logs ↔ traces through a real query engine: the victorialogs overlay on loopback.

A FastAPI app instrumented by chenu_otel (OTLP only, no app change for the backend choice)
serves a few requests, each with an `X-Request-ID`, logging through structlog inside its server
span and inside a child span. Our collector runs collector/otelcol.yaml plus
collector/overlays/victorialogs.yaml: metrics to a real Prometheus (native OTLP, exemplars),
traces to a real Jaeger v2, logs to a real VictoriaLogs. For every trace id that Prometheus holds
as an exemplar and Jaeger returns, a LogsQL query `trace_id:"<id>"` returns exactly that
request's log lines, each with the span id of the Jaeger span it was written in and the request
id of its request.

Run as a module (`python -m tests.e2e.test_victorialogs app`) this file is the app itself, in
its own process so that its global providers never touch the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chenu_otel.stack.files import StackFiles
from chenu_otel.stack.servers import JaegerServer, PrometheusServer, VictoriaLogsServer
from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    CollectorProcess,
    sender_env,
)
from tests.deploy_files import backend_binary
from tests.support import REPO_ROOT, ManagedProcess, poll_until

pytestmark = pytest.mark.slow

SERVICE = "chenu-vl-e2e"
ROUTE = "/items/{item_id}"
REQUESTS = 6
HISTOGRAM = "http_server_request_duration_seconds_bucket"
SERVED_MARK = "served "


# --- the application (runs in a subprocess) ---------------------------------------------------


def run_app() -> None:
    """Serve REQUESTS requests in process, flush, print one marked JSON line per request."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from opentelemetry import trace
    from opentelemetry.trace import format_span_id, format_trace_id

    import chenu_otel

    chenu_otel.configure(service_name=SERVICE)
    app = FastAPI()
    chenu_otel.instrument_app(app)
    log = chenu_otel.get_logger("chenu.e2e.victorialogs")
    served: list[dict[str, str]] = []

    @app.get(ROUTE)
    def read_item(item_id: str) -> dict[str, str]:
        server = trace.get_current_span().get_span_context()
        log.info("item_requested", item_id=item_id)
        with chenu_otel.create_span("load_item") as child:
            log.info("item_loaded", item_id=item_id)
            child_id = format_span_id(child.get_span_context().span_id)
        served.append(
            {
                "item_id": item_id,
                "trace_id": format_trace_id(server.trace_id),
                "server_span_id": format_span_id(server.span_id),
                "child_span_id": child_id,
            }
        )
        return {"item": item_id}

    with TestClient(app) as client:
        for n in range(REQUESTS):
            response = client.get(f"/items/{n}", headers={"X-Request-ID": f"vl-req-{n}"})
            response.raise_for_status()
            served[-1]["request_id"] = response.headers["X-Request-ID"]
    chenu_otel.shutdown(timeout_millis=10_000)
    for request in served:  # stdout also carries the JSON log lines: mark ours
        print(SERVED_MARK + json.dumps(request), flush=True)


# --- the backends ---------------------------------------------------------------------------


@dataclass
class Backends:
    """VictoriaLogs, Jaeger v2, Prometheus 3 (the stack's servers) and our collector (base +
    victorialogs overlay). `dropped_flags` leaves some of compose's Prometheus flags out."""

    work_dir: Path
    dropped_flags: tuple[str, ...] = ()
    processes: list[ManagedProcess] = field(default_factory=list)
    collector: CollectorProcess | None = None
    files: StackFiles = field(default_factory=lambda: StackFiles(REPO_ROOT))

    def __post_init__(self) -> None:
        self.victorialogs = VictoriaLogsServer(
            backend_binary("victoria-logs"), self.work_dir, self.logs_dir
        )
        self.jaeger = JaegerServer(backend_binary("jaeger"), self.files, self.logs_dir)
        self.prometheus = PrometheusServer(
            backend_binary("prometheus"), self.files, self.work_dir, self.logs_dir,
            dropped_flags=self.dropped_flags,
        )  # fmt: skip

    @property
    def logs_dir(self) -> Path:
        return self.work_dir / "logs"

    def start(self, collector_binary: Path) -> Backends:
        try:
            self.processes.append(self.victorialogs.start())
            self.processes.append(self.jaeger.start())
            self.processes.append(self.prometheus.start())  # scrapes only itself
            self.collector = CollectorProcess(
                binary=collector_binary,
                configs=[BASE_CONFIG, OVERLAY_DIR / "victorialogs.yaml"],
                log_dir=self.logs_dir,
                storage_dir=self.work_dir / "collector-queue",
                env={
                    "JAEGER_OTLP_ENDPOINT": self.jaeger.otlp_grpc_address,
                    "PROMETHEUS_OTLP_ENDPOINT": self.prometheus.otlp_endpoint,
                    "VICTORIALOGS_URL": self.victorialogs.url,
                },
            )
            self.collector.storage_dir.mkdir(parents=True, exist_ok=True)
            self.collector.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.collector is not None:
            self.collector.stop()
        for process in reversed(self.processes):
            process.stop()

    # --- reading back ------------------------------------------------------------------------

    def exemplar_trace_ids(self, expr: str) -> set[str]:
        return set(self.prometheus.api.exemplar_trace_ids(expr))

    def jaeger_trace(self, trace_id: str) -> dict[str, Any] | None:
        return self.jaeger.api.trace(trace_id)

    def logsql(self, query: str) -> list[dict[str, Any]]:
        """Flush VictoriaLogs' in-memory buffers, then run a LogsQL query."""
        return self.victorialogs.api.logsql(query)


@pytest.fixture(scope="module")
def backends(
    tmp_path_factory: pytest.TempPathFactory, collector_binary: Path
) -> Iterator[Backends]:
    running = Backends(tmp_path_factory.mktemp("victorialogs")).start(collector_binary)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def served(backends: Backends) -> dict[str, dict[str, str]]:
    """What the app served, by trace id: request id and the ids of the two spans it logged in."""
    assert backends.collector is not None
    env = sender_env(backends.collector.grpc_endpoint, "grpc")
    result = subprocess.run(
        [sys.executable, "-m", "tests.e2e.test_victorialogs", "app"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, f"app failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    requests = [
        json.loads(line.removeprefix(SERVED_MARK))
        for line in result.stdout.splitlines()
        if line.startswith(SERVED_MARK)
    ]
    assert len(requests) == REQUESTS, result.stdout
    return {request["trace_id"]: request for request in requests}


def span_ids_by_name(trace: dict[str, Any]) -> dict[str, str]:
    return {span["operationName"]: span["spanID"] for span in trace["spans"]}


def test_exemplar_traces_in_jaeger_have_their_request_logs_in_victorialogs(
    backends: Backends, served: dict[str, dict[str, str]]
) -> None:
    """Trace ids from Prometheus exemplars → the trace in Jaeger → LogsQL by trace_id returns
    that request's three log lines, each with its span's id and the request id."""
    expr = f'{HISTOGRAM}{{job="{SERVICE}", http_route="{ROUTE}"}}'
    trace_ids = poll_until(
        lambda: backends.exemplar_trace_ids(expr), timeout=60, what=f"exemplars on {expr}"
    )
    assert trace_ids <= set(served), f"exemplars name traces the app never served: {trace_ids}"
    for trace_id in sorted(trace_ids):
        request = served[trace_id]
        # A trace's spans may reach Jaeger in different exports: wait for both named here.
        trace = poll_until(
            lambda t=trace_id: (  # type: ignore[misc]
                found
                if (found := backends.jaeger_trace(t))
                and {f"GET {ROUTE}", "load_item"} <= set(span_ids_by_name(found))
                else None
            ),
            timeout=30,
            what=f"trace {trace_id} in Jaeger with its server and load_item spans",
        )
        spans = span_ids_by_name(trace)
        server_span = spans[f"GET {ROUTE}"]
        assert server_span == request["server_span_id"]
        assert spans["load_item"] == request["child_span_id"]
        lines = poll_until(
            lambda t=trace_id: (  # type: ignore[misc]
                found if len(found := backends.logsql(f'trace_id:"{t}"')) >= 3 else None
            ),
            timeout=30,
            what=f"three log lines of trace {trace_id} in VictoriaLogs",
        )
        written = {(line["_msg"], line["span_id"]) for line in lines}
        assert written == {
            ("item_requested", server_span),
            ("item_loaded", spans["load_item"]),
            ("http_request", server_span),
        }, lines
        assert len(lines) == 3, lines
        assert {line["trace_id"] for line in lines} == {trace_id}
        assert {line["request_id"] for line in lines} == {request["request_id"]}
        assert {line.get("item_id") for line in lines if line["_msg"] != "http_request"} == {
            request["item_id"]
        }


def test_every_request_is_found_by_its_request_id_under_its_own_trace(
    backends: Backends, served: dict[str, dict[str, str]]
) -> None:
    """The other direction: a request id finds log lines of exactly one trace, the one Jaeger
    holds for that request."""
    for trace_id, request in served.items():
        lines = poll_until(
            lambda r=request: (  # type: ignore[misc]
                found
                if len(found := backends.logsql(f'request_id:"{r["request_id"]}"')) >= 3
                else None
            ),
            timeout=30,
            what=f"log lines of {request['request_id']}",
        )
        assert {line["trace_id"] for line in lines} == {trace_id}
        assert backends.jaeger_trace(trace_id) is not None


def test_log_streams_are_keyed_by_service_name_only(
    backends: Backends, served: dict[str, dict[str, str]]
) -> None:
    """VL-Stream-Fields keeps the stream low-cardinality: no instance id, version or host."""
    lines = backends.logsql(f'trace_id:"{next(iter(served))}"')
    assert lines, "no log lines to check"
    assert {line["_stream"] for line in lines} == {f'{{service.name="{SERVICE}"}}'}
    # The other resource attributes are still there, as plain fields.
    assert all(line.get("service.instance.id") for line in lines), lines[0]


if __name__ == "__main__" and sys.argv[1:] == ["app"]:
    run_app()
