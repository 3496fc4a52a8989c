"""The app's three signals through the real collector (base + debug-file overlay), read back from
the files the collector wrote: correlated, enriched by span_metrics, and free of secrets."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    CollectorProcess,
    OtlpData,
    read_otlp,
    run_burst,
    sender_env,
)
from tests.support import poll_until

pytestmark = pytest.mark.slow

CANARY = f"canary-{secrets.token_hex(8)}"
PROTOCOLS = {"grpc": "grpc", "http": "http/protobuf"}
MASK = "****"  # what the collector's redaction processor writes over a secret


class CollectorRun:
    def __init__(self, collector: CollectorProcess, export_dir: Path) -> None:
        self.collector = collector
        self.export_dir = export_dir
        self.sent: dict[str, dict[str, Any]] = {}

    def written(self) -> OtlpData:
        return read_otlp(*(self.export_dir / f"{s}.json" for s in ("traces", "metrics", "logs")))


@pytest.fixture(scope="module")
def pipeline(
    collector_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorRun]:
    """One collector with the debug-file overlay; the app sends a burst over gRPC, one over HTTP."""
    root = tmp_path_factory.mktemp("collector-pipeline")
    export_dir = root / "export"
    export_dir.mkdir()
    collector = CollectorProcess(
        collector_binary,
        [BASE_CONFIG, OVERLAY_DIR / "debug-file.yaml"],
        log_dir=root / "logs",
        storage_dir=root / "storage",
        env={"OTELCOL_DEBUG_DIR": str(export_dir)},
    ).start()
    try:
        result = CollectorRun(collector, export_dir)
        for name, protocol in PROTOCOLS.items():
            endpoint = collector.grpc_endpoint if name == "grpc" else collector.http_endpoint
            summary = run_burst(
                sender_env(endpoint, protocol), f"m-{name}", f"chenu-e2e-{name}", CANARY
            )
            assert summary["errors"] == 0, summary
            result.sent[name] = summary
        yield result
    finally:
        collector.stop()
        print(f"--- collector output ---\n{collector.output()[-3000:]}")


def wait_for(pipeline: CollectorRun, what: str, found: Any) -> OtlpData:
    """Poll the collector's files until `found(data)` is truthy; return the data."""

    def probe() -> OtlpData | None:
        data = pipeline.written()
        return data if found(data) else None

    return poll_until(probe, timeout=30, what=what)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_span_log_and_histogram_exemplar_share_the_trace_id(
    pipeline: CollectorRun, protocol: str
) -> None:
    """The span, the log written inside it and the histogram exemplar carry one trace id."""
    trace_id = pipeline.sent[protocol]["trace_id"]
    service = f"chenu-e2e-{protocol}"

    def everything(data: OtlpData) -> bool:
        return (
            any(s.trace_id == trace_id for s in data.spans)
            and any(r.trace_id == trace_id for r in data.logs)
            and any(
                p.name == "chenu.e2e.work.duration" and trace_id in p.exemplar_trace_ids
                for p in data.metrics
            )
        )

    data = wait_for(pipeline, f"{protocol} span, log and exemplar", everything)
    span = next(s for s in data.spans if s.trace_id == trace_id)
    assert span.name == f"e2e-work m-{protocol}"
    assert span.service == service
    log_record = next(r for r in data.logs if r.trace_id == trace_id)
    assert log_record.span_id == span.span_id
    assert log_record.body == "e2e work done"
    assert log_record.attributes.get("e2e_marker") == f"m-{protocol}"
    # resource enrichment by the collector
    assert span.resource.get("deployment.environment.name") == "development"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_span_metrics_give_red_metrics_with_exemplars(
    pipeline: CollectorRun, protocol: str
) -> None:
    """span_metrics turns the app's span into call counts and a duration histogram."""
    trace_id = pipeline.sent[protocol]["trace_id"]
    service = f"chenu-e2e-{protocol}"
    span_name = f"e2e-work m-{protocol}"

    def red(data: OtlpData) -> bool:
        mine = [p for p in data.metrics if p.service == service]
        return any(p.name == "traces.span.metrics.calls" for p in mine) and any(
            p.name == "traces.span.metrics.duration" and trace_id in p.exemplar_trace_ids
            for p in mine
        )

    data = wait_for(pipeline, f"span_metrics for {service}", red)
    calls = [
        p
        for p in data.metrics
        if p.service == service
        and p.name == "traces.span.metrics.calls"
        and p.attributes.get("span.name") == span_name
    ]
    assert calls, f"no calls metric for span {span_name!r}"
    assert calls[0].kind == "sum"
    assert calls[0].attributes.get("span.kind") == "SPAN_KIND_SERVER"


def test_canary_secret_is_gone_from_every_signal(pipeline: CollectorRun) -> None:
    """The canary put in a span, a log and a metric attribute is nowhere in what was exported."""
    markers = {f"m-{p}" for p in PROTOCOLS}

    def all_signals(data: OtlpData) -> bool:
        return (
            {s.attributes.get("e2e.marker") for s in data.spans} >= markers
            and {r.attributes.get("e2e_marker") for r in data.logs} >= markers
            and {p.attributes.get("e2e.marker") for p in data.metrics} >= markers
        )

    data = wait_for(pipeline, "every signal of both bursts", all_signals)
    assert CANARY not in data.raw
    # The attributes are still there, masked: the secret was removed, not the telemetry.
    span = next(s for s in data.spans if s.attributes.get("e2e.marker") == "m-grpc")
    assert span.attributes["user.password"] not in ("", CANARY)
    log_record = next(r for r in data.logs if r.attributes.get("e2e_marker") == "m-grpc")
    assert log_record.attributes["api_key"] not in ("", CANARY)
    # The app does not scrub metric attributes: this mask is the collector's work.
    point = next(
        p
        for p in data.metrics
        if p.name == "chenu.e2e.work.duration" and p.attributes.get("e2e.marker") == "m-grpc"
    )
    assert point.attributes["session_token"] == MASK


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {
            "key": key,
            "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}},
        }
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _post_json(url: str, payload: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_collector_masks_secrets_that_reach_it_unscrubbed(pipeline: CollectorRun) -> None:
    """Secrets sent straight to the collector (no app-side scrubbing) are masked in all signals."""
    base = pipeline.collector.http_endpoint
    now = time.time_ns()
    resource = {"attributes": [_attr("service.name", "raw-otlp-client")]}
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    _post_json(
        f"{base}/v1/traces",
        {
            "resourceSpans": [
                {
                    "resource": resource,
                    "scopeSpans": [
                        {
                            "scope": {"name": "raw"},
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "name": "raw-span",
                                    "kind": 2,
                                    "startTimeUnixNano": str(now - 1_000_000),
                                    "endTimeUnixNano": str(now),
                                    "attributes": [
                                        _attr(
                                            "http.request.header.authorization",
                                            [f"Bearer {CANARY}"],
                                        ),
                                        _attr("db.password", CANARY),
                                        _attr("url.full", f"https://u:{CANARY}@h/x?token={CANARY}"),
                                        _attr("gen_ai.usage.input_tokens", 42),
                                    ],
                                    "events": [
                                        {
                                            "name": "exception",
                                            "timeUnixNano": str(now),
                                            "attributes": [
                                                _attr("exception.message", f"bad token={CANARY}")
                                            ],
                                        }
                                    ],
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )
    _post_json(
        f"{base}/v1/logs",
        {
            "resourceLogs": [
                {
                    "resource": resource,
                    "scopeLogs": [
                        {
                            "scope": {"name": "raw"},
                            "logRecords": [
                                {
                                    "timeUnixNano": str(now),
                                    "severityNumber": 9,
                                    "body": {"stringValue": f"login with Bearer {CANARY} failed"},
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "attributes": [
                                        _attr("http.request.header.cookie", f"sid={CANARY}"),
                                        _attr("x-api-key", CANARY),
                                        _attr("raw.marker", "raw"),
                                    ],
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )
    _post_json(
        f"{base}/v1/metrics",
        {
            "resourceMetrics": [
                {
                    "resource": resource,
                    "scopeMetrics": [
                        {
                            "scope": {"name": "raw"},
                            "metrics": [
                                {
                                    "name": "raw.requests",
                                    "sum": {
                                        "aggregationTemporality": 2,
                                        "isMonotonic": True,
                                        "dataPoints": [
                                            {
                                                "asInt": "1",
                                                "startTimeUnixNano": str(now - 1_000_000),
                                                "timeUnixNano": str(now),
                                                "attributes": [
                                                    _attr("client_secret", CANARY),
                                                    _attr("note", f"Bearer {CANARY}"),
                                                ],
                                            }
                                        ],
                                    },
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )

    def raw_signals(data: OtlpData) -> bool:
        return (
            any(s.trace_id == trace_id for s in data.spans)
            and any(r.trace_id == trace_id for r in data.logs)
            and any(p.name == "raw.requests" for p in data.metrics)
        )

    data = wait_for(pipeline, "the raw OTLP signals", raw_signals)
    span = next(s for s in data.spans if s.trace_id == trace_id)
    log_record = next(r for r in data.logs if r.trace_id == trace_id)
    point = next(p for p in data.metrics if p.name == "raw.requests")
    assert CANARY not in data.raw, "a secret sent to the collector was exported"
    assert span.attributes["db.password"] == MASK
    assert span.attributes["gen_ai.usage.input_tokens"] == 42, "token counts must survive"
    assert log_record.body == f"login with {MASK} failed"
    assert log_record.attributes["x-api-key"] == MASK
    assert point.attributes["client_secret"] == MASK
    assert point.attributes["note"] == MASK


def test_collector_exposes_its_own_pipeline_metrics(pipeline: CollectorRun) -> None:
    """The collector's own metrics show what it accepted and how full each disk queue is."""
    wait_for(pipeline, "the gRPC burst's span", lambda d: d.spans)

    def accepted_and_queued() -> str | None:
        text = pipeline.collector.own_metrics()
        return text if "otelcol_receiver_accepted_spans" in text else None

    text = poll_until(accepted_and_queued, timeout=30, what="otelcol_* metrics")
    for name in (
        "otelcol_receiver_accepted_log_records",
        "otelcol_receiver_accepted_metric_points",
        "otelcol_exporter_queue_size",
        "otelcol_exporter_queue_capacity",
    ):
        assert name in text, f"{name} missing from the collector's own metrics"
    assert 'exporter="otlp_grpc/jaeger"' in text
