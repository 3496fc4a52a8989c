"""Secret canaries in every place a secret usually leaks from — a URL query string, a SQL
statement with literals, an exception message, a captured request header, baggage, a structlog
key — must be absent from every exported span, log record and metric point.

Two independent checks, so that one line of defence failing is caught even when the other
holds:

* **app-side alone**: the real app (tests/e2e/canary_app.py: chenu_otel, FastAPI, SQLAlchemy,
  the contrib ASGI header capture) exports over OTLP/gRPC to a raw OTLP receiver; no collector.
* **collector alone**: raw OTLP carrying the canaries as an app without scrubbing would send
  them goes straight to the real collector (collector/otelcol.yaml), whose exports are read
  back from a downstream collector.

Each canary is a distinct random string, so a leak names its case; each case also checks a
witness (the carrier arrived, masked) so an absence is never trivially true.
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chenu_otel.testing import OtlpSink, attributes_of
from tests.collector_fixtures import (
    BASE_CONFIG,
    CollectorProcess,
    DownstreamCollector,
    OtlpData,
    run_script,
    sender_env,
)
from tests.e2e.otlp_payloads import (
    log_request,
    metric_request,
    trace_request,
)
from tests.support import LOOPBACK, REPO_ROOT, poll_until

pytestmark = pytest.mark.slow

CASES = ("url_query", "sql", "exception", "header", "baggage", "structlog")
APP = REPO_ROOT / "tests" / "e2e" / "canary_app.py"
APP_MASK = "[REDACTED]"


def new_canaries() -> dict[str, str]:
    return {case: f"canary{case.replace('_', '')}{secrets.token_hex(6)}" for case in CASES}


# --- app-side alone -------------------------------------------------------------------------


@dataclass
class AppExport:
    """What the app sent to the raw OTLP receiver."""

    canaries: dict[str, str]
    sink: OtlpSink
    summary: dict[str, Any]

    def leaks(self, canary: str) -> list[str]:
        """The signals in which `canary` appears anywhere in a request (any field)."""
        needle = canary.encode()
        return sorted(
            {r.signal for r in self.sink.received if needle in r.request.SerializeToString()}
        )

    def span_attributes(self) -> list[tuple[str, dict[str, Any]]]:
        return [(span.name, attributes_of(span.attributes)) for _, span in self.sink.spans()]

    def log_attributes(self, body: str) -> list[dict[str, Any]]:
        return [
            attributes_of(record.attributes)
            for _, record in self.sink.logs()
            if record.body.string_value == body
        ]


@pytest.fixture(scope="module")
def app_export() -> Iterator[AppExport]:
    canaries = new_canaries()
    with OtlpSink() as sink:
        env = sender_env(sink.grpc_endpoint, "grpc")
        summary = run_script(APP, [json.dumps(canaries)], env)
        assert summary["flushed"], summary
        sink.wait_for(lambda s: s.spans() and s.logs() and s.metrics(), timeout=15)
        yield AppExport(canaries, sink, summary)


def test_app_served_every_canary_request(app_export: AppExport) -> None:
    """The requests carrying the canaries ran (the failing one failed on purpose)."""
    statuses = app_export.summary["statuses"]
    assert statuses == {
        "url_query": 200,
        "header": 200,
        "baggage": 200,
        "exception": 500,
        "structlog": 200,
        "header_contrib": 204,
    }


def app_witness(export: AppExport, case: str) -> None:
    """Evidence that the case's carrier was exported, with the secret masked."""
    spans = export.span_attributes()
    if case == "url_query":
        urls = [str(attrs["url"]) for attrs in export.log_attributes("upstream_request")]
        assert f"http://app.test/items/1?token={APP_MASK}&page=2" in urls, urls
        assert any(f"api_key={APP_MASK}" in str(attrs.get("url.full")) for _, attrs in spans)
    elif case == "sql":
        statements = [attrs.get("db.statement") or attrs.get("db.query.text") for _, attrs in spans]
        assert "SELECT id FROM users WHERE api_secret = ?" in statements, statements
    elif case == "exception":
        (logged,) = export.log_attributes("upstream_failed")
        assert f"postgresql://{APP_MASK}@db" in logged["exception.message"]
        (_, failed_span) = next(
            (name, span)
            for _, span in export.sink.spans()
            for name in [span.name]
            if name == "GET /fail"
        )
        (event,) = [e for e in failed_span.events if e.name == "exception"]
        assert f"postgresql://{APP_MASK}@db" in attributes_of(event.attributes)["exception.message"]
    elif case == "header":
        captured = [attrs for _, attrs in spans if "http.request.header.authorization" in attrs]
        assert captured, "the contrib instrumentation captured no header"
        for key in ("authorization", "x_api_key", "cookie"):
            assert captured[0][f"http.request.header.{key}"] == APP_MASK
        assert any(attrs.get("chenu.request.id") == APP_MASK for _, attrs in spans)
    elif case == "baggage":
        with_baggage = [attrs for _, attrs in spans if attrs.get("tenant") == "acme"]
        assert with_baggage, "no span carries the baggage entries"
        assert all(attrs["auth_token"] == APP_MASK for attrs in with_baggage)
    elif case == "structlog":
        (logged,) = export.log_attributes("login")
        assert logged["password"] == APP_MASK
        assert logged["session_token"] == APP_MASK
        assert "ana" in str(logged["user"])


@pytest.mark.parametrize("case", CASES)
def test_app_exports_no_canary(app_export: AppExport, case: str) -> None:
    """App scrubbing alone: the canary is in no exported span, log record or metric point, and
    the carrier it rode on was exported masked."""
    leaks = app_export.leaks(app_export.canaries[case])
    assert leaks == [], f"{case} canary exported by the app in: {leaks}"
    app_witness(app_export, case)


def test_app_exported_metric_points(app_export: AppExport) -> None:
    """The canary requests produced metric points (so their absence above means something)."""
    names = {metric.name for _, metric in app_export.sink.metrics()}
    assert {"http.server.request.duration", "db.client.operation.duration"} <= names, names


# --- collector alone ------------------------------------------------------------------------

MASK = "****"  # what the collector's redaction writes


def jwt_with(canary: str) -> str:
    return f"eyJhbGciOiJIUzI1NiJ9.{canary}.c2lnbmF0dXJl"


def raw_telemetry(case: str, canary: str) -> dict[str, dict[str, Any]]:
    """What an app without scrubbing sends for `case`: keyword arguments for the span, log
    record and metric point builders (a signal the case does not reach is left out)."""
    dsn_error = f"could not connect to postgresql://app:{canary}@db:5432/app"
    if case == "url_query":
        return {
            "span": {
                "attributes": {
                    "url.full": f"https://api.example/v1/items/1?api_key={canary}",
                    "url.query": f"token={canary}&page=2",
                }
            },
            "log": {
                "body": f"GET /items/1?token={canary}&page=2 200",
                "attributes": {"url": f"http://app.test/items/1?token={canary}&page=2"},
            },
            "metric": {"attributes": {"url.full": f"https://api.example/x?token={canary}"}},
        }
    if case == "sql":
        statement = f"SELECT id FROM users WHERE api_secret = '{canary}'"
        return {"span": {"attributes": {"db.statement": statement, "db.query.text": statement}}}
    if case == "exception":
        exception = {
            "exception.type": "ConnectionError",
            "exception.message": dsn_error,
            "exception.stacktrace": f"Traceback (most recent call last):\n{dsn_error}",
        }
        return {
            "span": {
                "events": [("exception", exception)],
                "error": f"ConnectionError: {dsn_error}",
            },
            "log": {"body": "upstream_failed", "attributes": exception},
        }
    if case == "header":
        return {
            "span": {
                "attributes": {
                    "http.request.header.authorization": [f"Bearer {canary}"],
                    "http.request.header.x_api_key": [canary],
                    "http.request.header.cookie": [f"session={canary}"],
                    "chenu.request.id": jwt_with(canary),
                }
            },
            "log": {"attributes": {"request_id": jwt_with(canary)}},
            "metric": {"attributes": {"http.request.header.authorization": f"Bearer {canary}"}},
        }
    if case == "baggage":
        return {
            "span": {
                "attributes": {
                    "auth_token": canary,
                    "tenant": "acme",
                    "http.request.header.baggage": [f"auth_token={canary},tenant=acme"],
                }
            },
            "log": {"attributes": {"auth_token": canary}},
            "metric": {"attributes": {"auth_token": canary}},
        }
    assert case == "structlog"
    return {
        "log": {
            "body": "login",
            "attributes": {
                "password": canary,
                "api_key": canary,
                "session_token": canary,
                # how chenu_otel's log emitter renders a dict value, and the OTLP map form
                "user": str({"name": "ana", "api_key": canary}),
                "account": {"name": "ana", "password": canary},
            },
        }
    }


@dataclass
class CollectorRun:
    canaries: dict[str, str]
    downstream: DownstreamCollector

    def received(self) -> OtlpData:
        return self.downstream.received()


def post(port: int, path: str, body: bytes) -> int:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": "application/x-protobuf"}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture(scope="module")
def collector_run(
    collector_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorRun]:
    """The base config with every backend pointing at a downstream collector; each case's raw
    telemetry is posted once, unscrubbed, over OTLP/HTTP."""
    root = tmp_path_factory.mktemp("canary-collector")
    downstream = DownstreamCollector(
        collector_binary,
        root / "logs",
        root / "backend",
        metrics_path="/api/v1/otlp/v1/metrics",
        logs_path="/otlp/v1/logs",
    )
    collector = CollectorProcess(
        collector_binary,
        [BASE_CONFIG],
        log_dir=root / "logs",
        storage_dir=root / "storage",
        env=downstream.backend_env(),
    )
    canaries = new_canaries()
    downstream.start()
    try:
        collector.start()
        try:
            for case, canary in canaries.items():
                marker = f"canary-{case}"
                parts = raw_telemetry(case, canary)
                requests: list[tuple[str, Any]] = []
                if "span" in parts:
                    requests.append(
                        ("/v1/traces", trace_request("raw-app", marker, **parts["span"]))
                    )
                if "log" in parts:
                    requests.append(("/v1/logs", log_request("raw-app", marker, **parts["log"])))
                if "metric" in parts:
                    requests.append(
                        ("/v1/metrics", metric_request("raw-app", marker, **parts["metric"]))
                    )
                for path, request in requests:
                    assert post(collector.http_port, path, request.SerializeToString()) == 200
            yield CollectorRun(canaries, downstream)
        finally:
            collector.stop()
    finally:
        downstream.stop()


def markers_arrived(data: OtlpData, case: str) -> bool:
    marker = f"canary-{case}"
    parts = raw_telemetry(case, "x")
    return (
        ("span" not in parts or any(s.attributes.get("test.marker") == marker for s in data.spans))
        and (
            "log" not in parts or any(r.attributes.get("test.marker") == marker for r in data.logs)
        )
        and (
            "metric" not in parts
            or any(p.attributes.get("test.marker") == marker for p in data.metrics)
        )
    )


# What collector/otelcol.yaml's redaction and transform/scrub (0.161.0) miss today; the
# statements that close each gap are in the issue notes (verified with this test).
COLLECTOR_GAPS = {
    "structlog": "a nested map value (kvlist) and a dict rendered as text ('api_key': '…') "
    "are not searched by the redaction processor",
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            marks=pytest.mark.xfail(
                strict=True, raises=AssertionError, reason=COLLECTOR_GAPS[case]
            ),
        )
        if case in COLLECTOR_GAPS
        else case
        for case in CASES
    ],
)
def test_collector_alone_exports_no_canary(collector_run: CollectorRun, case: str) -> None:
    """Collector redaction alone: unscrubbed canaries sent straight to the collector are in no
    span, log record or metric point it exports."""

    def arrived() -> OtlpData | None:
        data = collector_run.received()
        return data if markers_arrived(data, case) else None

    data = poll_until(
        arrived,
        timeout=30,
        what=f"the {case} telemetry at the backend",
    )
    canary = collector_run.canaries[case]
    at = data.raw.find(canary)
    assert at < 0, (
        f"{case} canary exported by the collector: …{data.raw[max(0, at - 200) : at + 60]}…"
    )
