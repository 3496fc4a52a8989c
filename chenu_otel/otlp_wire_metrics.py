"""OTLP metrics written directly to the protobuf wire format (see `chenu_otel.otlp_wire`).

``encode_metrics(metrics_data)`` returns ``ExportMetricsServiceRequest`` bytes equal, as a
message and byte for byte, to the official encoder's (``opentelemetry-exporter-otlp-proto-
common`` 1.45.1) for every kind of point the SDK produces: sums, gauges, explicit-bucket and
exponential histograms, with exemplars (value, time, filtered attributes, span and trace id).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Buckets as SdkBuckets,
)
from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from chenu_otel.otlp_wire import (
    encode_attributes,
    encode_resource,
    encode_scope,
    length_delimited,
    varint,
)

__all__ = ["MetricEncodingError", "encode_metrics"]

_logger = logging.getLogger(__name__)

_ld = length_delimited
_pack_fixed64 = struct.Struct("<Q").pack
_pack_sfixed64 = struct.Struct("<q").pack
_pack_double = struct.Struct("<d").pack


class MetricEncodingError(Exception):
    """A metric could not be encoded; carries the metric (as the official
    ``EncodingException`` does) so its name can be logged."""

    def __init__(self, original_exception: Exception, metric: Metric) -> None:
        super().__init__(f"{metric.name}: {original_exception}")
        self.original_exception = original_exception
        self.metric = metric


def encode_metrics(data: MetricsData) -> bytes:
    """``ExportMetricsServiceRequest`` bytes for what a metric reader collected.

    Like the official encoder, resources and scopes are keyed by equality, a later equal
    one replacing an earlier one (the SDK never produces duplicates)."""
    by_resource: dict[Resource, dict[InstrumentationScope, bytes]] = {}
    for resource_metrics in data.resource_metrics:
        scopes: dict[InstrumentationScope, bytes] = {}
        by_resource[resource_metrics.resource] = scopes
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            parts = [_ld(b"\x0a", encode_scope(scope))]
            for metric in scope_metrics.metrics:
                try:
                    parts.append(_ld(b"\x12", _encode_metric(metric)))
                except Exception as error:
                    raise MetricEncodingError(error, metric) from None
            if scope.schema_url:
                parts.append(_ld(b"\x1a", scope.schema_url.encode()))
            scopes[scope] = b"".join(parts)
    out = []
    for resource, scopes in by_resource.items():
        parts = [_ld(b"\x0a", encode_resource(resource))]
        parts.extend([_ld(b"\x12", scope) for scope in scopes.values()])
        if resource.schema_url:
            parts.append(_ld(b"\x1a", resource.schema_url.encode()))
        out.append(_ld(b"\x0a", b"".join(parts)))
    return b"".join(out)


def _encode_metric(metric: Metric) -> bytes:
    parts = []
    if metric.name:
        parts.append(_ld(b"\x0a", metric.name.encode()))
    if metric.description:
        parts.append(_ld(b"\x12", metric.description.encode()))
    if metric.unit:
        parts.append(_ld(b"\x1a", metric.unit.encode()))
    data = metric.data
    # A metric without points carries no data field at all (as the official encoder).
    if isinstance(data, Gauge):
        if data.data_points:
            parts.append(_ld(b"\x2a", b"".join(_number_points(data.data_points, False))))
    elif isinstance(data, Histogram):
        if data.data_points:
            points = [_ld(b"\x0a", _histogram_point(p)) for p in data.data_points]
            parts.append(_ld(b"\x4a", b"".join(points) + _temporality(data)))
    elif isinstance(data, Sum):
        if data.data_points:
            body = b"".join(_number_points(data.data_points, True)) + _temporality(data)
            if data.is_monotonic:
                body += b"\x18\x01"
            parts.append(_ld(b"\x3a", body))
    elif isinstance(data, ExponentialHistogram):
        if data.data_points:
            points = [_ld(b"\x0a", _exponential_point(p)) for p in data.data_points]
            parts.append(_ld(b"\x52", b"".join(points) + _temporality(data)))
    else:
        _logger.warning("unsupported data type %s", data.__class__.__name__)
    return b"".join(parts)


def _temporality(data: Sum | Histogram | ExponentialHistogram) -> bytes:
    value = int(data.aggregation_temporality)
    return b"\x10" + varint(value) if value else b""


def _number_points(points: Sequence[NumberDataPoint], with_start: bool) -> list[bytes]:
    out = []
    for point in points:
        parts = []
        if with_start and point.start_time_unix_nano:
            parts.append(b"\x11" + _pack_fixed64(point.start_time_unix_nano))
        if point.time_unix_nano:
            parts.append(b"\x19" + _pack_fixed64(point.time_unix_nano))
        value = point.value
        is_int = isinstance(value, int)
        if not is_int:
            parts.append(b"\x21" + _pack_double(value))
        parts.extend(_exemplars(b"\x2a", point.exemplars))
        if is_int:
            parts.append(b"\x31" + _pack_sfixed64(value))
        parts.extend(encode_attributes(b"\x3a", point.attributes))
        out.append(_ld(b"\x0a", b"".join(parts)))
    return out


def _times_count_sum(point: HistogramDataPoint | ExponentialHistogramDataPoint) -> list[bytes]:
    """Fields 2-5, the same in both histogram point messages."""
    parts = []
    if point.start_time_unix_nano:
        parts.append(b"\x11" + _pack_fixed64(point.start_time_unix_nano))
    if point.time_unix_nano:
        parts.append(b"\x19" + _pack_fixed64(point.time_unix_nano))
    if point.count:
        parts.append(b"\x21" + _pack_fixed64(point.count))
    if point.sum is not None:
        parts.append(b"\x29" + _pack_double(point.sum))
    return parts


def _histogram_point(point: HistogramDataPoint) -> bytes:
    parts = _times_count_sum(point)
    if point.bucket_counts:
        counts = point.bucket_counts
        parts.append(_ld(b"\x32", struct.pack(f"<{len(counts)}Q", *counts)))
    if point.explicit_bounds:
        bounds = point.explicit_bounds
        parts.append(_ld(b"\x3a", struct.pack(f"<{len(bounds)}d", *bounds)))
    parts.extend(_exemplars(b"\x42", point.exemplars))
    parts.extend(encode_attributes(b"\x4a", point.attributes))
    if point.min is not None:
        parts.append(b"\x59" + _pack_double(point.min))
    if point.max is not None:
        parts.append(b"\x61" + _pack_double(point.max))
    return b"".join(parts)


def _zigzag32(value: int) -> int:
    return (value << 1) ^ (value >> 31)


def _buckets(tag: bytes, buckets: SdkBuckets | None) -> bytes:
    # The official encoder sends a side only when it has bucket counts.
    if buckets is None or not buckets.bucket_counts:
        return b""
    parts = []
    if buckets.offset:
        parts.append(b"\x08" + varint(_zigzag32(buckets.offset)))
    parts.append(_ld(b"\x12", b"".join([varint(count) for count in buckets.bucket_counts])))
    return _ld(tag, b"".join(parts))


def _exponential_point(point: ExponentialHistogramDataPoint) -> bytes:
    parts = encode_attributes(b"\x0a", point.attributes)
    parts += _times_count_sum(point)
    if point.scale:
        parts.append(b"\x30" + varint(_zigzag32(point.scale)))
    if point.zero_count:
        parts.append(b"\x39" + _pack_fixed64(point.zero_count))
    parts.append(_buckets(b"\x42", point.positive))
    parts.append(_buckets(b"\x4a", point.negative))
    if point.flags:
        parts.append(b"\x50" + varint(point.flags))
    parts.extend(_exemplars(b"\x5a", point.exemplars))
    if point.min is not None:
        parts.append(b"\x61" + _pack_double(point.min))
    if point.max is not None:
        parts.append(b"\x69" + _pack_double(point.max))
    return b"".join(parts)


def _exemplars(tag: bytes, exemplars: Sequence[Any]) -> list[bytes]:
    out = []
    for exemplar in exemplars:
        parts = []
        if exemplar.time_unix_nano:
            parts.append(b"\x11" + _pack_fixed64(exemplar.time_unix_nano))
        value = exemplar.value
        if isinstance(value, float):
            parts.append(b"\x19" + _pack_double(value))
        elif not isinstance(value, int):
            raise ValueError("Exemplar value must be an int or float")
        if exemplar.span_id is not None and exemplar.trace_id is not None:
            parts.append(b"\x22\x08" + exemplar.span_id.to_bytes(8, "big"))
            parts.append(b"\x2a\x10" + exemplar.trace_id.to_bytes(16, "big"))
        if not isinstance(value, float):
            parts.append(b"\x31" + _pack_sfixed64(value))
        parts.extend(encode_attributes(b"\x3a", exemplar.filtered_attributes))
        out.append(_ld(tag, b"".join(parts)))
    return out
