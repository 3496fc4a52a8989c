"""Read back what a collector's file exporter wrote: OTLP JSON lines, flattened.

`read_otlp(*paths)` turns one or more OTLP JSON-lines files into spans, log records and metric
points (`OtlpData`), each with its service and resource attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LogRecordData",
    "MetricPoint",
    "OtlpData",
    "SpanRecord",
    "attribute_value",
    "attributes_of",
    "read_otlp",
]


def attribute_value(value: dict[str, Any]) -> Any:
    """Python value of an OTLP JSON AnyValue."""
    if "arrayValue" in value:
        return [attribute_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes_of(value["kvlistValue"].get("values", []))
    for kind in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def attributes_of(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    """An OTLP JSON attribute list as a dict."""
    return {item["key"]: attribute_value(item.get("value", {})) for item in items or []}


@dataclass(frozen=True)
class SpanRecord:
    """One span as the collector wrote it."""

    service: str
    name: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class LogRecordData:
    """One log record as the collector wrote it."""

    service: str
    body: Any
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class MetricPoint:
    """One metric data point as the collector wrote it, with its exemplars' trace ids."""

    service: str
    name: str
    kind: str
    attributes: dict[str, Any]
    exemplar_trace_ids: tuple[str, ...]
    resource: dict[str, Any]


@dataclass
class OtlpData:
    """Everything found in one or more OTLP JSON-lines files, flattened."""

    spans: list[SpanRecord] = field(default_factory=list)
    logs: list[LogRecordData] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    raw: str = ""

    def span_ids(self, name: str | None = None) -> set[tuple[str, str]]:
        """(trace id, span id) of every span, or of the spans called `name`."""
        return {(s.trace_id, s.span_id) for s in self.spans if name is None or s.name == name}


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text(errors="replace").splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:  # the last line may be half-written while we read
            continue


def read_otlp(*paths: Path) -> OtlpData:
    """Everything in these OTLP JSON-lines files (missing files count as empty)."""
    data = OtlpData()
    raw: list[str] = []
    for path in paths:
        if path.exists():
            raw.append(path.read_text(errors="replace"))
        for request in _lines(path):
            _collect(request, data)
    data.raw = "\n".join(raw)
    return data


def _items(
    request: dict[str, Any], resources: str, scopes: str, items: str
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(service name, resource attributes, item) for every span, log record or metric."""
    for resource_data in request.get(resources, []):
        resource = attributes_of(resource_data.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        for scope in resource_data.get(scopes, []):
            for item in scope.get(items, []):
                yield service, resource, item


def _collect(request: dict[str, Any], data: OtlpData) -> None:
    for service, resource, span in _items(request, "resourceSpans", "scopeSpans", "spans"):
        data.spans.append(
            SpanRecord(
                service=service,
                name=span.get("name", ""),
                trace_id=span.get("traceId", ""),
                span_id=span.get("spanId", ""),
                attributes=attributes_of(span.get("attributes")),
                resource=resource,
            )
        )
    for service, resource, record in _items(request, "resourceLogs", "scopeLogs", "logRecords"):
        data.logs.append(
            LogRecordData(
                service=service,
                body=attribute_value(record.get("body", {})),
                trace_id=record.get("traceId", ""),
                span_id=record.get("spanId", ""),
                attributes=attributes_of(record.get("attributes")),
                resource=resource,
            )
        )
    for service, resource, metric in _items(
        request, "resourceMetrics", "scopeMetrics", "metrics"
    ):
        for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
            for point in metric.get(kind, {}).get("dataPoints", []):
                data.metrics.append(
                    MetricPoint(
                        service=service,
                        name=metric.get("name", ""),
                        kind=kind,
                        attributes=attributes_of(point.get("attributes")),
                        exemplar_trace_ids=tuple(
                            e.get("traceId", "") for e in point.get("exemplars", [])
                        ),
                        resource=resource,
                    )
                )
