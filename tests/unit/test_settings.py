"""Malformed OTEL_* values: a warning naming the variable and value, the default, a working app."""

from __future__ import annotations

import logging
import os

import pytest

import chenu_otel
from chenu_otel.environment_variables import (
    DEFAULT_MAX_EXPORT_BATCH_SIZE,
    DEFAULT_MAX_QUEUE_SIZE,
)
from chenu_otel.logging import get_logger
from chenu_otel.settings import load_settings
from chenu_otel.testing import OtlpSink, capture_telemetry, environ_for
from chenu_otel.tracing import create_span

# (variable, bad value, text the warning must show, does export to the sink still work?)
MALFORMED = [
    ("OTEL_TRACES_SAMPLER_ARG", "abc", "'abc'", True),
    ("OTEL_TRACES_SAMPLER_ARG", "1.5", "'1.5'", True),
    ("OTEL_TRACES_SAMPLER", "sometimes", "'sometimes'", True),
    ("OTEL_TRACES_EXPORTER", "zipkin_json", "'zipkin_json'", True),
    ("OTEL_METRICS_EXPORTER", "statsd", "'statsd'", True),
    ("OTEL_LOGS_EXPORTER", "otlp,splunk", "'splunk'", True),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "ftp", "'ftp'", True),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "'http/json'", True),
    ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=ok,Bearer sk-secret-value", "entry 2", True),
    ("OTEL_EXPORTER_OTLP_HEADERS", "x-evil=a%0D%0ASet-Cookie: x", "control character", True),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", "'collector:4317'", False),
    ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://:99999", "'http://:99999'", True),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "-5", "'-5'", True),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", "'brotli'", True),
    ("OTEL_METRIC_EXPORT_INTERVAL", "-1000", "'-1000'", True),
    ("OTEL_METRIC_EXPORT_TIMEOUT", "soon", "'soon'", True),
    ("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes", "'sometimes'", True),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "'0'", True),
    ("OTEL_BSP_SCHEDULE_DELAY", "1e3", "'1e3'", True),
    ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "many", "'many'", True),
    ("OTEL_PROPAGATORS", "tracecontext,b3", "'b3'", True),
    ("OTEL_SDK_DISABLED", "maybe", "'maybe'", True),
    ("OTEL_RESOURCE_ATTRIBUTES", "team=ai,broken", "entry 2", True),
    ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "big", "'big'", True),
    ("CHENU_OTEL_OTLP_ENCODER", "fast", "'fast'", True),
]


@pytest.mark.parametrize(("name", "value", "shown", "exports"), MALFORMED)
def test_malformed_setting_warns_and_service_keeps_working(
    name: str,
    value: str,
    shown: str,
    exports: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    otlp_sink: OtlpSink,
) -> None:
    """Each malformed value is named in a warning; spans and logs still flow with defaults."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_sink.grpc_endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
    if name == "OTEL_TRACES_SAMPLER_ARG":
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv(name, value)

    with (
        caplog.at_level(logging.WARNING, logger="chenu_otel"),
        capture_telemetry(service_name="settings-test") as telemetry,
    ):
        with create_span("still-served"):
            get_logger("app").info("still_logging")
        assert [s.name for s in telemetry.spans()] == ["still-served"]
        assert [r.log_record.body for r in telemetry.logs()] == ["still_logging"]
        if exports:
            telemetry.pipeline.force_flush(5_000)
            otlp_sink.wait_for(lambda s: s.spans() and s.logs(), timeout=10)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(name in w and shown in w for w in warnings), warnings
    if name == "OTEL_EXPORTER_OTLP_HEADERS":
        assert "sk-secret-value" not in " ".join(warnings)


def test_reading_settings_never_writes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_settings() only reads: rejected values stay in os.environ, the defaults are used."""
    monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext,nonsense")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "ok=1,broken")
    before = dict(os.environ)

    settings = load_settings()

    assert dict(os.environ) == before
    assert settings.propagators == ("tracecontext",)
    assert settings.bsp.max_queue_size == DEFAULT_MAX_QUEUE_SIZE
    assert settings.otlp["traces"].timeout_seconds == 10.0
    assert settings.otlp["traces"].headers == {"ok": "1"}
    assert len(settings.problems) == 4
    assert settings.sdk_environment == {
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": None,
        "OTEL_EXPORTER_OTLP_HEADERS": "ok=1",
    }


def test_a_timeout_the_grpc_exporter_would_refuse_does_not_stop_export(
    monkeypatch: pytest.MonkeyPatch, otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK's gRPC exporter parses OTEL_EXPORTER_OTLP_TRACES_TIMEOUT itself and cannot start
    on '10s': configure() hands it the validated value and spans still arrive."""
    for name, value in environ_for(otlp_sink, "grpc").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s")
    with caplog.at_level(logging.WARNING, logger="chenu_otel"):
        pipeline = chenu_otel.configure(service_name="timeout-test")
    with create_span("exported"):
        pass
    assert pipeline.force_flush(5_000)
    otlp_sink.wait_for(lambda s: s.spans("grpc"), timeout=10)
    assert "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" not in os.environ
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT='10s' is not valid" in messages
    assert "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT is read by the SDK's exporters" in messages


def test_http_exporters_never_send_a_rejected_header(
    monkeypatch: pytest.MonkeyPatch, otlp_sink: OtlpSink
) -> None:
    """The SDK's HTTP exporters merge OTEL_EXPORTER_OTLP_HEADERS into each request themselves:
    only the valid entries reach the wire, and export keeps working."""
    for name, value in environ_for(otlp_sink, "http/protobuf").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=t1,x-evil=a%0D%0ASet-Cookie: x")
    pipeline = chenu_otel.configure(service_name="headers-test")
    with create_span("exported"):
        pass
    assert pipeline.force_flush(5_000)
    received = otlp_sink.wait_for(lambda s: s._requests("traces", "http"), timeout=10)
    assert received[0].headers["x-tenant"] == "t1"
    assert "x-evil" not in received[0].headers


def test_valid_settings_are_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Well-formed values are honoured, per-signal forms over the generic ones."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "https://logs.example:443/v1/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=abc%3D,tenant=t1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "tenant=t2")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp,prometheus")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")

    settings = load_settings()
    assert settings.problems == ()
    assert settings.otlp["traces"].endpoint == "http://collector:4318/v1/traces"
    assert settings.otlp["logs"].endpoint == "https://logs.example:443/v1/logs"
    assert settings.otlp["traces"].headers == {"api-key": "abc=", "tenant": "t2"}
    assert settings.otlp["metrics"].headers == {"api-key": "abc=", "tenant": "t1"}
    assert settings.otlp["traces"].timeout_seconds == 2.5
    assert settings.otlp["metrics"].compression == "gzip"
    assert settings.otlp["traces"].compression == "none"
    assert (settings.sampler, settings.sampler_arg) == ("traceidratio", 0.25)
    assert settings.exporters["metrics"] == ("otlp", "prometheus")
    assert settings.bsp.max_queue_size == 100
    assert settings.bsp.max_export_batch_size == min(DEFAULT_MAX_EXPORT_BATCH_SIZE, 100)
