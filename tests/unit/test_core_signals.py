"""Telemetry core, one signal at a time, through in-memory exporters."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import chenu_otel
from chenu_otel.logging import bind_context, clear_context, get_logger, setup_logging
from chenu_otel.testing import capture_telemetry
from chenu_otel.tracing import add_span_attributes, create_span, traced


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def stdout() -> io.StringIO:
    stream = io.StringIO()
    setup_logging(level="DEBUG", format="json", stream=stream)
    yield stream
    clear_context()
    logging.getLogger().handlers.clear()


def test_traced_records_exception_and_error_status(memory_only: None) -> None:
    """A traced function that raises ends its span with error status and an exception event."""

    @traced("charge_card", {"payment.provider": "fake"})
    def charge() -> None:
        raise ValueError("card declined")

    with capture_telemetry() as telemetry:
        with pytest.raises(ValueError, match="card declined"):
            charge()
        (span,) = telemetry.spans()

    assert span.name == "charge_card"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["payment.provider"] == "fake"
    assert span.attributes["error.type"] == "ValueError"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "card declined"


async def _async_work(thread_id: str) -> str:
    add_span_attributes(thread_id=thread_id, ignored=None)
    return thread_id.upper()


def test_traced_async_function_gets_its_own_span(memory_only: None) -> None:
    """@traced on a coroutine function keeps it awaitable and spans its whole run."""
    import asyncio

    with capture_telemetry() as telemetry:
        result = asyncio.run(traced("process_thread")(_async_work)("t-1"))
        (span,) = telemetry.spans()
    assert result == "T-1"
    assert span.name == "process_thread"
    assert span.attributes == {"thread_id": "t-1"}
    assert span.status.status_code is StatusCode.UNSET


def test_bare_traced_uses_the_qualified_name(memory_only: None) -> None:
    """@traced without arguments names the span after the function."""

    @traced
    def compute() -> int:
        return 3

    with capture_telemetry() as telemetry:
        assert compute() == 3
        (span,) = telemetry.spans()
    assert span.name.endswith("compute")


def test_log_in_span_is_correlated_in_json_and_log_record(
    memory_only: None, stdout: io.StringIO
) -> None:
    """A log inside a span carries its trace/span id in the JSON line and the LogRecord,
    with bound context as attributes."""
    with capture_telemetry(service_name="chenu-test") as telemetry:
        bind_context(request_id="req-123", user_id="u-7")
        with create_span("handle") as span:
            get_logger("chenu.api").info("thread_created", thread_id="t-1", tokens=3)
        context = span.get_span_context()
        (record,) = [r.log_record for r in telemetry.logs()]

    trace_id, span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
    (line,) = _lines(stdout)
    assert line["event"] == "thread_created"
    assert line["trace_id"] == trace_id and line["span_id"] == span_id
    assert line["request_id"] == "req-123" and line["user_id"] == "u-7"
    assert line["level"] == "info"
    assert str(line["timestamp"]).endswith("Z")

    assert record.body == "thread_created"
    assert format(record.trace_id, "032x") == trace_id
    assert format(record.span_id, "016x") == span_id
    assert record.severity_text == "INFO"
    assert dict(record.attributes) == {
        "request_id": "req-123",
        "user_id": "u-7",
        "thread_id": "t-1",
        "tokens": 3,
    }


def test_stdlib_logging_takes_the_same_path_once(memory_only: None, stdout: io.StringIO) -> None:
    """A stdlib record becomes exactly one JSON line and one LogRecord, correlated too."""
    with capture_telemetry() as telemetry:
        with create_span("request"):
            logging.getLogger("uvicorn.error").warning("worker %s busy", 3)
        records = [r.log_record for r in telemetry.logs()]

    (line,) = _lines(stdout)
    assert line["event"] == "worker 3 busy"
    assert line["level"] == "warning"
    assert line["logger"] == "uvicorn.error"
    (record,) = records
    assert record.body == "worker 3 busy"
    assert record.severity_text == "WARN"
    assert format(record.trace_id, "032x") == line["trace_id"]


def test_setup_logging_twice_writes_each_line_once(memory_only: None, stdout: io.StringIO) -> None:
    """Calling setup_logging again replaces the configuration instead of adding handlers."""
    setup_logging(level="INFO", format="json", stream=stdout)
    with capture_telemetry() as telemetry:
        logging.getLogger("lib").info("once")
        get_logger("app").info("also_once")
        records = telemetry.logs()
    assert [line["event"] for line in _lines(stdout)] == ["once", "also_once"]
    assert [r.log_record.body for r in records] == ["once", "also_once"]


def test_exception_log_keeps_the_traceback(memory_only: None, stdout: io.StringIO) -> None:
    """logger.exception() records the exception on the LogRecord and in the JSON line."""
    with capture_telemetry() as telemetry:
        try:
            raise KeyError("missing")
        except KeyError:
            get_logger("app").exception("lookup_failed")
        (record,) = [r.log_record for r in telemetry.logs()]
    (line,) = _lines(stdout)
    assert "KeyError" in str(line["exception"])
    assert record.severity_text == "ERROR"
    assert record.attributes["exception.type"] == "KeyError"


def test_secrets_are_scrubbed_from_logs_and_spans(memory_only: None, stdout: io.StringIO) -> None:
    """Credential-like keys and bearer tokens never reach an exporter or stdout."""
    with capture_telemetry() as telemetry:
        with create_span("login", {"user.password": "hunter2", "user.name": "ana"}):
            get_logger("auth").info(
                "login", api_key="sk-live-123", header="Bearer abcdefghijklmnop"
            )
        records = [r.log_record for r in telemetry.logs()]
        (span,) = telemetry.spans()

    assert span.attributes["user.password"] == "[REDACTED]"
    assert span.attributes["user.name"] == "ana"
    (record,) = records
    assert record.attributes["api_key"] == "[REDACTED]"
    assert record.attributes["header"] == "Bearer [REDACTED]"
    assert "hunter2" not in stdout.getvalue() and "sk-live-123" not in stdout.getvalue()


def test_resource_comes_from_environment_over_code_defaults(
    memory_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over configure()'s keyword defaults."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "chenu-backend")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.namespace=chenu,deployment.environment.name=prod"
    )
    with capture_telemetry(
        service_name="from-code", service_version="1.2.3", environment="dev"
    ) as telemetry:
        with create_span("x"):
            pass
        (span,) = telemetry.spans()
    attributes = span.resource.attributes
    assert attributes["service.name"] == "chenu-backend"
    assert attributes["service.namespace"] == "chenu"
    assert attributes["deployment.environment.name"] == "prod"
    assert attributes["service.version"] == "1.2.3"
    assert len(str(attributes["service.instance.id"])) == 36


def test_code_defaults_apply_when_environment_is_silent(memory_only: None) -> None:
    """Without OTEL_SERVICE_NAME the keyword arguments name the service."""
    with capture_telemetry(service_name="from-code", environment="dev") as telemetry:
        with create_span("x"):
            pass
        (span,) = telemetry.spans()
    assert span.resource.attributes["service.name"] == "from-code"
    assert span.resource.attributes["deployment.environment.name"] == "dev"


def test_second_configure_with_the_same_arguments_changes_nothing(
    memory_only: None, caplog: pytest.LogCaptureFixture
) -> None:
    """configure() again with the same arguments returns the same pipeline, silently."""
    first = chenu_otel.configure(service_name="same")
    with caplog.at_level(logging.WARNING, logger="chenu_otel"):
        again = chenu_otel.configure(service_name="same")
    assert again is first
    assert not [r for r in caplog.records if "configure() called again" in r.getMessage()]


def test_second_configure_with_other_arguments_applies_and_says_so(
    memory_only: None, caplog: pytest.LogCaptureFixture
) -> None:
    """configure() with different arguments installs a new pipeline, shuts the old one down and
    warns naming what changed; tracers obtained earlier follow the new pipeline."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    early_tracer = trace.get_tracer("early")
    with capture_telemetry(service_name="first") as telemetry:
        late = InMemorySpanExporter()
        with caplog.at_level(logging.WARNING, logger="chenu_otel"):
            again = chenu_otel.configure(
                service_name="second", span_processors=[SimpleSpanProcessor(late)]
            )
        with early_tracer.start_as_current_span("after"):
            pass
        assert again is not telemetry.pipeline
        assert chenu_otel.current_pipeline() is again
        assert telemetry.spans() == ()
    (span,) = late.get_finished_spans()
    assert span.name == "after"
    assert span.resource.attributes["service.name"] == "second"
    (warning,) = [r.getMessage() for r in caplog.records if "called again" in r.getMessage()]
    assert "service_name: 'first' -> 'second'" in warning
    assert "applied" in warning


def test_sdk_disabled_exports_nothing_but_app_keeps_working(
    memory_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_SDK_DISABLED=true installs no provider; helpers still run."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with capture_telemetry() as telemetry:
        with create_span("nothing") as span:
            add_span_attributes(k="v")
        assert not span.get_span_context().is_valid
        assert telemetry.spans() == ()
        assert not telemetry.pipeline.enabled
    assert not trace.get_current_span().get_span_context().is_valid


def test_histogram_in_sampled_span_has_exemplar(memory_only: None) -> None:
    """A measurement taken inside a sampled span carries that span's trace id as exemplar."""
    from opentelemetry import metrics

    with capture_telemetry() as telemetry:
        histogram = metrics.get_meter("test").create_histogram("work.duration", unit="s")
        with create_span("work") as span:
            histogram.record(0.25)
        (point,) = telemetry.metric_points("work.duration")
    (exemplar,) = [e for e in point.exemplars]
    assert exemplar.trace_id == span.get_span_context().trace_id
    assert exemplar.span_id == span.get_span_context().span_id


def test_seed_logging_helpers_emit_structured_records(
    memory_only: None, stdout: io.StringIO
) -> None:
    """The earlier module's log_* helpers keep working under the chenu_otel prefix."""
    from chenu_otel.logging import (
        log_agent_execution,
        log_cache_operation,
        log_database_query,
        log_request,
        log_thread_event,
    )

    with capture_telemetry() as telemetry:
        log_request("GET", "/agents", 503, 12.3456)
        log_database_query("select", "threads", 1.5, rows=2)
        log_cache_operation("get", "thread:1", hit=False)
        log_agent_execution("agent-001", "NOVA", 1200.0, 150, 0.0045, success=False)
        log_thread_event("t-1", "message_added", tokens_used=42)
        records = [r.log_record for r in telemetry.logs()]

    assert [(r.body, r.severity_text) for r in records] == [
        ("http_request", "ERROR"),
        ("database_query", "INFO"),
        ("cache_operation", "INFO"),
        ("agent_execution", "ERROR"),
        ("thread_event", "INFO"),
    ]
    assert records[0].attributes["status_code"] == 503
    assert records[3].attributes["cost_usd"] == 0.0045
    assert records[4].attributes["tokens_used"] == 42
    assert len(_lines(stdout)) == 5
