"""OTLP protobuf wire encoding written directly, without building protobuf objects.

The SDK's official encoder (``opentelemetry-exporter-otlp-proto-common``) builds one protobuf
object per span, event, link, attribute and value, then serialises the tree; in Python that
object building is most of the export cost. This module writes the same bytes straight from
the SDK's objects: varints, fixed-width numbers and length-delimited fields in field-number
order, the encoded Resource and InstrumentationScope reused across spans and batches.

It promises the *same message* as the official encoder of the pinned release (1.45.1): parsed
with the official protobuf classes, ``encode_spans(spans)`` equals
``ExportTraceServiceRequest.FromString(encode_spans_official(spans).SerializeToString())``,
field for field, including what the official encoder leaves out (span ``flags`` carry only the
``HAS_IS_REMOTE``/``IS_REMOTE`` bits, links carry no ``trace_state``, a resource no dropped
count). Because fields are written in field-number order, the bytes are identical too.

    from chenu_otel.otlp_wire import encode_spans, encode_logs
    body = encode_spans(readable_spans)      # ExportTraceServiceRequest bytes
    body = encode_logs(readable_log_records)  # ExportLogsServiceRequest bytes

Metrics live in `chenu_otel.otlp_wire_metrics`; SDK exporters in
`chenu_otel.otlp_wire_exporters`.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind

__all__ = [
    "encode_attributes",
    "encode_logs",
    "encode_resource",
    "encode_scope",
    "encode_spans",
    "encode_value",
    "length_delimited",
    "varint",
]

_logger = logging.getLogger(__name__)

_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64 = 1 << 64

# Every varint below 2**14 (all lengths of small messages) precomputed: one list index each.
_SMALL_VARINTS: tuple[bytes, ...] = tuple(
    bytes((n,)) if n < 0x80 else bytes(((n & 0x7F) | 0x80, n >> 7)) for n in range(1 << 14)
)


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative int; a negative one is taken as its 64-bit two's
    complement (10 bytes), as protobuf does for int32/int64 fields."""
    if 0 <= value < 16384:
        return _SMALL_VARINTS[value]
    if value < 0:
        value += _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    """One length-delimited field: ``tag``, the payload's length as a varint, the payload."""
    size = len(payload)
    return tag + (_SMALL_VARINTS[size] if size < 16384 else varint(size)) + payload


_ld = length_delimited


class _Cache:
    """A small identity cache for long-lived immutable objects (resources, scopes): the
    object is kept alive with its bytes so its id cannot be reused while cached."""

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int) -> None:
        self._entries: dict[int, tuple[object, bytes]] = {}
        self._limit = limit

    def get(self, obj: object, encode: Callable[[Any], bytes]) -> bytes:
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0] is obj:
            return entry[1]
        encoded = encode(obj)
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[id(obj)] = (obj, encoded)
        return encoded


# --- AnyValue, KeyValue, attributes -----------------------------------------------------------

# Encoded KeyValue.key fields by attribute key; bounded because keys come from user code.
_KEY_FIELDS: dict[str, bytes] = {}
_KEY_FIELDS_LIMIT = 4096


def _key_field(key: str) -> bytes:
    encoded = _KEY_FIELDS.get(key)
    if encoded is None:
        raw = key.encode()
        encoded = _ld(b"\x0a", raw) if raw else b""
        if len(_KEY_FIELDS) >= _KEY_FIELDS_LIMIT:
            _KEY_FIELDS.clear()
        _KEY_FIELDS[key] = encoded
    return encoded


def encode_value(value: Any) -> bytes:
    """The fields of one ``AnyValue`` message for a Python value, with the official
    encoder's type rules: None → empty, bool, str, int (int64), float, bytes, any other
    sequence → array, mapping → kvlist (keys made str); anything else raises ValueError."""
    kind = type(value)
    if kind is str:
        raw: bytes = value.encode()
        return _ld(b"\x0a", raw)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if 0 <= value < 16384:
            small: bytes = _SMALL_VARINTS[value]
            return b"\x18" + small
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"Value out of range: {value}")
        return b"\x18" + varint(value)
    if kind is float:
        return b"!" + _pack_double(value)
    return _encode_other_value(value)


def _encode_other_value(value: Any) -> bytes:
    # Subclasses and containers, in the official encoder's order of isinstance checks.
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _ld(b"\x0a", value.encode())
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"Value out of range: {value}")
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"!" + _pack_double(value)
    if isinstance(value, bytes):
        return _ld(b":", value)
    if isinstance(value, Sequence):
        return _ld(b"*", b"".join([_ld(b"\x0a", encode_value(item)) for item in value]))
    if isinstance(value, Mapping):
        return _ld(
            b"2",
            b"".join([_ld(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]),
        )
    raise ValueError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _key_field(key) + _ld(b"\x12", encode_value(value))


# KeyValue.value header for a short string: tag 2, AnyValue length, AnyValue.string_value tag.
_SHORT_STRING = tuple(b"\x12" + bytes((size + 2,)) + b"\x0a" for size in range(126))


# Encoded KeyValues with a string value, by key then value: most attribute values repeat
# (methods, routes, schemes). Bounded per key, so a high-cardinality key (request ids) stops
# being cached once full instead of churning.
_STRING_KEY_VALUES: dict[str, dict[str, bytes]] = {}
_VALUES_PER_KEY = 128
_STRING_KEYS_LIMIT = 1024


def _string_fields(key: str) -> dict[str, bytes]:
    if len(_STRING_KEY_VALUES) >= _STRING_KEYS_LIMIT:
        _STRING_KEY_VALUES.clear()
    by_value: dict[str, bytes] = {}
    _STRING_KEY_VALUES[key] = by_value
    return by_value


def _string_key_value(key: str, value: str, by_value: dict[str, bytes]) -> bytes:
    raw = value.encode()
    size = len(raw)
    if size < 126:  # AnyValue and its string field both fit a 1-byte length
        payload = _key_field(key) + _SHORT_STRING[size] + _SMALL_VARINTS[size] + raw
    else:
        payload = _key_value(key, value)
    if len(by_value) < _VALUES_PER_KEY:
        by_value[value] = payload
    return payload


def encode_attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """Each attribute as one repeated ``KeyValue`` field with ``tag``. An attribute whose
    value cannot be encoded is left out and logged, as the official encoder does."""
    if not attributes:
        return []
    if type(attributes) is not dict and hasattr(attributes, "copy"):
        # The SDK's BoundedAttributes (behind a MappingProxy) iterates in Python; its copy()
        # is a plain dict.
        attributes = attributes.copy()
    out: list[bytes] = []
    append = out.append
    string_fields = _STRING_KEY_VALUES
    small = _SMALL_VARINTS
    for key, value in attributes.items():
        try:
            if type(value) is str:
                by_value = string_fields.get(key)
                if by_value is None:
                    by_value = _string_fields(key)
                cached = by_value.get(value)
                payload = cached if cached is not None else _string_key_value(key, value, by_value)
            else:
                payload = _key_value(key, value)
        except Exception as error:
            _logger.exception("Failed to encode key %s: %s", key, error)
            continue
        size = len(payload)
        append(tag + small[size] + payload if size < 16384 else _ld(tag, payload))
    return out


def encode_resource(resource: Resource) -> bytes:
    """The fields of a ``Resource`` message (attributes only, as the official encoder)."""
    return b"".join(encode_attributes(b"\x0a", resource.attributes))


def encode_scope(scope: InstrumentationScope | None) -> bytes:
    """The fields of an ``InstrumentationScope`` message (name, version, attributes)."""
    if scope is None:
        return b""
    parts = []
    if scope.name:
        parts.append(_ld(b"\x0a", scope.name.encode()))
    if scope.version:
        parts.append(_ld(b"\x12", scope.version.encode()))
    parts.extend(encode_attributes(b"\x1a", scope.attributes))
    return b"".join(parts)


# `resource` / `scope` fields (tag 1 in every Resource*/Scope* message), cached by identity.
_RESOURCE_FIELDS = _Cache(64)
_SCOPE_FIELDS = _Cache(1024)


def _resource_field(resource: Resource) -> bytes:
    return _ld(b"\x0a", encode_resource(resource))


def _scope_field(scope: InstrumentationScope | None) -> bytes:
    return _ld(b"\x0a", encode_scope(scope))


# --- grouping by resource and scope -------------------------------------------------------------


class _Item(Protocol):
    @property
    def resource(self) -> Resource: ...

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None: ...


ItemT = TypeVar("ItemT", bound=_Item)


def _group(
    items: Iterable[ItemT], encode: Callable[[ItemT], bytes]
) -> list[tuple[Resource, list[tuple[InstrumentationScope | None, list[bytes]]]]]:
    """Items grouped as the official encoder does (equal resources, then equal scopes, in
    order of first appearance), each already encoded. Identity is tried before equality,
    so the common case (one resource, few scopes) costs two dict look-ups per item."""
    groups: list[tuple[Resource, list[tuple[InstrumentationScope | None, list[bytes]]]]] = []
    resource_by_id: dict[int, tuple[dict[int, list[bytes]], list[Any]]] = {}
    for item in items:
        resource = item.resource
        entry = resource_by_id.get(id(resource))
        if entry is None:
            entry = _canonical_resource(resource, resource_by_id, groups)
        scope = item.instrumentation_scope or None
        encoded = entry[0].get(id(scope))
        if encoded is None:
            encoded = _canonical_scope(scope, entry)
        encoded.append(encode(item))
    return groups


def _canonical_resource(
    resource: Resource,
    resource_by_id: dict[int, tuple[dict[int, list[bytes]], list[Any]]],
    groups: list[tuple[Resource, list[tuple[InstrumentationScope | None, list[bytes]]]]],
) -> tuple[dict[int, list[bytes]], list[Any]]:
    for group_resource, _scopes in groups:
        if group_resource == resource:
            entry = resource_by_id[id(group_resource)]
            break
    else:
        scopes: list[Any] = []
        groups.append((resource, scopes))
        entry = ({}, scopes)
    # The ids stay valid: every resource seen is referenced by an item of this batch.
    resource_by_id[id(resource)] = entry
    return entry


def _canonical_scope(
    scope: InstrumentationScope | None, entry: tuple[dict[int, list[bytes]], list[Any]]
) -> list[bytes]:
    scope_by_id, scopes = entry
    for known, known_encoded in scopes:
        if known == scope:
            encoded: list[bytes] = known_encoded
            break
    else:
        encoded = []
        scopes.append((scope, encoded))
    scope_by_id[id(scope)] = encoded
    return encoded


def _request(
    groups: list[tuple[Resource, list[tuple[InstrumentationScope | None, list[bytes]]]]],
) -> bytes:
    """Export*ServiceRequest bytes: the resource_*, scope_* and item fields are tag 1, 2, 2
    with schema_url tag 3 in all three signals."""
    resources = []
    for resource, scopes in groups:
        parts = [_RESOURCE_FIELDS.get(resource, _resource_field)]
        for scope, encoded in scopes:
            scope_parts = [_SCOPE_FIELDS.get(scope, _scope_field)]
            scope_parts.extend([_ld(b"\x12", item) for item in encoded])
            schema_url = scope.schema_url if scope is not None else None
            if schema_url:
                scope_parts.append(_ld(b"\x1a", schema_url.encode()))
            parts.append(_ld(b"\x12", b"".join(scope_parts)))
        if resource.schema_url:
            parts.append(_ld(b"\x1a", resource.schema_url.encode()))
        resources.append(_ld(b"\x0a", b"".join(parts)))
    return b"".join(resources)


# --- traces ---------------------------------------------------------------------------------

_SPAN_KIND = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
# Span.flags (tag 16, fixed32) / Link.flags (tag 6): CONTEXT_HAS_IS_REMOTE, plus IS_REMOTE.
_SPAN_FLAGS_LOCAL = b"\x85\x01" + _pack_fixed32(0x100)
_SPAN_FLAGS_REMOTE = b"\x85\x01" + _pack_fixed32(0x300)
_LINK_FLAGS_LOCAL = b"\x35" + _pack_fixed32(0x100)
_LINK_FLAGS_REMOTE = b"\x35" + _pack_fixed32(0x300)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """``ExportTraceServiceRequest`` bytes for a batch of SDK spans."""
    return _request(_group(spans, _encode_span))


def _encode_span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    if context is None:
        raise ValueError(f"span {span.name!r} has no span context")
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
    ]
    if context.trace_state:
        trace_state = ",".join([f"{key}={value}" for key, value in context.trace_state.items()])
        parts.append(_ld(b"\x1a", trace_state.encode()))
    parent = span.parent
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if span.name:
        parts.append(_ld(b"\x2a", span.name.encode()))
    parts.append(_SPAN_KIND[span.kind])
    if span.start_time:
        parts.append(b"\x39" + _pack_fixed64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _pack_fixed64(span.end_time))
    parts += encode_attributes(b"\x4a", span.attributes)
    if span.dropped_attributes:
        parts.append(b"\x50" + varint(span.dropped_attributes))
    for event in span.events:
        event_parts = []
        if event.timestamp:
            event_parts.append(b"\x09" + _pack_fixed64(event.timestamp))
        if event.name:
            event_parts.append(_ld(b"\x12", event.name.encode()))
        event_parts += encode_attributes(b"\x1a", event.attributes)
        if event.dropped_attributes:
            event_parts.append(b"\x20" + varint(event.dropped_attributes))
        parts.append(_ld(b"\x5a", b"".join(event_parts)))
    if span.dropped_events:
        parts.append(b"\x60" + varint(span.dropped_events))
    for link in span.links:
        parts.append(_ld(b"\x6a", _encode_link(link)))
    if span.dropped_links:
        parts.append(b"\x70" + varint(span.dropped_links))
    status = span.status
    if status is not None:
        status_parts = []
        if status.description:
            status_parts.append(_ld(b"\x12", status.description.encode()))
        if status.status_code.value:
            status_parts.append(b"\x18" + varint(status.status_code.value))
        parts.append(_ld(b"\x7a", b"".join(status_parts)))
    remote = parent is not None and parent.is_remote
    parts.append(_SPAN_FLAGS_REMOTE if remote else _SPAN_FLAGS_LOCAL)
    return b"".join(parts)


def _encode_link(link: Link) -> bytes:
    context: SpanContext = link.context
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
    ]
    parts += encode_attributes(b"\x22", link.attributes)
    if link.dropped_attributes:
        parts.append(b"\x28" + varint(link.dropped_attributes))
    parts.append(_LINK_FLAGS_REMOTE if context.is_remote else _LINK_FLAGS_LOCAL)
    return b"".join(parts)


# --- logs -----------------------------------------------------------------------------------


def encode_logs(batch: Sequence[ReadableLogRecord]) -> bytes:
    """``ExportLogsServiceRequest`` bytes for a batch of SDK log records (the
    ``ReadableLogRecord``/``ReadWriteLogRecord`` the log processors hand to exporters)."""
    return _request(_group(batch, _encode_log_record))


def _encode_log_record(readable: ReadableLogRecord) -> bytes:
    record = readable.log_record
    parts = []
    if record.timestamp:
        parts.append(b"\x09" + _pack_fixed64(record.timestamp))
    severity = getattr(record.severity_number, "value", None)
    if severity:
        parts.append(b"\x10" + varint(severity))
    if record.severity_text:
        parts.append(_ld(b"\x1a", record.severity_text.encode()))
    # The body is always present, an empty AnyValue when there is none (as the official).
    parts.append(_ld(b"\x2a", encode_value(record.body)))
    parts += encode_attributes(b"\x32", record.attributes)
    if readable.dropped_attributes:
        parts.append(b"\x38" + varint(readable.dropped_attributes))
    flags = int(record.trace_flags) if record.trace_flags is not None else 0
    if flags:
        parts.append(b"\x45" + _pack_fixed32(flags))
    if record.trace_id:
        parts.append(b"\x4a\x10" + record.trace_id.to_bytes(16, "big"))
    if record.span_id:
        parts.append(b"\x52\x08" + record.span_id.to_bytes(8, "big"))
    if record.observed_timestamp:
        parts.append(b"\x59" + _pack_fixed64(record.observed_timestamp))
    if record.event_name:
        parts.append(_ld(b"\x62", record.event_name.encode()))
    return b"".join(parts)
