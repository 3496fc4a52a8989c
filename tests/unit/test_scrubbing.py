"""chenu_otel.scrubbing, judged by what reaches the in-memory exporters and stdout: secrets in
keys, values, SQL text, nested log values and exceptions are masked; look-alikes are kept."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from chenu_otel.logging import bind_context, clear_context, get_logger, setup_logging
from chenu_otel.scrubbing import REDACTED
from chenu_otel.testing import capture_telemetry
from chenu_otel.tracing import create_span, traced

SECRET = "s3cr3t-Value-42x"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTcifQ.c2lnbmF0dXJlLXNlY3JldA"


@pytest.fixture
def stdout() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    setup_logging(level="DEBUG", format="json", stream=stream)
    yield stream
    clear_context()
    logging.getLogger().handlers.clear()


def one_span(attributes: dict[str, object], name: str = "work") -> ReadableSpan:
    with capture_telemetry() as telemetry:
        with create_span(name, attributes):
            pass
        (span,) = telemetry.spans()
    return span


def logged(emit: object) -> list[ReadableLogRecord]:
    with capture_telemetry() as telemetry:
        assert callable(emit)
        emit()
        return list(telemetry.logs())


def test_credential_query_parameters_are_masked_and_others_kept(memory_only: None) -> None:
    """?token=…, access_token=…, api_key=… lose their values; page=2 and max_tokens=5 stay."""
    url = f"https://api.example/v1/items?token={SECRET}&page=2&access_token={SECRET}&max_tokens=5"
    span = one_span({"url.full": url, "url.query": f"api_key={SECRET}&sort=asc"})
    assert span.attributes is not None
    assert span.attributes["url.full"] == (
        f"https://api.example/v1/items?token={REDACTED}&page=2&access_token={REDACTED}&max_tokens=5"
    )
    assert span.attributes["url.query"] == f"api_key={REDACTED}&sort=asc"


def test_url_password_bearer_and_jwt_are_masked_in_any_value(memory_only: None) -> None:
    """Credentials inside otherwise harmless values are rewritten, the rest of the text kept."""
    span = one_span(
        {
            "peer.dsn": f"postgresql://app:{SECRET}@db:5432/app",
            "note": f"retry with Authorization: Bearer {SECRET}",
            "chenu.request.id": JWT,
            "headers.seen": (f"Bearer {SECRET}", "gzip"),
        }
    )
    assert span.attributes is not None
    assert span.attributes["peer.dsn"] == f"postgresql://{REDACTED}@db:5432/app"
    assert span.attributes["note"] == f"retry with Authorization: Bearer {REDACTED}"
    assert span.attributes["chenu.request.id"] == REDACTED
    assert span.attributes["headers.seen"] == (f"Bearer {REDACTED}", "gzip")


def test_credential_keys_lose_their_values_but_token_counts_stay(memory_only: None) -> None:
    """Keys like a captured Authorization header are redacted; gen_ai token counts are not."""
    span = one_span(
        {
            "http.request.header.authorization": (f"Bearer {SECRET}",),
            "http.request.header.x_api_key": (SECRET,),
            "auth_token": SECRET,
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.token.type": "input",
        }
    )
    assert span.attributes is not None
    assert span.attributes["http.request.header.authorization"] == REDACTED
    assert span.attributes["http.request.header.x_api_key"] == REDACTED
    assert span.attributes["auth_token"] == REDACTED
    assert span.attributes["gen_ai.usage.input_tokens"] == 120
    assert span.attributes["gen_ai.token.type"] == "input"


def test_sql_literals_are_replaced_by_placeholders(memory_only: None) -> None:
    """db.statement / db.query.text keep their shape, never their literal values."""
    span = one_span(
        {
            "db.statement": f"SELECT id FROM users WHERE api_secret = '{SECRET}' AND pin = 4242",
            "db.query.text": "UPDATE t1 SET note = 'it''s' WHERE id = $1",
            "note": "table t1 holds 4242 rows",
        }
    )
    assert span.attributes is not None
    assert span.attributes["db.statement"] == (
        "SELECT id FROM users WHERE api_secret = ? AND pin = ?"
    )
    assert span.attributes["db.query.text"] == "UPDATE t1 SET note = ? WHERE id = $1"
    assert span.attributes["note"] == "table t1 holds 4242 rows"  # only SQL keys are sanitized


def test_exception_message_is_masked_in_event_and_status(memory_only: None) -> None:
    """A traced function raising with a credential in its message: the exception event and the
    span status description are scrubbed, the exception type kept."""

    def upstream() -> None:
        raise ConnectionError(f"GET https://api.example/v1?api_key={SECRET} refused")

    call: Callable[[], None] = traced("call_upstream")(upstream)

    with capture_telemetry() as telemetry:
        with pytest.raises(ConnectionError):
            call()
        (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None
    assert SECRET not in span.status.description
    assert f"api_key={REDACTED}" in span.status.description
    (event,) = span.events
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ConnectionError"
    assert event.attributes["exception.message"] == (
        f"GET https://api.example/v1?api_key={REDACTED} refused"
    )
    assert SECRET not in str(event.attributes["exception.stacktrace"])


def test_span_name_with_a_credential_is_masked(memory_only: None) -> None:
    span = one_span({}, name=f"GET /callback?code=1&token={SECRET}")
    assert span.name == f"GET /callback?code=1&token={REDACTED}"


def test_nested_log_values_are_scrubbed_at_every_level(
    memory_only: None, stdout: io.StringIO
) -> None:
    """A dict or list logged as a value is scrubbed inside (key and value rules), in the
    exported log record and on stdout."""
    records = logged(
        lambda: get_logger("auth").info(
            "login",
            user={"name": "ana", "password": SECRET, "links": [f"https://u:{SECRET}@h/x"]},
            attempts=[f"token={SECRET}", "ok"],
        )
    )
    (record,) = [r.log_record for r in records]
    assert record.attributes is not None
    exported = json.dumps(dict(record.attributes), default=str)
    assert SECRET not in exported
    assert "ana" in str(record.attributes["user"])
    assert SECRET not in stdout.getvalue()
    (line,) = [json.loads(text) for text in stdout.getvalue().splitlines()]
    assert line["user"]["password"] == REDACTED
    assert line["attempts"] == [f"token={REDACTED}", "ok"]


def test_bound_context_and_event_text_are_scrubbed(memory_only: None, stdout: io.StringIO) -> None:
    """bind_context values and the event text itself go through the same rules."""

    def emit() -> None:
        bind_context(session_token=SECRET, request_url=f"https://h/p?password={SECRET}")
        get_logger("api").info(f"callback with Authorization: Bearer {SECRET}")

    (record,) = [r.log_record for r in logged(emit)]
    assert record.attributes is not None
    assert record.attributes["session_token"] == REDACTED
    assert record.attributes["request_url"] == f"https://h/p?password={REDACTED}"
    assert record.body == f"callback with Authorization: Bearer {REDACTED}"
    assert SECRET not in stdout.getvalue()


def test_logged_exception_with_a_credential_is_scrubbed_everywhere(
    memory_only: None, stdout: io.StringIO
) -> None:
    """log.exception(): the record's exception.message and exception.stacktrace and the JSON
    line's traceback are scrubbed; exception.type stays."""

    def emit() -> None:
        try:
            raise RuntimeError(f"could not connect to postgresql://app:{SECRET}@db/app")
        except RuntimeError:
            get_logger("db").exception("connect_failed")

    (record,) = [r.log_record for r in logged(emit)]
    assert record.attributes is not None
    assert record.attributes["exception.type"] == "RuntimeError"
    assert record.attributes["exception.message"] == (
        f"could not connect to postgresql://{REDACTED}@db/app"
    )
    assert "Traceback" in str(record.attributes["exception.stacktrace"])
    assert SECRET not in str(dict(record.attributes))
    (line,) = [json.loads(text) for text in stdout.getvalue().splitlines()]
    assert "RuntimeError" in line["exception"] and SECRET not in line["exception"]


def test_logged_exception_without_a_credential_is_left_to_the_sdk(
    memory_only: None, stdout: io.StringIO
) -> None:
    """Nothing secret: the SDK's own exception attributes, unchanged message."""

    def emit() -> None:
        try:
            raise KeyError("thread-7")
        except KeyError:
            get_logger("db").exception("lookup_failed")

    (record,) = [r.log_record for r in logged(emit)]
    assert record.attributes is not None
    assert record.attributes["exception.type"] == "KeyError"
    assert record.attributes["exception.message"] == "'thread-7'"
    (line,) = [json.loads(text) for text in stdout.getvalue().splitlines()]
    assert "KeyError: 'thread-7'" in line["exception"]


def test_stdlib_log_message_arguments_are_scrubbed(memory_only: None, stdout: io.StringIO) -> None:
    """A library logging a URL through the standard logging module: the rendered message is
    scrubbed before it becomes the record's body."""
    (record,) = [
        r.log_record
        for r in logged(
            lambda: logging.getLogger("httpclient").warning(
                "retrying %s", f"https://api.example/x?api_key={SECRET}"
            )
        )
    ]
    assert record.body == f"retrying https://api.example/x?api_key={REDACTED}"
    assert SECRET not in stdout.getvalue()
