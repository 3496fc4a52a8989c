"""Every environment variable chenu-otel reads, one constant each, and the values of the
enumerated ones (`Protocol`, `Compression`, `Exporter`, `SamplerName`, ...).

The ``OTEL_*`` names are the OpenTelemetry SDK's own constants (``opentelemetry.sdk.
environment_variables`` and ``opentelemetry.environment_variables``), re-exported so that the
package names each variable in one place; `chenu_otel.settings` parses them. The ``CHENU_*``
variables are ours and documented here:

- ``CHENU_OTEL_OTLP_ENCODER`` (`OtlpEncoder`): how the OTLP exporters turn a batch into bytes.
  ``wire`` (default) writes the protobuf wire format directly (`chenu_otel.otlp_wire`, the same
  bytes as the official encoder, 4-8x less CPU per item); ``official`` uses the SDK exporters'
  own encoding unchanged. Both send through the official exporters' transport, retry and
  settings.
- ``CHENU_OTEL_ACCESS_LOG`` (`AccessLogOutput`, a comma-separated list): where the
  middleware's per-request access line goes: ``stdout`` (the JSON line), ``otel`` (an OTel log
  record), both (default, ``stdout,otel``) or ``none``. The server span carries the same data
  (method, route, path, status, duration, request and user id) whatever this says.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_PROPAGATORS,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.sdk.environment_variables import (
    OTEL_ATTRIBUTE_COUNT_LIMIT,
    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_BLRP_EXPORT_TIMEOUT,
    OTEL_BLRP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BLRP_MAX_QUEUE_SIZE,
    OTEL_BLRP_SCHEDULE_DELAY,
    OTEL_BSP_EXPORT_TIMEOUT,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
    OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT,
    OTEL_EXPORTER_OTLP_COMPRESSION,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_LOGS_COMPRESSION,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_HEADERS,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
    OTEL_EXPORTER_OTLP_METRICS_COMPRESSION,
    OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_HEADERS,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
    OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_TRACES_COMPRESSION,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
    OTEL_LINK_ATTRIBUTE_COUNT_LIMIT,
    OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT,
    OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_METRIC_EXPORT_INTERVAL,
    OTEL_METRIC_EXPORT_TIMEOUT,
    OTEL_METRICS_EXEMPLAR_FILTER,
    OTEL_RESOURCE_ATTRIBUTES,
    OTEL_SDK_DISABLED,
    OTEL_SERVICE_NAME,
    OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT,
    OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT,
    OTEL_SPAN_EVENT_COUNT_LIMIT,
    OTEL_SPAN_LINK_COUNT_LIMIT,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
)

__all__ = [
    "BLRP",
    "BSP",
    "CHENU_OTEL_ACCESS_LOG",
    "CHENU_OTEL_ALERTMANAGER_BIN",
    "CHENU_OTEL_CACHE",
    "CHENU_OTEL_COLLECTOR_BIN",
    "CHENU_OTEL_JAEGER_BIN",
    "CHENU_OTEL_LOG_LEVEL",
    "CHENU_OTEL_OTLP_ENCODER",
    "CHENU_OTEL_PROMETHEUS_BIN",
    "CHENU_OTEL_REDIS_SERVER_BIN",
    "CHENU_OTEL_REPO",
    "DEFAULT_ACCESS_LOG",
    "DEFAULT_MAX_EXPORT_BATCH_SIZE",
    "DEFAULT_MAX_QUEUE_SIZE",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_METRICS_EXEMPLAR_FILTER",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "OTEL_PROPAGATORS",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTLP_GENERIC",
    "OTLP_PER_SIGNAL",
    "AccessLogOutput",
    "BatchVariables",
    "Compression",
    "ExemplarFilterName",
    "Exporter",
    "HistogramAggregation",
    "OtlpEncoder",
    "OtlpVariables",
    "Protocol",
    "SamplerName",
    "Signal",
    "Temporality",
]


class Signal(enum.StrEnum):
    """The three OpenTelemetry signals."""

    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"


class Protocol(enum.StrEnum):
    """``OTEL_EXPORTER_OTLP_PROTOCOL``."""

    GRPC = "grpc"
    HTTP_PROTOBUF = "http/protobuf"


class Compression(enum.StrEnum):
    """``OTEL_EXPORTER_OTLP_COMPRESSION``."""

    GZIP = "gzip"
    NONE = "none"


class Exporter(enum.StrEnum):
    """``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` entries (``prometheus``: metrics only)."""

    OTLP = "otlp"
    CONSOLE = "console"
    PROMETHEUS = "prometheus"
    NONE = "none"


class SamplerName(enum.StrEnum):
    """``OTEL_TRACES_SAMPLER``."""

    ALWAYS_ON = "always_on"
    ALWAYS_OFF = "always_off"
    TRACEIDRATIO = "traceidratio"
    PARENTBASED_ALWAYS_ON = "parentbased_always_on"
    PARENTBASED_ALWAYS_OFF = "parentbased_always_off"
    PARENTBASED_TRACEIDRATIO = "parentbased_traceidratio"


class ExemplarFilterName(enum.StrEnum):
    """``OTEL_METRICS_EXEMPLAR_FILTER``."""

    TRACE_BASED = "trace_based"
    ALWAYS_ON = "always_on"
    ALWAYS_OFF = "always_off"


class Temporality(enum.StrEnum):
    """``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``."""

    CUMULATIVE = "cumulative"
    DELTA = "delta"
    LOWMEMORY = "lowmemory"


class HistogramAggregation(enum.StrEnum):
    """``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``."""

    EXPLICIT_BUCKET = "explicit_bucket_histogram"
    BASE2_EXPONENTIAL = "base2_exponential_bucket_histogram"


class AccessLogOutput(enum.StrEnum):
    """``CHENU_OTEL_ACCESS_LOG`` entries: where the access line of a request goes."""

    STDOUT = "stdout"
    OTEL = "otel"
    NONE = "none"


class OtlpEncoder(enum.StrEnum):
    """``CHENU_OTEL_OTLP_ENCODER``: who encodes OTLP batches (both give the same bytes)."""

    WIRE = "wire"
    OFFICIAL = "official"


@dataclass(frozen=True)
class OtlpVariables:
    """The OTLP exporter variables of one signal (or the generic ones)."""

    exporter: str
    endpoint: str
    protocol: str
    headers: str
    timeout: str
    compression: str


#: ``OTEL_EXPORTER_OTLP_*``: apply to every signal unless its own variable is set.
OTLP_GENERIC: Final = OtlpVariables(
    exporter="",
    endpoint=OTEL_EXPORTER_OTLP_ENDPOINT,
    protocol=OTEL_EXPORTER_OTLP_PROTOCOL,
    headers=OTEL_EXPORTER_OTLP_HEADERS,
    timeout=OTEL_EXPORTER_OTLP_TIMEOUT,
    compression=OTEL_EXPORTER_OTLP_COMPRESSION,
)

#: ``OTEL_{SIGNAL}_EXPORTER`` and ``OTEL_EXPORTER_OTLP_{SIGNAL}_*`` for traces, metrics, logs.
OTLP_PER_SIGNAL: Final[dict[Signal, OtlpVariables]] = {
    Signal.TRACES: OtlpVariables(
        exporter=OTEL_TRACES_EXPORTER,
        endpoint=OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
        protocol=OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
        headers=OTEL_EXPORTER_OTLP_TRACES_HEADERS,
        timeout=OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
        compression=OTEL_EXPORTER_OTLP_TRACES_COMPRESSION,
    ),
    Signal.METRICS: OtlpVariables(
        exporter=OTEL_METRICS_EXPORTER,
        endpoint=OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
        protocol=OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
        headers=OTEL_EXPORTER_OTLP_METRICS_HEADERS,
        timeout=OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
        compression=OTEL_EXPORTER_OTLP_METRICS_COMPRESSION,
    ),
    Signal.LOGS: OtlpVariables(
        exporter=OTEL_LOGS_EXPORTER,
        endpoint=OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
        protocol=OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
        headers=OTEL_EXPORTER_OTLP_LOGS_HEADERS,
        timeout=OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
        compression=OTEL_EXPORTER_OTLP_LOGS_COMPRESSION,
    ),
}


@dataclass(frozen=True)
class BatchVariables:
    """The four variables of a batch processor (spans: ``OTEL_BSP_*``, logs: ``OTEL_BLRP_*``)."""

    schedule_delay: str
    export_timeout: str
    max_queue_size: str
    max_export_batch_size: str


BSP: Final = BatchVariables(
    OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
)  # fmt: skip
BLRP: Final = BatchVariables(
    OTEL_BLRP_SCHEDULE_DELAY, OTEL_BLRP_EXPORT_TIMEOUT, OTEL_BLRP_MAX_QUEUE_SIZE,
    OTEL_BLRP_MAX_EXPORT_BATCH_SIZE,
)  # fmt: skip

#: Log level of the zero-code set-up (``opentelemetry-instrument``): DEBUG, INFO (default), ...
CHENU_OTEL_LOG_LEVEL: Final = "CHENU_OTEL_LOG_LEVEL"

#: How OTLP batches are encoded: ``wire`` (default, `chenu_otel.otlp_wire`) or ``official``.
CHENU_OTEL_OTLP_ENCODER: Final = "CHENU_OTEL_OTLP_ENCODER"

#: Where the access line goes: ``stdout``, ``otel``, both (default) or ``none``.
CHENU_OTEL_ACCESS_LOG: Final = "CHENU_OTEL_ACCESS_LOG"

#: Where the build scripts cache the binaries they build (default ``~/.cache/chenu-otel``).
CHENU_OTEL_CACHE: Final = "CHENU_OTEL_CACHE"
#: Explicit paths of the binaries ``chenu-otel stack`` runs (otherwise: build cache, then PATH).
CHENU_OTEL_COLLECTOR_BIN: Final = "CHENU_OTEL_COLLECTOR_BIN"
CHENU_OTEL_PROMETHEUS_BIN: Final = "CHENU_OTEL_PROMETHEUS_BIN"
CHENU_OTEL_JAEGER_BIN: Final = "CHENU_OTEL_JAEGER_BIN"
CHENU_OTEL_ALERTMANAGER_BIN: Final = "CHENU_OTEL_ALERTMANAGER_BIN"
CHENU_OTEL_REDIS_SERVER_BIN: Final = "CHENU_OTEL_REDIS_SERVER_BIN"
#: The chenu-otel checkout whose collector/ and deploy/ files ``chenu-otel stack`` runs.
CHENU_OTEL_REPO: Final = "CHENU_OTEL_REPO"

#: Batch processor queue length when OTEL_BSP_MAX_QUEUE_SIZE / OTEL_BLRP_MAX_QUEUE_SIZE is not
#: set. The SDK's 2048 drops records (oldest first, silently) as soon as the export thread falls
#: a couple of seconds behind a busy event loop; 16384 items cost at most a few tens of MB.
DEFAULT_MAX_QUEUE_SIZE: Final = 16384
#: Items per export when OTEL_BSP_MAX_EXPORT_BATCH_SIZE / OTEL_BLRP_MAX_EXPORT_BATCH_SIZE is not
#: set. The export thread holds the GIL while it encodes a batch, stalling the event loop: 64
#: items keep each stall well under a millisecond (the SDK's 512 stall it for several).
DEFAULT_MAX_EXPORT_BATCH_SIZE: Final = 64

#: Where the access line goes when CHENU_OTEL_ACCESS_LOG is not set: both the stdout JSON line
#: and the OTel log record, as before the variable existed.
DEFAULT_ACCESS_LOG: Final = frozenset({AccessLogOutput.STDOUT, AccessLogOutput.OTEL})
