"""The official OTLP exporters with the encoding step replaced by `chenu_otel.otlp_wire`.

Each class here *is* the official exporter of ``opentelemetry-exporter-otlp-proto-http`` /
``-grpc`` (same constructor, same ``OTEL_EXPORTER_OTLP_*`` variables, same session, retry,
back-off, ``Retry-After``/``RetryInfo``, compression, request-size limit, timeout and
self-metrics) and differs only in how a batch becomes bytes: written directly to the wire
instead of built as protobuf objects and serialised. What reaches the receiver is the same
message, byte for byte (see `chenu_otel.otlp_wire`).

    from chenu_otel.otlp_wire_exporters import HttpWireSpanExporter
    provider.add_span_processor(BatchSpanProcessor(HttpWireSpanExporter(endpoint=url)))

The official exporters offer no public encoding hook, so this module relies on these
private members, checked against release 1.45.1 (`PRIVATE_MEMBERS`). Every constructor checks
them: when an upgrade removed one, the exporter logs a warning naming it and works exactly as
the official one (official encoding), so telemetry keeps flowing; `check_compatible()` raises
instead, for tests:

- HTTP (``proto.http``): ``_client`` (the retrying ``_OTLPHTTPClient``; its ``export(bytes)``
  returns an ``_ExportResult``), ``_metrics`` (the exporter's own metrics), ``_shutdown``,
  ``_max_request_size``; for metrics also ``_max_export_batch_size``.
- gRPC (``proto.grpc``): ``OTLPExporterMixin._translate_data`` (data → request) and
  ``_initialize_channel_and_stub`` (its ``_client`` is replaced by a stub that sends bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
    OTLPLogExporter as OfficialGrpcLogExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.exporter import OTLPExporterMixin
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as OfficialGrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as OfficialGrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError
from opentelemetry.exporter.otlp.proto.http._log_exporter import (
    OTLPLogExporter as OfficialHttpLogExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as OfficialHttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as OfficialHttpSpanExporter,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from chenu_otel.otlp_wire import encode_logs, encode_spans
from chenu_otel.otlp_wire_metrics import encode_metrics

__all__ = [
    "PRIVATE_MEMBERS",
    "GrpcWireLogExporter",
    "GrpcWireMetricExporter",
    "GrpcWireSpanExporter",
    "HttpWireLogExporter",
    "HttpWireMetricExporter",
    "HttpWireSpanExporter",
    "check_compatible",
]

_logger = logging.getLogger(__name__)

# The official exporters' private members this module uses: attributes their __init__ sets
# (checked on the instance) and methods of the gRPC base class (checked on that class).
PRIVATE_MEMBERS: dict[type, tuple[str, ...]] = {
    OfficialHttpSpanExporter: ("_client", "_metrics", "_shutdown", "_max_request_size"),
    OfficialHttpLogExporter: ("_client", "_metrics", "_shutdown", "_max_request_size"),
    OfficialHttpMetricExporter: (
        "_client",
        "_metrics",
        "_shutdown",
        "_max_request_size",
        "_max_export_batch_size",
    ),
    OTLPExporterMixin: ("_translate_data", "_initialize_channel_and_stub", "_channel", "_client"),
}
_GRPC_METHODS = ("_translate_data", "_initialize_channel_and_stub")


def check_compatible(exporter: object) -> None:
    """Raise RuntimeError naming the members if `exporter`'s official base class lacks one
    this module relies on (an upgrade of the official exporters changed them)."""
    for official, names in PRIVATE_MEMBERS.items():
        if not isinstance(exporter, official):
            continue
        missing = [
            name
            for name in names
            if not hasattr(official if name in _GRPC_METHODS else exporter, name)
        ]
        if missing:
            raise RuntimeError(
                f"{type(exporter).__name__}: the official {official.__module__} exporter no "
                f"longer has {', '.join(missing)}; chenu_otel.otlp_wire_exporters was checked "
                "against 1.45.1, use the official exporter instead"
            )


def _wire_ready(exporter: object) -> bool:
    """`check_compatible` as a warning: False means the official path runs unchanged."""
    try:
        check_compatible(exporter)
    except RuntimeError as error:
        _logger.warning("%s; this exporter falls back to the official encoding", error)
        return False
    return True


# --- OTLP/HTTP ------------------------------------------------------------------------------


def _post(exporter: Any, count: int, encode: Callable[[], bytes], kind: str) -> bool:
    """What the official HTTP exporter's export() does after encoding, with our bytes:
    self-metrics, size limit, then its retrying client."""
    with exporter._metrics.export_operation(count) as result:
        try:
            body = encode()
        except Exception as error:
            _logger.error("Failed to encode %s batch: %s", kind, error)
            result.error = error
            return False
        limit = exporter._max_request_size
        if 0 < limit < len(body):
            _logger.warning(
                "Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                kind,
                len(body),
                limit,
            )
            result.error = RequestPayloadTooLargeError(
                f"Serialized {kind} request size {len(body)} bytes exceeds max_request_size "
                f"{limit} bytes."
            )
            return False
        outcome = exporter._client.export(body)
        if not outcome.success:
            result.error = outcome.error
            if outcome.status_code is not None:
                result.error_attrs = {"http.response.status_code": outcome.status_code}
            return False
    return True


class HttpWireSpanExporter(OfficialHttpSpanExporter):
    """The official OTLP/HTTP span exporter, encoding with `chenu_otel.otlp_wire`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wire = _wire_ready(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown or not self._wire:
            return super().export(spans)
        sent = _post(self, len(spans), lambda: encode_spans(spans), "span")
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE


class HttpWireLogExporter(OfficialHttpLogExporter):
    """The official OTLP/HTTP log exporter, encoding with `chenu_otel.otlp_wire`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wire = _wire_ready(self)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._shutdown or not self._wire:
            return super().export(batch)
        sent = _post(self, len(batch), lambda: encode_logs(batch), "logs")
        return LogRecordExportResult.SUCCESS if sent else LogRecordExportResult.FAILURE


def _count_points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points)
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )


class HttpWireMetricExporter(OfficialHttpMetricExporter):
    """The official OTLP/HTTP metric exporter, encoding with `chenu_otel.otlp_wire_metrics`.

    With ``max_export_batch_size`` set, the official path runs unchanged (it splits the
    encoded protobuf request)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wire = _wire_ready(self)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10000, **kwargs: Any
    ) -> MetricExportResult:
        if self._shutdown or not self._wire or self._max_export_batch_size is not None:
            return super().export(metrics_data, timeout_millis, **kwargs)
        sent = _post(
            self, _count_points(metrics_data), lambda: encode_metrics(metrics_data), "metrics"
        )
        return MetricExportResult.SUCCESS if sent else MetricExportResult.FAILURE


# --- OTLP/gRPC ------------------------------------------------------------------------------


class _BytesStub:
    """A service stub whose Export takes the request already serialised."""

    def __init__(self, channel: Any, method: str, response: Any) -> None:
        self.Export = channel.unary_unary(
            method,
            request_serializer=None,  # bytes go out as they are
            response_deserializer=response.FromString,
            _registered_method=True,
        )


class _BytesOverGrpc:
    """Mixin for an official gRPC exporter: its channel with a stub that sends the bytes
    `_wire_encode` writes. `_initialize_channel_and_stub` runs at the end of the official
    constructor and on every reconnect."""

    _method: str
    _response: Any
    _wire_encode: Callable[[Any], bytes]

    _wire = False

    def _initialize_channel_and_stub(self) -> None:
        official: Any = super()
        official._initialize_channel_and_stub()
        self._wire = _wire_ready(self)
        if self._wire:
            exporter: Any = self
            exporter._client = _BytesStub(exporter._channel, self._method, self._response)

    def _translate_data(self, data: Any) -> Any:
        if self._wire:
            return type(self)._wire_encode(data)
        official: Any = super()
        return official._translate_data(data)


class GrpcWireSpanExporter(_BytesOverGrpc, OfficialGrpcSpanExporter):
    """The official OTLP/gRPC span exporter, encoding with `chenu_otel.otlp_wire`."""

    _method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    _response = ExportTraceServiceResponse
    _wire_encode = staticmethod(encode_spans)


class GrpcWireLogExporter(_BytesOverGrpc, OfficialGrpcLogExporter):
    """The official OTLP/gRPC log exporter, encoding with `chenu_otel.otlp_wire`."""

    _method = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    _response = ExportLogsServiceResponse
    _wire_encode = staticmethod(encode_logs)


class GrpcWireMetricExporter(_BytesOverGrpc, OfficialGrpcMetricExporter):
    """The official OTLP/gRPC metric exporter, encoding with `chenu_otel.otlp_wire_metrics`
    (its ``max_export_batch_size`` splitting works on SDK data and is kept)."""

    _method = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    _response = ExportMetricsServiceResponse
    _wire_encode = staticmethod(encode_metrics)
