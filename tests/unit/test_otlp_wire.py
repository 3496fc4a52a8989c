"""Conformance of chenu_otel.otlp_wire with the official OTLP encoder (1.45.1).

Real SDK objects (spans, log records, metrics from in-memory exporters and readers, plus
hand-built ones for values the SDK's validation never lets through) are encoded both ways.
Our bytes are decoded with the official protobuf classes and must equal the official
encoder's message; they must also be byte-identical to its serialisation, since both write
fields in field-number order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as official_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as official_metrics,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as official_spans,
)
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import (
    AlwaysOnExemplarFilter,
    Counter,
    Histogram,
    MeterProvider,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from chenu_otel.otlp_wire import encode_logs, encode_spans
from chenu_otel.otlp_wire_metrics import encode_metrics

# Several tests drop log record attributes on purpose (limits, invalid keys).
pytestmark = pytest.mark.filterwarnings(
    "ignore::opentelemetry.sdk._logs.LogRecordDroppedAttributesWarning"
)

# --- comparison ------------------------------------------------------------------------------


def assert_conforms(ours: bytes, official: Any) -> None:
    """Our bytes decode to the official message, and are its exact serialisation."""
    decoded = type(official).FromString(ours)
    if decoded != official:
        raise AssertionError(
            "decoded message differs from the official encoder's\n--- ours ---\n"
            f"{str(decoded)[:6000]}\n--- official ---\n"
            f"{str(official)[:6000]}"
        )
    assert ours == official.SerializeToString()


def check_spans(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    official = official_spans(spans)
    assert_conforms(encode_spans(spans), official)
    return official


def check_logs(records: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
    official = official_logs(records)
    assert_conforms(encode_logs(records), official)
    return official


def check_metrics(data: MetricsData | None) -> ExportMetricsServiceRequest:
    assert data is not None
    official = official_metrics(data)
    assert_conforms(encode_metrics(data), official)
    return official


# --- SDK sources -----------------------------------------------------------------------------

RESOURCE = Resource.create(
    {
        "service.name": "wire",
        "service.version": "1.2.3",
        "host.cores": 2,
        "ratio": 0.5,
        "debug": False,
        "regions": ("eu", "us"),
    },
    schema_url="https://opentelemetry.io/schemas/1.30.0",
)


def span_source(
    resource: Resource = RESOURCE, limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(resource=resource, span_limits=limits)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def remote_context(trace_state: TraceState | None = None, sampled: bool = True) -> Context:
    parent = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        trace_state=trace_state,
    )
    return set_span_in_context(NonRecordingSpan(parent))


SPAN_ATTRIBUTES: dict[str, Any] = {
    "http.request.method": "GET",
    "empty": "",
    "unicode": "données ✓ 😀",
    "short_chars_long_bytes": "é" * 100,  # < 126 characters, > 126 bytes
    "long": "x" * 300,
    "very_long": "y" * 20_000,
    "true": True,
    "false": False,
    "zero": 0,
    "small": 7,
    "negative": -42,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "float": 3.25,
    "float_zero": 0.0,
    "float_negative": -1e-300,
    "inf": math.inf,
    "strings": ("a", "", "ü"),
    "bools": [True, False],
    "ints": [0, -1, 2**40],
    "floats": [0.5, -2.0],
    "empty_list": [],
}


def test_spans_every_field_from_the_sdk() -> None:
    """Kinds, parents (remote with trace_state, local, none), times, attributes of every type,
    events, links with attributes and flags, every status, scope and resource with schema
    URLs: the same request as the official encoder."""
    provider, exporter = span_source()
    tracer = provider.get_tracer(
        "wire.tests", "9.9", schema_url="https://scope/1", attributes={"scope.attr": "x"}
    )
    plain = provider.get_tracer("plain")
    state = TraceState([("vendor", "opaque"), ("other", "1")])
    local_link = SpanContext(0x1234, 0x5678, is_remote=False)
    remote_link = SpanContext(0xFFFF << 64, 0x9, is_remote=True, trace_state=state)
    with tracer.start_as_current_span(
        "GET /items/{item_id}",
        context=remote_context(state),
        kind=SpanKind.SERVER,
        attributes=SPAN_ATTRIBUTES,
        links=[Link(remote_link, {"link.attr": 1, "arr": ["a"]}), Link(local_link)],
    ) as root:
        root.add_event("exception", {"exception.type": "ValueError", "n": 3})
        root.add_event("no attributes")
        root.add_event("", {"at": "explicit time"}, timestamp=1_700_000_000_000_000_001)
        root.set_status(Status(StatusCode.ERROR, "boom ✗"))
        for kind in SpanKind:
            with plain.start_as_current_span(f"child {kind.name}", kind=kind) as child:
                if kind is SpanKind.CLIENT:
                    child.set_status(Status(StatusCode.OK))
                if kind is SpanKind.CONSUMER:
                    child.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("", context=remote_context(sampled=True)):
        pass
    with tracer.start_as_current_span("root without parent", start_time=1, end_on_exit=False) as s:
        s.end(end_time=2**64 - 1)
    spans = exporter.get_finished_spans()
    assert len(spans) == 3 + len(SpanKind)
    request = check_spans(spans)
    # What the official encoder sends is really what this test claims to cover.
    scope_spans = request.resource_spans[0].scope_spans
    sent = {span.name: span for scope in scope_spans for span in scope.spans}
    root_pb = sent["GET /items/{item_id}"]
    assert root_pb.trace_state == "vendor=opaque,other=1"
    assert root_pb.flags == 0x300 and len(root_pb.links) == 2 and len(root_pb.events) == 3
    assert root_pb.links[0].flags == 0x300 and root_pb.links[1].flags == 0x100
    assert root_pb.status.code == 2 and root_pb.status.message == "boom ✗"
    assert {scope.scope.name for scope in scope_spans} == {"wire.tests", "plain"}
    assert request.resource_spans[0].schema_url.endswith("1.30.0")


def test_span_dropped_counts() -> None:
    """Attributes, events, links and event/link attributes dropped by limits are counted."""
    limits = SpanLimits(
        max_span_attributes=2,
        max_events=1,
        max_links=1,
        max_event_attributes=1,
        max_link_attributes=1,
    )
    provider, exporter = span_source(limits=limits)
    links = [Link(SpanContext(i + 1, i + 1, False), {"a": 1, "b": 2}) for i in range(3)]
    with provider.get_tracer("t").start_as_current_span(
        "limited", attributes={"a": 1, "b": 2, "c": 3, "d": 4}, links=links
    ) as span:
        span.add_event("e1")
        span.add_event("e2", {"a": 1, "b": 2, "c": 3})  # the bounded list keeps the newest
    request = check_spans(exporter.get_finished_spans())
    span_pb = request.resource_spans[0].scope_spans[0].spans[0]
    assert span_pb.dropped_attributes_count == 2
    assert span_pb.dropped_events_count == 1 and span_pb.dropped_links_count == 2
    assert span_pb.events[0].dropped_attributes_count == 2
    assert span_pb.links[0].dropped_attributes_count == 1


def test_grouping_by_equal_resources_and_scopes_keeps_the_official_order() -> None:
    """Spans from equal but distinct resources and scopes, interleaved, are grouped (and
    ordered) exactly as the official encoder groups them."""
    twin = Resource.create(dict(RESOURCE.attributes), schema_url=RESOURCE.schema_url)
    assert twin == RESOURCE and twin is not RESOURCE
    other = Resource.create({"service.name": "other"})
    sources = [span_source(RESOURCE), span_source(twin), span_source(other)]
    spans: list[ReadableSpan] = []
    for i in range(12):
        provider, exporter = sources[i % 3]
        name = ("a", "b", "a")[i % 3] if i % 2 else "c"
        with provider.get_tracer(name, "1").start_as_current_span(f"s{i}"):
            pass
        spans.extend(exporter.get_finished_spans()[-1:])
    request = check_spans(spans)
    assert len(request.resource_spans) == 2
    # Twice in a row: the cached resource and scope fields give the same bytes again.
    check_spans(spans)
    check_spans(list(reversed(spans)))


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


def _hand_built_span(attributes: dict[str, Any], **overrides: Any) -> ReadableSpan:
    arguments: dict[str, Any] = {
        "name": "hand-built",
        "context": SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)),
        "parent": SpanContext(0xABC, 0x123, is_remote=False),
        "resource": RESOURCE,
        "attributes": attributes,
        "events": [Event("ev", {"nested": {"k": [1, None]}}, timestamp=5)],
        "links": [Link(SpanContext(1, 2, True), {"bytes": b"\x00\xff"})],
        "kind": SpanKind.PRODUCER,
        "status": Status(StatusCode.UNSET, None),
        "start_time": 10,
        "end_time": 20,
        "instrumentation_scope": InstrumentationScope("hand", None, None, {"s": [1, 2]}),
    }
    arguments.update(overrides)
    return ReadableSpan(**arguments)


def test_every_any_value_type_and_the_unencodable_ones() -> None:
    """Values the SDK's span validation never lets through still encode as the official
    encoder does: bytes, None, nested maps, mixed arrays, enum and mapping subclasses; an
    int outside int64 or an unknown type drops that attribute only."""
    attributes: dict[str, Any] = {
        "bytes": b"\x00\x01\xfe\xff",
        "empty_bytes": b"",
        "none": None,
        "nested": {"a": {"b": {"c": ["deep", 1, 2.5, True, None, b"\x07"]}}, 5: "int key"},
        "mapping_proxy": MappingProxyType({"x": 1}),
        "mixed": ("a", 1, 2.5, False, None, ["inner"], {"k": "v"}),
        "str_enum": Colour.RED,
        "int_enum": Level.HIGH,
        "too_big": 2**64,
        "too_small": -(2**63) - 1,
        "unknown": object(),
        "list_with_unknown": [1, object()],
        "after_the_bad_ones": "still here",
        **SPAN_ATTRIBUTES,
    }
    span = _hand_built_span(attributes)
    request = check_spans([span])
    keys = [kv.key for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes]
    assert "after_the_bad_ones" in keys and "too_big" not in keys and "unknown" not in keys
    no_scope = _hand_built_span({}, instrumentation_scope=None, start_time=None, end_time=None)
    check_spans([no_scope, span])


# --- randomized ------------------------------------------------------------------------------

_ALPHABET = "abcXYZ09 ._-éü✓😀"


def _random_string(rng: random.Random, longest: int = 40) -> str:
    size = rng.choice([0, 1, 5, longest, 130, 200]) if rng.random() < 0.2 else rng.randint(0, 12)
    return "".join(rng.choice(_ALPHABET) for _ in range(size))


def _random_scalar(rng: random.Random) -> Any:
    kind = rng.randrange(5)
    if kind == 0:
        return _random_string(rng)
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 127, 128, 16383, 16384, 2**31, -(2**62), 2**63 - 1])
    if kind == 3:
        return rng.choice([0.0, -0.0, 1.5, -3.75e10, 1e-308, rng.uniform(-1e6, 1e6)])
    return rng.randint(-(10**12), 10**12)


def random_span_attributes(rng: random.Random) -> dict[str, Any]:
    """Attribute values the SDK accepts on spans: scalars and homogeneous sequences."""
    attributes: dict[str, Any] = {}
    for index in range(rng.randint(0, 12)):
        key = f"{_random_string(rng, 10)}.{index}"
        if rng.random() < 0.25:
            sample = _random_scalar(rng)
            attributes[key] = [
                _random_scalar(rng) if type(sample) is float else type(sample)(sample)
                for _ in range(rng.randint(0, 4))
            ]
            if type(sample) is float:
                attributes[key] = [rng.uniform(-10, 10) for _ in range(rng.randint(0, 4))]
        else:
            attributes[key] = _random_scalar(rng)
    return attributes


def random_any_value(rng: random.Random, depth: int = 0) -> Any:
    """Any value the logs API accepts: scalars, bytes, None, nested lists and maps."""
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return [random_any_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3 and roll < 0.3:
        return {
            _random_string(rng, 8): random_any_value(rng, depth + 1)
            for _ in range(rng.randint(0, 4))
        }
    if roll < 0.38:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))
    if roll < 0.42:
        return None
    return _random_scalar(rng)


def _random_spans(rng: random.Random) -> Iterator[tuple[str, dict[str, Any]]]:
    for index in range(rng.randint(1, 15)):
        yield f"{_random_string(rng)}#{index}", random_span_attributes(rng)


@pytest.mark.parametrize("seed", range(25))
def test_random_spans(seed: int) -> None:
    """Random trees of SDK spans with random attributes, events, links and statuses."""
    rng = random.Random(seed)
    provider, exporter = span_source()
    tracers = [
        provider.get_tracer(_random_string(rng, 8) or "t", rng.choice([None, "1.0"]))
        for _ in range(3)
    ]

    def make(depth: int) -> None:
        for name, attributes in _random_spans(rng):
            context = remote_context(TraceState([("k", "v")])) if rng.random() < 0.2 else None
            links = [
                Link(
                    SpanContext(
                        rng.getrandbits(128) | 1, rng.getrandbits(64) | 1, rng.random() < 0.5
                    ),
                    random_span_attributes(rng),
                )
                for _ in range(rng.randint(0, 2))
            ]
            with rng.choice(tracers).start_as_current_span(
                name,
                context=context,
                kind=rng.choice(list(SpanKind)),
                attributes=attributes,
                links=links,
            ) as span:
                for _ in range(rng.randint(0, 3)):
                    span.add_event(_random_string(rng), random_span_attributes(rng))
                status = rng.choice([None, StatusCode.OK, StatusCode.ERROR])
                if status is not None:
                    span.set_status(Status(status, _random_string(rng) or None))
                if depth < 2 and rng.random() < 0.3:
                    make(depth + 1)

    make(0)
    check_spans(exporter.get_finished_spans())


# --- logs ------------------------------------------------------------------------------------


def log_source(
    limits: LogRecordLimits | None = None,
) -> tuple[LoggerProvider, InMemoryLogRecordExporter]:
    provider = LoggerProvider(resource=RESOURCE, log_record_limits=limits)
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider, exporter


BODIES: list[Any] = [
    None,
    "http_request",
    "",
    "é" * 200,
    0,
    -5,
    2**63 - 1,
    1.25,
    True,
    False,
    b"\x00raw\xff",
    ["a", 1, None, {"k": [b"x"]}],
    {"event": "login", "user": {"id": 7, "roles": ["admin"], "extra": None}},
    (),
    {},
]


def test_logs_every_field_from_the_sdk() -> None:
    """Bodies of every type, severities, event names, times, trace context inside a sampled
    span and outside, extended attributes (nested maps, bytes, mixed arrays), dropped
    attributes, scope with version/schema URL/attributes."""
    from opentelemetry._logs import SeverityNumber

    provider, exporter = log_source(LogRecordLimits(max_attributes=3))
    logger = provider.get_logger(
        "wire.logs", "2.0", schema_url="https://scope/logs", attributes={"scope.k": True}
    )
    plain = provider.get_logger("plain")
    span_provider, _ = span_source()
    with span_provider.get_tracer("t").start_as_current_span("inside"):
        for index, body in enumerate(BODIES):
            logger.emit(
                body=body,
                severity_number=list(SeverityNumber)[index % len(SeverityNumber)],
                severity_text=["INFO", None, "", "ERROR ✗"][index % 4],
                attributes={"index": index, "nested": {"a": [1, "b", None]}, "raw": b"\x01"},
                event_name=["", None, "app.event"][index % 3],
            )
    plain.emit(body="outside any span", timestamp=1_700_000_000_123_456_789)
    plain.emit(body="explicit observed", timestamp=None, observed_timestamp=42)
    plain.emit(body="many", attributes={f"k{i}": i for i in range(6)})
    records = exporter.get_finished_logs()
    request = check_logs(records)
    sent = [record for scope in request.resource_logs[0].scope_logs for record in scope.log_records]
    assert len(sent) == len(BODIES) + 3
    assert sent[0].trace_id and sent[0].flags & 1 and not sent[-1].trace_id
    assert sent[-1].dropped_attributes_count == 3
    assert any(record.event_name == "app.event" for record in sent)


@pytest.mark.parametrize("seed", range(15))
def test_random_logs(seed: int) -> None:
    """Random log records: any body, any attributes, random severities and context."""
    from opentelemetry._logs import SeverityNumber

    rng = random.Random(1000 + seed)
    provider, exporter = log_source()
    loggers = [provider.get_logger(_random_string(rng, 8) or "l") for _ in range(3)]
    span_provider, _ = span_source()
    tracer = span_provider.get_tracer("t")
    for _ in range(rng.randint(1, 30)):
        attributes = {
            _random_string(rng, 8): random_any_value(rng) for _ in range(rng.randint(0, 6))
        }
        arguments: dict[str, Any] = {
            "body": random_any_value(rng),
            "attributes": attributes,
            "severity_number": rng.choice([None, *SeverityNumber]),
            "severity_text": rng.choice([None, "", _random_string(rng)]),
            "event_name": rng.choice([None, "", _random_string(rng)]),
        }
        if rng.random() < 0.5:
            with tracer.start_as_current_span("s"):
                rng.choice(loggers).emit(**arguments)
        else:
            rng.choice(loggers).emit(**arguments)
    check_logs(exporter.get_finished_logs())


# --- metrics ---------------------------------------------------------------------------------


def metric_source(
    temporality: AggregationTemporality, **provider_arguments: Any
) -> tuple[MeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader(
        preferred_temporality={
            Counter: temporality,
            UpDownCounter: temporality,
            Histogram: temporality,
        }
    )
    views = [
        View(instrument_name="exponential*", aggregation=ExponentialBucketHistogramAggregation()),
        View(
            instrument_name="updown.exponential",
            aggregation=ExponentialBucketHistogramAggregation(max_size=20),
        ),
        View(
            instrument_name="http.server.request.duration",
            attribute_keys={"http.route"},
            aggregation=ExplicitBucketHistogramAggregation((0.005, 0.01, 0.1, 1.0)),
        ),
    ]
    provider = MeterProvider(
        metric_readers=[reader], resource=RESOURCE, views=views, **provider_arguments
    )
    return provider, reader


def _record_everything(provider: MeterProvider, tracer_provider: TracerProvider) -> None:
    meter = provider.get_meter("wire.metrics", "3.1", schema_url="https://scope/metrics")
    other = provider.get_meter("other", attributes={"meter.attr": 1})
    requests = meter.create_counter("requests", unit="{request}", description="Requests.")
    ratio = meter.create_counter("ratio.float")
    active = meter.create_up_down_counter("active")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    exponential = meter.create_histogram("exponential.latency", unit="ms")
    updown_exp = other.create_up_down_counter("updown.exponential")
    gauge = other.create_gauge("temperature")

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(3, {"cpu": "0"}), Observation(4.5, {"cpu": "1"})]

    other.create_observable_gauge("load", [observe])
    other.create_observable_counter("ticks", [observe])
    other.create_observable_up_down_counter("queue", [observe])
    tracer = tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("sampled request"):
        requests.add(1, {"http.route": "/items/{id}", "ok": True})
        ratio.add(0.25)
        active.add(-3, {"pool": "db"})
        for value in (0.001, 0.02, 0.5, 3.0):
            duration.record(value, {"http.route": "/items/{id}", "request.id": "r-1", "n": 2})
        for value in (0.0, 1.0, 2.5, 1000.0, 1e-9):
            exponential.record(value, {"unit": "ms"})
        for value in (-5, 0, 7, -1000):
            updown_exp.add(value)
        gauge.set(21.5, {"room": "a"})
        gauge.set(3, {"room": "b"})
    requests.add(2**40, {"http.route": "/other"})
    duration.record(0.2, {"http.route": "/other"})


@pytest.mark.parametrize(
    "temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]
)
def test_metrics_every_point_kind_with_exemplars(temporality: AggregationTemporality) -> None:
    """Sums (int, float, monotonic or not), gauges (sync and observable), explicit and
    exponential histograms (positive, negative, zero buckets), exemplars with trace and span
    ids and filtered attributes, both temporalities, two collections in a row."""
    tracer_provider, _ = span_source()
    provider, reader = metric_source(temporality)
    _record_everything(provider, tracer_provider)
    request = check_metrics(reader.get_metrics_data())
    _record_everything(provider, tracer_provider)
    check_metrics(reader.get_metrics_data())
    metrics = {
        metric.name: metric
        for scope in request.resource_metrics[0].scope_metrics
        for metric in scope.metrics
    }
    kinds = {name: metric.WhichOneof("data") for name, metric in metrics.items()}
    assert kinds["exponential.latency"] == "exponential_histogram"
    assert kinds["temperature"] == "gauge" and kinds["requests"] == "sum"
    assert metrics["updown.exponential"].exponential_histogram.data_points[0].negative.bucket_counts
    exemplars = [
        exemplar
        for point in metrics["http.server.request.duration"].histogram.data_points
        for exemplar in point.exemplars
    ]
    with_trace = [e for e in exemplars if e.trace_id]
    assert with_trace and all(len(e.span_id) == 8 for e in with_trace)
    assert any(kv.key == "request.id" for e in with_trace for kv in e.filtered_attributes)


def test_metric_exemplars_without_a_span() -> None:
    """With the always-on filter, exemplars recorded outside a span carry no ids."""
    tracer_provider, _ = span_source()
    provider, reader = metric_source(
        AggregationTemporality.CUMULATIVE, exemplar_filter=AlwaysOnExemplarFilter()
    )
    counter = provider.get_meter("m").create_counter("outside")
    counter.add(5, {"a": "b"})
    counter.add(1.5, {"a": "c"})
    request = check_metrics(reader.get_metrics_data())
    points = request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points
    assert points[0].exemplars and not points[0].exemplars[0].trace_id
    del tracer_provider


@pytest.mark.parametrize("seed", range(10))
def test_random_metrics(seed: int) -> None:
    """Random measurements on every instrument kind, with random attributes."""
    rng = random.Random(2000 + seed)
    tracer_provider, _ = span_source()
    provider, reader = metric_source(
        rng.choice(list(AggregationTemporality)[1:]), exemplar_filter=AlwaysOnExemplarFilter()
    )
    meter = provider.get_meter(_random_string(rng, 8) or "m")
    counter = meter.create_counter("counter")
    updown = meter.create_up_down_counter("updown.exponential")
    histogram = meter.create_histogram("histogram")
    exponential = meter.create_histogram("exponential.random")
    gauge = meter.create_gauge("gauge")
    tracer = tracer_provider.get_tracer("t")
    for _ in range(rng.randint(1, 40)):
        attributes = random_span_attributes(rng)
        with tracer.start_as_current_span("s"):
            counter.add(rng.choice([rng.randint(0, 10**6), rng.uniform(0, 100)]), attributes)
            updown.add(rng.uniform(-100, 100), attributes)
            histogram.record(rng.uniform(0, 20), attributes)
            exponential.record(rng.expovariate(0.01), attributes)
            gauge.set(rng.choice([rng.randint(-5, 5), rng.uniform(-5, 5)]), attributes)
    check_metrics(reader.get_metrics_data())
