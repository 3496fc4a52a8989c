"""Remove secrets from telemetry before it leaves the process.

One set of rules serves logs and spans:

* an attribute (or log key, at any depth of a nested dict) whose *key* looks like a credential
  (password, token, api key, authorization, cookie, secret, session id, signature) has its
  value replaced by ``[REDACTED]``;
* a string *value* is rewritten in place where it carries a bearer/basic credential, a URL with
  a password (``https://user:pw@host``), a JWT, or a ``name=value`` pair whose name is
  credential-like (``?token=…``, ``api_key=…``, ``password='…'``);
* ``db.statement`` / ``db.query.text`` have their literals replaced by ``?`` (semconv's
  sanitized form), so values written into SQL text never leave;
* exceptions: span event attributes, the span status description and, for log records, the
  exception's message and stack trace get the value rules.

Metric attributes are not scrubbed here: the catalogue's views keep only allow-listed keys.
The collector redacts again (defence in depth), but nothing secret should reach it.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

__all__ = [
    "REDACTED",
    "ScrubbingSpanExporter",
    "is_secret_key",
    "sanitize_sql",
    "scrub_attributes",
    "scrub_event_dict",
    "scrub_value",
]

REDACTED = "[REDACTED]"

SECRET_KEY = re.compile(
    r"(?i)(passw(or)?d|passphrase|secret|api[-_.]?key|authorization|auth[-_.]?(header|key)"
    r"|cookie|session[-_.]?id|credential|private[-_.]?key|signature"
    # "token" as a word ("csrf_token", "x-auth-token"), not "tokens_used" or "gen_ai.token.type"
    r"|(?<![a-z])token(?![a-z_.]))"
)
_SECRET_VALUE = re.compile(
    r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"
    # a JWT: base64url header starting {" , payload, signature
    r"|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
)
# name=value as in query strings, form bodies, DSNs and messages; the value may be quoted.
_ASSIGNMENT = re.compile(r"([A-Za-z][A-Za-z0-9_.\-]*)=(['\"]?)([^&\s#;,'\"]+)")
# Attributes holding SQL text (old and stable semconv names).
SQL_KEYS = frozenset({"db.statement", "db.query.text"})
# String literals ('it''s' included) and numbers that are not part of a name or a $1 marker.
_SQL_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w$])-?\d+(?:\.\d+)?(?![\w.])")
_NESTING_LIMIT = 8  # deeper structures are stringified by the log emitter anyway


# Key decisions, cached: log keys and attribute names repeat on every record. Bounded so that
# keys made from data (a dict logged with user ids as keys) cannot grow it without limit.
_KEY_DECISIONS: dict[str, bool] = {}
_KEY_DECISIONS_LIMIT = 4096


def is_secret_key(key: str) -> bool:
    """True when an attribute called `key` must not leave the process with its value."""
    decision = _KEY_DECISIONS.get(key)
    if decision is None:
        decision = SECRET_KEY.search(key) is not None
        if len(_KEY_DECISIONS) < _KEY_DECISIONS_LIMIT:
            _KEY_DECISIONS[key] = decision
    return decision


# Keys the logging chain always overwrites with values it formats (ISO time, level, the
# logger's name): nothing the application passes survives in them, so they are not scanned.
_CHAIN_KEYS = frozenset({"timestamp", "level", "logger", "_time_ns"})


def scrub_value(value: str) -> str:
    """Mask credentials embedded in a string: ``Bearer abc…``, ``https://u:p@host``, JWTs and
    ``token=…``-style pairs whose name is credential-like."""
    # Every rule needs a space, "@", "=" or a JWT's "eyJ": substring scans spare regex runs.
    if len(value) < 8 or (
        " " not in value and "=" not in value and "@" not in value and "eyJ" not in value
    ):
        return value
    scrubbed = _SECRET_VALUE.sub(_mask, value)
    if "=" in scrubbed:
        scrubbed = _ASSIGNMENT.sub(_mask_assignment, scrubbed)
    return scrubbed


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    scheme, _, _ = text.partition(" ")
    return f"{scheme} {REDACTED}" if " " in text else REDACTED


def _mask_assignment(match: re.Match[str]) -> str:
    name, quote, value = match.groups()
    if value == REDACTED or not is_secret_key(name):
        return match.group(0)
    return f"{name}={quote}{REDACTED}"


def sanitize_sql(statement: str) -> str:
    """`statement` with its string and number literals replaced by ``?``."""
    return _SQL_LITERAL.sub("?", statement)


def scrub_attributes(attributes: Mapping[str, Any]) -> dict[str, Any] | None:
    """A scrubbed copy of `attributes`, or None when nothing in it needed scrubbing."""
    changed: dict[str, Any] | None = None
    for key, value in attributes.items():
        new = _scrubbed(key, value)
        if new is not value:
            if changed is None:
                changed = dict(attributes)
            changed[key] = new
    return changed


def _scrubbed(key: str, value: Any) -> Any:
    """`value` scrubbed for attribute `key`; the same object when nothing changed."""
    if is_secret_key(key):
        return REDACTED
    kind = type(value)
    if kind is str:
        new = scrub_value(sanitize_sql(value) if key in SQL_KEYS else value)
        return value if new == value else new
    if (kind is tuple or kind is list) and value and type(value[0]) is str:
        items = [scrub_value(v) if isinstance(v, str) else v for v in value]
        return value if items == list(value) else type(value)(items)
    return value


def _scrubbed_nested(value: Any, depth: int = 0) -> Any:
    """A scrubbed copy of a nested dict/list/tuple structure, or `value` itself if clean."""
    if isinstance(value, str):
        new = scrub_value(value)
        return value if new == value else new
    if depth >= _NESTING_LIMIT:
        return value
    if isinstance(value, Mapping):
        items = {
            k: REDACTED
            if isinstance(k, str) and is_secret_key(k)
            else _scrubbed_nested(v, depth + 1)
            for k, v in value.items()
        }
        return value if all(items[k] is v for k, v in value.items()) else items
    if isinstance(value, list | tuple):
        elements = [_scrubbed_nested(v, depth + 1) for v in value]
        if all(new is old for new, old in zip(elements, value, strict=True)):
            return value
        return type(value)(elements) if isinstance(value, tuple) else elements
    return value


def scrub_event_dict(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub the event's key-values (nested dicts and lists included, and
    the event text) in place.

    A logged exception whose message or stack trace carries a credential is replaced by its
    scrubbed rendering: ``exception`` (the text structlog's ``format_exc_info`` would write)
    and the OTel ``exception.type``/``exception.message``/``exception.stacktrace`` attributes.
    """
    decisions = _KEY_DECISIONS
    for key, value in event_dict.items():
        if key in _CHAIN_KEYS:
            continue
        secret = decisions.get(key)
        if secret is None:
            secret = is_secret_key(key)
        kind = type(value)
        if secret:
            event_dict[key] = REDACTED
        elif kind is str:
            if len(value) >= 8:
                new = scrub_value(value)
                if new != value:
                    event_dict[key] = new
        elif kind is int or kind is float or kind is bool or value is None:
            continue  # numbers cannot carry a credential
        elif key != "exc_info" and isinstance(value, dict | list | tuple):
            nested = _scrubbed_nested(value)
            if nested is not value:
                event_dict[key] = nested
    exc_info = event_dict.get("exc_info")
    if exc_info:
        _scrub_exception(event_dict, exc_info)
    return event_dict


def _scrub_exception(event_dict: MutableMapping[str, Any], exc_info: Any) -> None:
    if isinstance(exc_info, BaseException):
        exception: BaseException | None = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        exception = exc_info[1]
    else:  # exc_info=True: the exception being handled
        exception = sys.exc_info()[1]
    if exception is None:
        return
    stacktrace = "".join(
        traceback.format_exception(type(exception), exception, exception.__traceback__)
    )
    scrubbed = scrub_value(stacktrace)
    if scrubbed == stacktrace:
        return  # nothing secret: structlog and the SDK render the exception as usual
    kind = type(exception)
    module = kind.__module__
    del event_dict["exc_info"]
    event_dict["exception"] = scrubbed.rstrip("\n")
    event_dict["exception.type"] = (
        f"{module}.{kind.__qualname__}" if module != "builtins" else kind.__qualname__
    )
    event_dict["exception.message"] = scrub_value(str(exception))
    event_dict["exception.stacktrace"] = scrubbed


class ScrubbingSpanExporter(SpanExporter):
    """Wraps a span exporter; spans carrying secrets are copied with scrubbed attributes, event
    attributes, name and status description.

    Runs in the batch processor's worker thread, off the request path; spans without secrets
    are passed through untouched.
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([_scrub_span(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def _scrub_span(span: ReadableSpan) -> ReadableSpan:
    attributes = scrub_attributes(span.attributes or {})
    events = [
        Event(event.name, scrubbed, event.timestamp)
        if (scrubbed := scrub_attributes(event.attributes or {})) is not None
        else event
        for event in span.events
    ]
    name = scrub_value(span.name)
    status = span.status
    if status.description and (description := scrub_value(status.description)) != (
        status.description
    ):
        status = Status(status.status_code, description)
    if (
        attributes is None
        and name == span.name
        and status is span.status
        and all(a is b for a, b in zip(events, span.events, strict=True))
    ):
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes if attributes is not None else span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
