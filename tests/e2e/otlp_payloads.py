"""OTLP requests built with the official opentelemetry-proto classes, valid or deliberately not.

Valid requests (`trace_request`, `log_request`, `metric_request`) carry a marker attribute so a
test can find them downstream. The hostile ones are made at the wire level where the Python
protobuf runtime would refuse to build them: `nested_attribute_request` writes an attribute
value nested `depth` levels deep (kvlist or array) without recursion, `truncated` cuts a valid
message mid-field, `gzip_bomb` compresses a huge run of zeros into a small body.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from google.protobuf.message import Message  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

Signal = Literal["traces", "metrics", "logs"]
Nesting = Literal["kvlist", "array"]

#: OTLP/HTTP paths and gRPC methods per signal.
HTTP_PATHS: dict[Signal, str] = {
    "traces": "/v1/traces",
    "metrics": "/v1/metrics",
    "logs": "/v1/logs",
}
GRPC_METHODS: dict[Signal, str] = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
MARKER_KEY = "test.marker"
SCOPE = InstrumentationScope(name="chenu.tests.raw")


def any_value(value: Any) -> AnyValue:
    """The AnyValue for a Python value (str, bool, int, float, bytes, list, dict)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def _resource(service: str) -> Resource:
    return Resource(attributes=key_values({"service.name": service}))


def new_trace_id() -> bytes:
    return secrets.token_bytes(16)


def trace_request(
    service: str,
    marker: str,
    *,
    name: str = "raw-span",
    attributes: Mapping[str, Any] | None = None,
    events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    error: str | None = None,
    trace_id: bytes | None = None,
) -> ExportTraceServiceRequest:
    """One SERVER span carrying `marker` (and `attributes`, `events` as (name, attrs), and an
    error status with `error` as its message)."""
    now = time.time_ns()
    span = Span(
        trace_id=trace_id or new_trace_id(),
        span_id=secrets.token_bytes(8),
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - 1_000_000,
        end_time_unix_nano=now,
        attributes=key_values({MARKER_KEY: marker, **(attributes or {})}),
        events=[
            Span.Event(time_unix_nano=now, name=event, attributes=key_values(attrs))
            for event, attrs in events
        ],
    )
    if error is not None:
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = error
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_resource(service),
                scope_spans=[ScopeSpans(scope=SCOPE, spans=[span])],
            )
        ]
    )


def log_request(
    service: str,
    marker: str,
    *,
    body: Any = "raw log record",
    attributes: Mapping[str, Any] | None = None,
) -> ExportLogsServiceRequest:
    """One INFO log record carrying `marker`."""
    now = time.time_ns()
    record = LogRecord(
        time_unix_nano=now,
        observed_time_unix_nano=now,
        severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
        severity_text="INFO",
        body=any_value(body),
        attributes=key_values({MARKER_KEY: marker, **(attributes or {})}),
    )
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=_resource(service),
                scope_logs=[ScopeLogs(scope=SCOPE, log_records=[record])],
            )
        ]
    )


def metric_request(
    service: str,
    marker: str,
    *,
    name: str = "raw.requests",
    attributes: Mapping[str, Any] | None = None,
) -> ExportMetricsServiceRequest:
    """One cumulative monotonic sum point carrying `marker`."""
    now = time.time_ns()
    point = NumberDataPoint(
        start_time_unix_nano=now - 1_000_000_000,
        time_unix_nano=now,
        as_int=1,
        attributes=key_values({MARKER_KEY: marker, **(attributes or {})}),
    )
    metric = Metric(
        name=name,
        unit="1",
        sum=Sum(
            data_points=[point],
            aggregation_temporality=AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE,
            is_monotonic=True,
        ),
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=_resource(service),
                scope_metrics=[ScopeMetrics(scope=SCOPE, metrics=[metric])],
            )
        ]
    )


def request_for(signal: Signal, service: str, marker: str) -> bytes:
    """A small valid serialized request of `signal` carrying `marker`."""
    request: Message
    if signal == "traces":
        request = trace_request(service, marker)
    elif signal == "metrics":
        request = metric_request(service, marker)
    else:
        request = log_request(service, marker)
    return bytes(request.SerializeToString())


_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def otlp_json(message: Message) -> bytes:
    """`message` as OTLP/JSON: protobuf's JSON mapping, except that trace and span ids are hex
    (not base64) and enums are numbers, as the OTLP specification requires."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: base64.b64decode(value).hex()
                if key in _ID_FIELDS and isinstance(value, str)
                else convert(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [convert(value) for value in node]
        return node

    return json.dumps(convert(MessageToDict(message, use_integers_for_enums=True))).encode()


# --- wire level -------------------------------------------------------------------------------

_LEN = 2  # protobuf wire type of length-delimited fields


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field_number: int, payload_size: int) -> bytes:
    """Tag and length of a length-delimited field whose payload (`payload_size` bytes) follows."""
    return varint(field_number << 3 | _LEN) + varint(payload_size)


def nested_value(depth: int, nesting: Nesting) -> bytes:
    """A serialized AnyValue nested `depth` levels (kvlist: {"k": {"k": ...}}, array: [[...]]).

    Built outside-in from precomputed sizes, so any depth costs linear time and no recursion.
    """
    core = bytes(AnyValue(string_value="bottom").SerializeToString())
    headers: list[bytes] = []
    size = len(core)
    for _ in range(depth):
        if nesting == "array":
            # AnyValue{array_value(5): ArrayValue{values(1): <inner AnyValue>}}
            inner = length_delimited(1, size)
            header = length_delimited(5, len(inner) + size) + inner
        else:
            # AnyValue{kvlist_value(6): KeyValueList{values(1): KeyValue{key(1)="k", value(2)}}}
            key_value = b"\x0a\x01k" + length_delimited(2, size)
            key_values_list = length_delimited(1, len(key_value) + size) + key_value
            header = length_delimited(6, len(key_values_list) + size) + key_values_list
        headers.append(header)
        size += len(header)
    return b"".join(reversed(headers)) + core


def nested_attribute_request(depth: int, nesting: Nesting, marker: str) -> bytes:
    """A trace request whose span has an attribute ``deep`` nested `depth` levels."""
    request = trace_request("hostile-client", marker)
    span_bytes = bytes(request.resource_spans[0].scope_spans[0].spans[0].SerializeToString())
    value = nested_value(depth, nesting)
    key_value = b"\x0a\x04deep" + length_delimited(2, len(value)) + value
    # Repeated fields may be appended: Span.attributes is field 9.
    span_bytes += length_delimited(9, len(key_value)) + key_value
    scope_spans = bytes(ScopeSpans(scope=SCOPE).SerializeToString())
    scope_spans += length_delimited(2, len(span_bytes)) + span_bytes
    resource_spans = bytes(ResourceSpans(resource=_resource("hostile-client")).SerializeToString())
    resource_spans += length_delimited(2, len(scope_spans)) + scope_spans
    return length_delimited(1, len(resource_spans)) + resource_spans


def nested_json_request(depth: int, nesting: Nesting, marker: str) -> bytes:
    """The OTLP/JSON twin of `nested_attribute_request`."""
    if nesting == "array":
        prefix, suffix = '{"arrayValue":{"values":[', "]}}"
    else:
        prefix, suffix = '{"kvlistValue":{"values":[{"key":"k","value":', "}]}}"
    value = prefix * depth + '{"stringValue":"bottom"}' + suffix * depth
    now = time.time_ns()
    span = (
        f'{{"traceId":"{secrets.token_hex(16)}","spanId":"{secrets.token_hex(8)}",'
        f'"name":"raw-span","kind":2,"startTimeUnixNano":"{now - 1_000_000}",'
        f'"endTimeUnixNano":"{now}","attributes":['
        f'{{"key":"{MARKER_KEY}","value":{{"stringValue":"{marker}"}}}},'
        f'{{"key":"deep","value":{value}}}]}}'
    )
    return (
        '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
        '{"stringValue":"hostile-client"}}]},"scopeSpans":[{"scope":{"name":"raw"},'
        f'"spans":[{span}]}}]}}]}}'
    ).encode()


def wide_span_request(attribute_count: int, marker: str) -> ExportTraceServiceRequest:
    """One span with `attribute_count` distinct string attributes (plus the marker)."""
    return trace_request(
        "hostile-client",
        marker,
        attributes={f"attr.{i:05d}": f"value-{i}" for i in range(attribute_count)},
    )


def truncated(payload: bytes) -> bytes:
    """`payload` cut in the middle, so a length prefix promises bytes that never come."""
    return payload[: max(1, len(payload) // 2)]


def gzip_bomb(decompressed_bytes: int, chunk: int = 1 << 20) -> bytes:
    """A gzip stream of `decompressed_bytes` zero bytes (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    zeros = bytes(chunk)
    parts: list[bytes] = []
    left = decompressed_bytes
    while left > 0:
        parts.append(compressor.compress(zeros[: min(chunk, left)]))
        left -= chunk
    parts.append(compressor.flush())
    return b"".join(parts)
