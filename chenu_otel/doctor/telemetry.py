"""The doctor's test telemetry: one span, one log record and one metric point, sent once each.

The three are made with private SDK providers (never the global ones, which stay untouched)
under their own ``service.name`` and a fresh ``service.instance.id`` (the run id, Prometheus'
``instance`` label). The log record is emitted and the histogram recorded inside the span, so
the log record carries the span's trace and span ids and the metric point an exemplar naming
them. Each signal is then handed to the exporter chenu-otel itself would build from the
``OTEL_*`` settings (`chenu_otel.exporters.build_exporter`), with its timeout capped, in its
own thread, so the whole send is bounded. What the exporter logged while failing is kept as the
evidence the hints are made from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import format_span_id, format_trace_id

from chenu_otel.catalogue import InstrumentKind, prometheus_name
from chenu_otel.doctor.hints import ExporterEvidence, evidence_from_records
from chenu_otel.exporters import build_exporter, metric_aggregation, metric_temporality
from chenu_otel.settings import Exporter, OtlpSettings, Settings, Signal

__all__ = [
    "DOCTOR_SERVICE_NAME",
    "LOG_BODY",
    "METRIC_NAME",
    "MIN_EXPORT_TIMEOUT",
    "PROMETHEUS_METRIC",
    "SPAN_NAME",
    "DoctorTelemetry",
    "ExportOutcome",
    "SdkLogCapture",
    "make_test_telemetry",
    "send_test_telemetry",
]

DOCTOR_SERVICE_NAME: Final = "chenu-otel-doctor"
SPAN_NAME: Final = "chenu-otel doctor"
LOG_BODY: Final = "chenu-otel doctor test log record"
RUN_ID_ATTRIBUTE: Final = "chenu.doctor.run.id"
METRIC_NAME: Final = "chenu.doctor.probe.duration"
METRIC_UNIT: Final = "s"
#: The test histogram's name in Prometheus (standard OTLP translation).
PROMETHEUS_METRIC: Final = prometheus_name(METRIC_NAME, METRIC_UNIT, InstrumentKind.HISTOGRAM)
_SCOPE: Final = "chenu_otel.doctor"
#: Shortest export timeout the doctor uses: the SDK exporters log a retryable failure's status
#: only when they retry, and their first retry waits up to 1.2 s; below that the status is lost.
MIN_EXPORT_TIMEOUT: Final = 2.0


@dataclass(frozen=True)
class DoctorTelemetry:
    """The test span, log record and metric point of one doctor run, ready to export."""

    run_id: str
    service_name: str
    trace_id: str
    span_id: str
    spans: tuple[ReadableSpan, ...]
    log_records: tuple[ReadableLogRecord, ...]
    metrics: MetricsData


@dataclass(frozen=True)
class ExportOutcome:
    """How one signal's test export went."""

    signal: Signal
    otlp: OtlpSettings
    succeeded: bool
    seconds: float
    evidence: ExporterEvidence
    #: Set when the exporter could not even be built (or did not return in time).
    problem: str = ""


def make_test_telemetry(
    settings: Settings, service_name: str = DOCTOR_SERVICE_NAME, run_id: str | None = None
) -> DoctorTelemetry:
    """Record the test span, a log record and a histogram point inside it, in memory."""
    run_id = run_id or uuid.uuid4().hex
    resource = Resource(
        {
            **settings.resource_attributes,
            "service.name": service_name,
            "service.instance.id": run_id,
        }
    )
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource, sampler=ALWAYS_ON, shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    reader = InMemoryMetricReader(
        preferred_temporality=metric_temporality(settings.temporality),
        preferred_aggregation=metric_aggregation(settings.histogram_aggregation),
    )
    meter_provider = MeterProvider(
        metric_readers=[reader],
        resource=resource,
        exemplar_filter=TraceBasedExemplarFilter(),
        shutdown_on_exit=False,
    )
    histogram = meter_provider.get_meter(_SCOPE).create_histogram(
        METRIC_NAME, unit=METRIC_UNIT, description="Time the doctor took to record its test data."
    )
    started = time.perf_counter()
    attributes = {RUN_ID_ATTRIBUTE: run_id}
    with tracer_provider.get_tracer(_SCOPE).start_as_current_span(
        SPAN_NAME, attributes=attributes
    ) as span:
        logger_provider.get_logger(_SCOPE).emit(
            body=LOG_BODY,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes=attributes,
        )
        histogram.record(time.perf_counter() - started)  # inside the span: exemplar → trace
        context = span.get_span_context()
    metrics = reader.get_metrics_data()
    telemetry = DoctorTelemetry(
        run_id=run_id,
        service_name=service_name,
        trace_id=format_trace_id(context.trace_id),
        span_id=format_span_id(context.span_id),
        spans=tuple(span_exporter.get_finished_spans()),
        log_records=tuple(log_exporter.get_finished_logs()),
        metrics=metrics if metrics is not None else MetricsData(resource_metrics=[]),
    )
    for provider in (tracer_provider, logger_provider, meter_provider):
        provider.shutdown()
    return telemetry


class SdkLogCapture(logging.Handler):
    """While installed, keeps what the SDK and chenu-otel log, per thread, instead of printing.

    The exporters say why an export failed only in their log records; the doctor reads them as
    evidence and prints its own line per check instead of the SDK's tracebacks. The SDK drops a
    log message repeated within 20 s (its ``DuplicateFilter``); the three test exports tend to
    fail alike, so `lift_duplicate_filters` takes that filter off until the capture ends.
    """

    LOGGERS: Final = ("opentelemetry", "chenu_otel")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._records: dict[str, list[logging.LogRecord]] = defaultdict(list)
        self._records_lock = threading.Lock()
        self._saved: list[tuple[logging.Logger, bool, int]] = []
        self._lifted: list[tuple[logging.Logger, logging.Filter]] = []

    def emit(self, record: logging.LogRecord) -> None:
        with self._records_lock:
            self._records[record.threadName or ""].append(record)

    def records(self, thread_name: str) -> list[logging.LogRecord]:
        with self._records_lock:
            return list(self._records.get(thread_name, ()))

    def messages(self, thread_name: str) -> list[str]:
        return [record.getMessage() for record in self.records(thread_name)]

    def lift_duplicate_filters(self) -> None:
        """Take the SDK's duplicate-message filters off its loggers (those imported so far)."""
        with self._records_lock:
            for name, logger in list(logging.root.manager.loggerDict.items()):
                if not name.startswith("opentelemetry") or not isinstance(logger, logging.Logger):
                    continue
                for log_filter in list(logger.filters):
                    if type(log_filter).__name__ == "DuplicateFilter":
                        logger.removeFilter(log_filter)
                        self._lifted.append((logger, log_filter))  # type: ignore[arg-type]

    def __enter__(self) -> SdkLogCapture:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.propagate, logger.level))
            logger.addHandler(self)
            logger.propagate = False
            logger.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, propagate, level in self._saved:
            logger.removeHandler(self)
            logger.propagate = propagate
            logger.setLevel(level)
        self._saved.clear()
        for logger, log_filter in self._lifted:
            logger.addFilter(log_filter)
        self._lifted.clear()


def send_test_telemetry(
    settings: Settings, telemetry: DoctorTelemetry, timeout_seconds: float, capture: SdkLogCapture
) -> dict[Signal, ExportOutcome]:
    """Export each signal of `telemetry` once over OTLP, all three at the same time, each with
    its configured timeout capped at `timeout_seconds` (and raised to MIN_EXPORT_TIMEOUT);
    returns within about that bound."""
    capped = _capped(settings, timeout_seconds)
    payloads: Mapping[Signal, Callable[[Any], Any]] = {
        Signal.TRACES: lambda exporter: exporter.export(telemetry.spans),
        Signal.LOGS: lambda exporter: exporter.export(telemetry.log_records),
        Signal.METRICS: lambda exporter: exporter.export(
            telemetry.metrics, timeout_millis=timeout_seconds * 1000
        ),
    }
    outcomes: dict[Signal, ExportOutcome] = {}
    threads: dict[Signal, threading.Thread] = {}
    for signal, export in payloads.items():
        thread = threading.Thread(
            target=_export_one,
            args=(signal, capped, export, outcomes, capture),
            name=_thread_name(signal),
            daemon=True,  # a stuck export must never keep the command from exiting
        )
        threads[signal] = thread
        thread.start()
    bound = max(timeout_seconds, MIN_EXPORT_TIMEOUT) + 5.0  # the exporters' own bound, and slack
    deadline = time.monotonic() + bound
    for signal, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if signal not in outcomes:
            outcomes[signal] = ExportOutcome(
                signal,
                capped.otlp[signal],
                False,
                bound,
                evidence_from_records(capture.records(_thread_name(signal))),
                problem=f"the exporter did not return within {bound:g}s",
            )
    return {signal: outcomes[signal] for signal in (Signal.TRACES, Signal.LOGS, Signal.METRICS)}


def _thread_name(signal: Signal) -> str:
    return f"chenu-otel-doctor-{signal}"


def _capped(settings: Settings, timeout_seconds: float) -> Settings:
    def bounded(configured: float) -> float:
        return max(MIN_EXPORT_TIMEOUT, min(configured, timeout_seconds))

    otlp = {
        signal: dataclasses.replace(o, timeout_seconds=bounded(o.timeout_seconds))
        for signal, o in settings.otlp.items()
    }
    return dataclasses.replace(settings, otlp=otlp)


def _export_one(
    signal: Signal,
    settings: Settings,
    export: Callable[[Any], Any],
    outcomes: dict[Signal, ExportOutcome],
    capture: SdkLogCapture,
) -> None:
    otlp = settings.otlp[signal]
    exporter = build_exporter(signal, Exporter.OTLP, settings)
    capture.lift_duplicate_filters()  # the exporter's module, now imported, may have added one
    if exporter is None:
        said = capture.messages(_thread_name(signal))
        outcomes[signal] = ExportOutcome(
            signal,
            otlp,
            False,
            0.0,
            ExporterEvidence(message=said[-1] if said else ""),
            problem=said[-1] if said else "the OTLP exporter could not be created",
        )
        return
    started = time.perf_counter()
    try:
        result = export(exporter)
        succeeded = getattr(result, "name", "") == "SUCCESS"
    except Exception as exc:  # an exporter bug must become a failed check, not a traceback
        succeeded = False
        logging.getLogger("chenu_otel.doctor").warning("%s: %s", type(exc).__name__, exc)
    seconds = time.perf_counter() - started
    with contextlib.suppress(Exception):  # closing cannot change what the export showed
        exporter.shutdown()
    evidence = evidence_from_records(capture.records(_thread_name(signal)))
    outcomes[signal] = ExportOutcome(signal, otlp, succeeded, seconds, evidence)
