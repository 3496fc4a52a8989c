"""End to end on loopback with real binaries (chenu_otel.stack): the demo app under load, our
collector, Prometheus 3, Jaeger v2, Alertmanager and a Loki stand-in, all with deploy/'s files.

Exemplars lead to traces, logs lead to traces, and every query we ship runs against the live
Prometheus. Binaries are built or reused by scripts/build-collector and scripts/build-backends;
a missing one fails the test with the build script's message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chenu_otel.demo.provider import PROVIDER_SERVICE_NAME
from chenu_otel.stack.backends import http_json
from chenu_otel.stack.binaries import find_binary
from chenu_otel.stack.runner import (
    JOB,
    SERVICE_NAME,
    NativeStack,
    StackBinaries,
    StackFiles,
    wait_for_data,
)
from tests.collector_fixtures import build_collector
from tests.deploy_files import RULES_DIR, alert_rules, backend_binary, promql_expressions
from tests.support import REPO_ROOT, poll_until

pytestmark = pytest.mark.slow

WRITE_ROUTE = "/threads/{thread_id}/messages"  # the demo route that always uses SQLite and Redis

# Panels that must show data after a short load (dashboard uid, panel title prefix).
KEY_PANELS = [
    ("chenu-service-red", "Request rate by route"),
    ("chenu-service-red", "5xx ratio"),
    ("chenu-service-red", "Latency p50 / p95 / p99"),
    ("chenu-service-red", "Requests by status code"),
    ("chenu-database-cache", "DB operation p95"),
    ("chenu-database-cache", "Cache hit ratio"),
    ("chenu-agents-llm", "Agent runs by outcome"),
    ("chenu-agents-llm", "Agent cost over the last hour"),
    ("chenu-agents-llm", "Tokens per second by type"),
    ("chenu-threads-websocket", "Messages by role"),
    ("chenu-collector-health", "Accepted by receiver"),
    ("chenu-collector-health", "Sent by exporter"),
    ("chenu-collector-health", "Queue fill by exporter"),
    ("chenu-collector-health", "Scrape health"),
]


def exercise_demo(stack: NativeStack, cycles: int = 40) -> dict[str, int]:
    """Deterministic traffic for the assertions: every route they rely on. Each cycle creates a
    thread, posts two messages (SQLite + Redis), reads it three times (Redis, then SQLite on a
    miss), calls /flaky once (a 500 every fifth) and one unmatched path. A dropped keep-alive
    connection (the server closes it after a 500) is retried once on a fresh connection.
    Returns request counts by status code."""
    import httpx

    counts: dict[str, int] = {}
    with httpx.Client(base_url=stack.demo_url, timeout=10) as client:

        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            try:
                response = client.request(method, path, **kwargs)
            except httpx.TransportError:
                response = client.request(method, path, **kwargs)
            counts[str(response.status_code)] = counts.get(str(response.status_code), 0) + 1
            return response

        for cycle in range(cycles):
            headers = {"X-User-ID": f"user-{cycle % 17}"}
            created = call("POST", "/threads", json={"title": f"e2e {cycle}"}, headers=headers)
            thread_id = created.json()["id"]
            for turn in range(2):
                call("POST", f"/threads/{thread_id}/messages",
                     json={"content": f"question {cycle}.{turn}"}, headers=headers)  # fmt: skip
            for _ in range(3):
                call("GET", f"/threads/{thread_id}", headers=headers)
            call("GET", "/flaky", headers=headers)
            call("GET", f"/no/such/path/{cycle}", headers=headers)
    return counts


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    """The native stack with the binaries the build scripts make for this checkout."""
    binaries = StackBinaries(
        collector=build_collector(),
        prometheus=backend_binary("prometheus"),
        jaeger=backend_binary("jaeger"),
        alertmanager=backend_binary("alertmanager"),
        redis_server=find_binary("redis-server"),
    )
    # Logs to the Loki stand-in: this suite proves Loki's OTLP contract (compose's default);
    # the VictoriaLogs path is proven by test_cross_service_trace.py and test_victorialogs.py.
    stack = NativeStack(
        tmp_path_factory.mktemp("pipeline"), binaries, StackFiles(REPO_ROOT), logs="loki-standin"
    )
    stack.start()
    try:
        exercise_demo(stack, cycles=40)
        wait_for_data(stack)
        yield stack
    finally:
        stack.stop()


def spans_by_id(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["spanID"]: span for span in trace["spans"]}


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span.get("tags", []) if t["key"] == key), None)


def parent_id(span: dict[str, Any]) -> str | None:
    for reference in span.get("references", []):
        if reference.get("refType") == "CHILD_OF":
            return str(reference["spanID"])
    return None


def descends_from(span: dict[str, Any], ancestor: str, spans: dict[str, dict[str, Any]]) -> bool:
    current = parent_id(span)
    while current is not None:
        if current == ancestor:
            return True
        current = parent_id(spans[current]) if current in spans else None
    return False


def db_system(span: dict[str, Any]) -> str | None:
    value = tag(span, "db.system.name") or tag(span, "db.system")
    return str(value) if value else None


def wait_for_trace(
    pipeline: NativeStack,
    trace_id: str,
    holds: Callable[[dict[str, Any]], bool] = lambda trace: True,
    what: str = "",
) -> dict[str, Any]:
    """The trace as Jaeger holds it once `holds` is true of it. A trace's spans reach Jaeger in
    several exports (the app and the collector batch independently), so a trace first seen may
    still lack some of them: wait for what the test needs, fail naming it after 30 s."""

    def settled() -> dict[str, Any] | None:
        trace: dict[str, Any] | None = pipeline.jaeger.trace(trace_id)
        return trace if trace and holds(trace) else None

    return poll_until(settled, timeout=30, what=f"trace {trace_id} {what}".strip())


def has_server_span(trace: dict[str, Any], service: str | None = None) -> bool:
    return any(
        tag(s, "span.kind") == "server"
        and (service is None or trace["processes"][s["processID"]]["serviceName"] == service)
        for s in trace["spans"]
    )


def test_prometheus_holds_http_db_and_agent_series_under_translated_names(
    pipeline: NativeStack,
) -> None:
    """OTLP names arrive translated (suffixes, underscores) with job and promoted attributes."""
    expected = {
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_count",
        "db_client_operation_duration_seconds_bucket",
        "chenu_cache_operations_total",
        "chenu_agent_executions_total",
        "chenu_agent_cost_usd_total",
        "gen_ai_client_token_usage_bucket",
    }

    def all_present() -> set[str] | None:
        names = pipeline.prometheus.series_names()
        return names if expected <= names else None

    poll_until(all_present, timeout=60, what=f"series {sorted(expected)}")
    (sample, *_) = pipeline.prometheus.query(
        f'http_server_request_duration_seconds_count{{job="{JOB}"}}'
    )["result"]
    labels = sample["metric"]
    assert labels["job"] == JOB
    assert labels["service_name"] == SERVICE_NAME
    assert {"http_route", "http_request_method", "http_response_status_code"} <= set(labels)


def test_every_http_exemplar_is_a_trace_in_jaeger_with_its_server_span(
    pipeline: NativeStack,
) -> None:
    expr = "http_server_request_duration_seconds_bucket"
    trace_ids = pipeline.prometheus.exemplar_trace_ids(expr)
    assert trace_ids, "no exemplars on http_server_request_duration_seconds"
    for trace_id in trace_ids:
        wait_for_trace(pipeline, trace_id, has_server_span, "with its server span")


def test_write_route_exemplars_lead_to_server_span_with_db_and_redis_children(
    pipeline: NativeStack,
) -> None:
    """Exemplars of the message route open traces where SQLite and Redis spans sit under the
    server span."""
    expr = (
        "http_server_request_duration_seconds_bucket"
        f'{{http_route="{WRITE_ROUTE}", http_response_status_code="201"}}'
    )
    trace_ids = pipeline.prometheus.exemplar_trace_ids(expr)
    assert trace_ids, f"no exemplars for {WRITE_ROUTE}"
    for trace_id in trace_ids:
        trace = wait_for_trace(
            pipeline,
            trace_id,
            lambda t: (
                has_server_span(t, SERVICE_NAME)
                and {"sqlite", "redis"} <= {db_system(s) for s in t["spans"]}
            ),
            "with the demo's server span and its SQLite and Redis spans",
        )
        spans = spans_by_id(trace)
        # The demo's server span (its LLM provider, the second service, has one too).
        (server,) = [
            s
            for s in trace["spans"]
            if tag(s, "span.kind") == "server"
            and trace["processes"][s["processID"]]["serviceName"] == SERVICE_NAME
        ]
        below = [s for s in trace["spans"] if descends_from(s, server["spanID"], spans)]
        systems = {db_system(s) for s in below}
        assert "sqlite" in systems, f"trace {trace_id}: no SQLite span under the server span"
        assert "redis" in systems, f"trace {trace_id}: no Redis span under the server span"


def test_db_exemplars_lead_to_traces_with_a_span_of_that_database(
    pipeline: NativeStack,
) -> None:
    """db.client.operation.duration (SQLite and Redis) exemplars open traces holding a client
    span of the database their series is labelled with."""
    found: dict[str, int] = {}
    for series in pipeline.prometheus.exemplars("db_client_operation_duration_seconds_bucket"):
        system = series["seriesLabels"]["db_system_name"]
        for exemplar in series["exemplars"]:
            trace_id = exemplar["labels"]["trace_id"]
            wait_for_trace(
                pipeline,
                trace_id,
                lambda t, system=system: any(db_system(s) == system for s in t["spans"]),
                f"with a {system} span",
            )
            found[system] = found.get(system, 0) + 1
    assert {"sqlite", "redis"} <= set(found), found


def test_logs_reach_the_loki_endpoint_with_service_name_and_trace_ids_known_to_jaeger(
    pipeline: NativeStack,
) -> None:
    records = poll_until(
        lambda: [r for r in pipeline.log_records().logs if r.trace_id],
        timeout=30,
        what="log records with a trace id at the Loki stand-in",
    )
    services = {r.resource.get("service.name") for r in records}
    assert SERVICE_NAME in services and services <= {SERVICE_NAME, PROVIDER_SERVICE_NAME}
    trace_ids = list(dict.fromkeys(r.trace_id for r in records))[:10]
    for trace_id in trace_ids:
        wait_for_trace(pipeline, trace_id)


def test_prometheus_loaded_the_shipped_rule_files_and_evaluates_them(
    pipeline: NativeStack,
) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = pipeline.prometheus.rule_groups()
        rules = [r for g in groups for r in g["rules"]]
        return groups if rules and all(r.get("health") == "ok" for r in rules) else None

    groups = poll_until(evaluated, timeout=60, what="every rule evaluated with health ok")
    files = {Path(g["file"]).name for g in groups}
    assert files == {p.name for p in RULES_DIR.glob("*.yml")}
    loaded = {r["name"] for g in groups for r in g["rules"]}
    assert {r["alert"] for r in alert_rules() if "alert" in r} <= loaded


def test_prometheus_found_alertmanager_and_scrapes_the_collector(
    pipeline: NativeStack,
) -> None:
    """The file_sd targets of prometheus.yml work: Alertmanager discovered, collector scraped."""
    managers = poll_until(
        lambda: http_json(f"{pipeline.prometheus_url}/api/v1/alertmanagers")["data"][
            "activeAlertmanagers"
        ],
        timeout=30,
        what="an active Alertmanager in Prometheus",
    )
    assert managers[0]["url"].startswith(pipeline.alertmanager_url)
    poll_until(
        lambda: pipeline.prometheus.query('up{job="otel-collector"} == 1')["result"],
        timeout=45,
        what="the collector scraped (up == 1)",
    )


def test_every_dashboard_and_alert_expression_runs_without_error(
    pipeline: NativeStack,
) -> None:
    failures = []
    for expression in promql_expressions():
        try:
            pipeline.prometheus.query(expression.expr)
        except Exception as exc:
            failures.append(f"{expression.origin}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("dashboard", "panel"), KEY_PANELS)
def test_key_panels_return_data(pipeline: NativeStack, dashboard: str, panel: str) -> None:
    expressions = [
        e for e in promql_expressions() if e.origin.startswith(f"dashboard {dashboard} / {panel}")
    ]
    assert expressions, f"no panel {panel!r} in {dashboard}"
    for expression in expressions:
        poll_until(
            lambda e=expression: pipeline.prometheus.query(e.expr)["result"],  # type: ignore[misc]
            timeout=60,
            what=f"data for {expression.origin}: {expression.expr}",
        )


def test_stack_command_up_status_down(tmp_path: Path) -> None:
    """`chenu-otel stack up` leaves the stack running in the background, `status` finds every
    part answering, `down` stops every process it started."""
    env = {
        **os.environ,
        "CHENU_OTEL_COLLECTOR_BIN": str(build_collector()),
        "CHENU_OTEL_PROMETHEUS_BIN": str(backend_binary("prometheus")),
        "CHENU_OTEL_JAEGER_BIN": str(backend_binary("jaeger")),
        "CHENU_OTEL_ALERTMANAGER_BIN": str(backend_binary("alertmanager")),
        "CHENU_OTEL_REPO": str(REPO_ROOT),
    }
    command = [sys.executable, "-m", "chenu_otel.cli", "stack"]
    work_dir = ["--work-dir", str(tmp_path)]

    def stack(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, action, *work_dir],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    up = stack("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((tmp_path / "stack.json").read_text())
        assert set(state["processes"]) >= {"demo", "collector", "prometheus", "jaeger", "redis"}
        status = stack("status")
        assert status.returncode == 0, status.stdout
        assert "NOT RUNNING" not in status.stdout and "DOES NOT ANSWER" not in status.stdout
    finally:
        down = stack("down")
    assert down.returncode == 0, down.stdout + down.stderr
    for pid in state["processes"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "not started" in stack("status").stdout
