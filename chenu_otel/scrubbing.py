"""Remove secrets from telemetry before it leaves the process.

One rule serves logs and spans: an attribute whose *key* looks like a credential (password,
token, api key, authorization, cookie, secret, session) has its value replaced by
``[REDACTED]``; a string *value* that carries a bearer/basic credential or a URL with a password
is rewritten in place. Metric attributes need no scrubbing: the catalogue's views keep only
allow-listed keys. The collector redacts again (defence in depth), but nothing secret should
reach it in the first place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

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
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when an attribute called `key` must not leave the process with its value."""
    return SECRET_KEY.search(key) is not None


def scrub_value(value: str) -> str:
    """Mask credentials embedded in a string (``Bearer abc…``, ``https://u:p@host``)."""
    # Both patterns need whitespace or an "@": a few substring scans spare most regex runs.
    if len(value) < 8 or not (
        "@" in value or " " in value or "\t" in value or "\n" in value
    ):
        return value
    return _SECRET_VALUE.sub(_mask, value)


def _mask(match: re.Match[str]) -> str:
    text = match.group(0)
    scheme, _, _ = text.partition(" ")
    return f"{scheme} {REDACTED}" if " " in text else REDACTED


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
    if is_secret_key(key):
        return REDACTED
    if isinstance(value, str):
        new = scrub_value(value)
        return value if new == value else new
    return value


def scrub_event_dict(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: scrub the event's key-values (and the event text) in place."""
    for key, value in event_dict.items():
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str and len(value) >= 8:
            new = scrub_value(value)
            if new != value:
                event_dict[key] = new
    return event_dict


class ScrubbingSpanExporter(SpanExporter):
    """Wraps a span exporter; spans carrying secrets are copied with scrubbed attributes.

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
    if attributes is None and all(a is b for a, b in zip(events, span.events, strict=True)):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes if attributes is not None else span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
