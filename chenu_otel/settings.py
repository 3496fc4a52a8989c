"""Read and validate the standard ``OTEL_*`` environment variables.

`load_settings()` turns the environment into one immutable `Settings` value. Every variable is
parsed by a small function that either returns the value or raises `ValueError` saying what is
accepted. A rejected value is never fatal: it is reported with a warning that names the variable
and the value, the documented default is used instead, and the variable is removed from
``os.environ`` so that no other OpenTelemetry component (instrumentations, exporters) trips over
it later. Header values are never echoed in warnings, since they usually carry credentials.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

from opentelemetry.util._importlib_metadata import entry_points

_logger = logging.getLogger("chenu_otel.settings")

T = TypeVar("T")

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")

PROTOCOLS = ("grpc", "http/protobuf")
COMPRESSIONS = ("gzip", "none")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
EXEMPLAR_FILTERS = ("trace_based", "always_on", "always_off")
EXPORTERS: dict[Signal, tuple[str, ...]] = {
    "traces": ("otlp", "console", "none"),
    "metrics": ("otlp", "console", "prometheus", "none"),
    "logs": ("otlp", "console", "none"),
}
DEFAULT_ENDPOINT = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}

#: Longest attribute value kept when OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is not set. The SDK's own
#: default is unlimited; an observability library should not ship megabyte attributes by default.
DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT = 4096

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@dataclass(frozen=True)
class OtlpSettings:
    """Where and how one signal is sent over OTLP."""

    protocol: str
    #: Full URL for HTTP (``.../v1/traces``); ``scheme://host:port`` for gRPC.
    endpoint: str
    headers: Mapping[str, str]
    timeout_seconds: float
    compression: str


@dataclass(frozen=True)
class BatchSettings:
    """OTEL_BSP_* / OTEL_BLRP_*: the batch processor in front of an exporter."""

    schedule_delay_millis: int
    export_timeout_millis: int
    max_queue_size: int
    max_export_batch_size: int


@dataclass(frozen=True)
class LimitSettings:
    attribute_value_length: int | None
    attribute_count: int
    span_attribute_value_length: int | None
    span_attribute_count: int
    span_event_count: int
    span_link_count: int
    event_attribute_count: int
    link_attribute_count: int
    log_attribute_value_length: int | None
    log_attribute_count: int


@dataclass(frozen=True)
class Settings:
    """The validated OpenTelemetry configuration of this process."""

    sdk_disabled: bool
    service_name: str | None
    resource_attributes: Mapping[str, str]
    exporters: Mapping[Signal, tuple[str, ...]]
    otlp: Mapping[Signal, OtlpSettings]
    sampler: str
    sampler_arg: float
    metric_export_interval_millis: int
    metric_export_timeout_millis: int
    exemplar_filter: str
    bsp: BatchSettings
    blrp: BatchSettings
    propagators: tuple[str, ...]
    limits: LimitSettings
    #: One sentence per rejected variable, in the order they were found.
    problems: tuple[str, ...] = field(default=())


# --- parsers: str -> value, or ValueError("what is accepted") -------------------------------


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("expected true or false")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number >= {minimum}") from None
        if value < minimum:
            raise ValueError(f"expected a whole number >= {minimum}")
        return value

    return parse


def parse_ratio(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return value


def parse_endpoint(raw: str) -> str:
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise ValueError("expected a port from 0 to 65535") from None
    return value


def parse_key_values(raw: str, *, what: str) -> tuple[dict[str, str], list[str]]:
    """Parse the W3C-baggage-like ``k1=v1,k2=v2`` list used by OTEL_*_HEADERS and
    OTEL_RESOURCE_ATTRIBUTES. Returns the valid pairs and one complaint per bad entry."""
    pairs: dict[str, str] = {}
    bad: list[str] = []
    for position, entry in enumerate(raw.split(","), start=1):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key, value = unquote(key.strip()), unquote(value.strip())
        if not sep or not key:
            bad.append(f"entry {position} ({_peek(entry)}) has no key=value form")
        elif what == "header" and not _HEADER_NAME.match(key):
            bad.append(f"entry {position} has an invalid header name {key[:40]!r}")
        elif what == "header" and any(c in value for c in "\r\n\0"):
            bad.append(f"entry {position} ({key}) has a control character in its value")
        else:
            pairs[key] = value
    return pairs, bad


def _peek(entry: str) -> str:
    """Show a malformed entry without leaking a credential that may sit in it."""
    entry = entry.strip()
    return f"{entry[:3]}… {len(entry)} chars" if len(entry) > 3 else repr(entry)


# --- reading --------------------------------------------------------------------------------


class _Reader:
    def __init__(self, environ: MutableMapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            shown = repr(raw if len(raw) <= 80 else raw[:77] + "...")
            self.reject(name, f"{name}={shown} is not valid ({exc}); using the default {default!r}")
            return default

    def reject(self, name: str, message: str, *, keep: str | None = None) -> None:
        """Record a problem; replace (or remove) the variable so later readers see a sane value."""
        self.problems.append(message)
        _logger.warning("chenu-otel: %s", message)
        if keep:
            self.environ[name] = keep
        else:
            self.environ.pop(name, None)

    def signal_get(
        self, signal: Signal, suffix: str, parse: Callable[[str], T], default: T
    ) -> tuple[T, bool]:
        """Read OTEL_EXPORTER_OTLP_{SIGNAL}_{suffix}, falling back to OTEL_EXPORTER_OTLP_{suffix}.
        The flag says whether the per-signal form was used."""
        specific = f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"
        generic = f"OTEL_EXPORTER_OTLP_{suffix}"
        marker = object()
        value = self.get(specific, parse, marker)
        if value is not marker:
            return value, True  # type: ignore[return-value]
        return self.get(generic, parse, default), False

    def key_values(self, name: str, *, what: str) -> dict[str, str]:
        raw = self.environ.get(name)
        if not raw:
            return {}
        pairs, bad = parse_key_values(raw, what=what)
        for complaint in bad:
            self.problems.append(f"{name}: {complaint}; the entry is ignored")
            _logger.warning("chenu-otel: %s: %s; the entry is ignored", name, complaint)
        if bad:
            # Leave only the well-formed entries for components that read the variable themselves.
            if pairs:
                self.environ[name] = ",".join(f"{k}={v}" for k, v in pairs.items())
            else:
                self.environ.pop(name, None)
        return pairs

    def name_list(
        self, name: str, allowed: tuple[str, ...], default: tuple[str, ...]
    ) -> tuple[str, ...]:
        raw = self.environ.get(name)
        if raw is None or not raw.strip():
            return default
        names = [n.strip().lower() for n in raw.split(",") if n.strip()]
        known = tuple(dict.fromkeys(n for n in names if n in allowed))
        unknown = [n for n in names if n not in allowed]
        if unknown:
            kept = known or default
            self.reject(
                name,
                f"{name}={raw!r} names unknown value(s) {', '.join(map(repr, unknown))} "
                f"(accepted: {', '.join(allowed)}); using {','.join(kept)}",
                keep=",".join(kept),
            )
            return kept
        return known


def _installed_propagators() -> tuple[str, ...]:
    names = {ep.name for ep in entry_points(group="opentelemetry_propagator")}
    return tuple(sorted(names | {"none"}))


def load_settings(environ: MutableMapping[str, str] | None = None) -> Settings:
    """Validate the OTEL_* variables of `environ` (default ``os.environ``), warning about each
    rejected value and removing it from `environ`."""
    env = os.environ if environ is None else environ
    read = _Reader(env)

    sdk_disabled = read.get("OTEL_SDK_DISABLED", parse_bool, False)
    service_name = (env.get("OTEL_SERVICE_NAME") or "").strip() or None
    resource_attributes = read.key_values("OTEL_RESOURCE_ATTRIBUTES", what="resource attribute")

    exporters: dict[Signal, tuple[str, ...]] = {}
    otlp: dict[Signal, OtlpSettings] = {}
    for signal in SIGNALS:
        exporters[signal] = read.name_list(
            f"OTEL_{signal.upper()}_EXPORTER", EXPORTERS[signal], ("otlp",)
        )
        if "none" in exporters[signal]:
            exporters[signal] = ()
        otlp[signal] = _otlp_settings(read, signal)

    sampler = read.get("OTEL_TRACES_SAMPLER", _choice(SAMPLERS), "parentbased_always_on")
    sampler_arg = 1.0
    if sampler.endswith("traceidratio"):
        sampler_arg = read.get("OTEL_TRACES_SAMPLER_ARG", parse_ratio, 1.0)

    positive = _int_at_least(1)
    non_negative = _int_at_least(0)
    interval = read.get("OTEL_METRIC_EXPORT_INTERVAL", positive, 60000)
    metric_timeout = read.get("OTEL_METRIC_EXPORT_TIMEOUT", positive, 30000)
    exemplar_filter = read.get(
        "OTEL_METRICS_EXEMPLAR_FILTER", _choice(EXEMPLAR_FILTERS), "trace_based"
    )
    bsp = _batch_settings(read, "OTEL_BSP", schedule_delay=5000)
    blrp = _batch_settings(read, "OTEL_BLRP", schedule_delay=1000)
    propagators = read.name_list(
        "OTEL_PROPAGATORS", _installed_propagators(), ("tracecontext", "baggage")
    )
    if "none" in propagators:
        propagators = ()

    value_length = read.get(
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", non_negative, DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT
    )
    count = read.get("OTEL_ATTRIBUTE_COUNT_LIMIT", non_negative, 128)
    limits = LimitSettings(
        attribute_value_length=value_length,
        attribute_count=count,
        span_attribute_value_length=read.get(
            "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", non_negative, value_length
        ),
        span_attribute_count=read.get("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", non_negative, count),
        span_event_count=read.get("OTEL_SPAN_EVENT_COUNT_LIMIT", non_negative, 128),
        span_link_count=read.get("OTEL_SPAN_LINK_COUNT_LIMIT", non_negative, 128),
        event_attribute_count=read.get("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", non_negative, count),
        link_attribute_count=read.get("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", non_negative, count),
        log_attribute_value_length=read.get(
            "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", non_negative, value_length
        ),
        log_attribute_count=read.get("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", non_negative, count),
    )

    return Settings(
        sdk_disabled=sdk_disabled,
        service_name=service_name,
        resource_attributes=resource_attributes,
        exporters=exporters,
        otlp=otlp,
        sampler=sampler,
        sampler_arg=sampler_arg,
        metric_export_interval_millis=interval,
        metric_export_timeout_millis=metric_timeout,
        exemplar_filter=exemplar_filter,
        bsp=bsp,
        blrp=blrp,
        propagators=propagators,
        limits=limits,
        problems=tuple(read.problems),
    )


def _otlp_settings(read: _Reader, signal: Signal) -> OtlpSettings:
    protocol, _ = read.signal_get(signal, "PROTOCOL", _choice(PROTOCOLS), "grpc")
    endpoint, specific = read.signal_get(signal, "ENDPOINT", parse_endpoint, "")
    if not endpoint:
        endpoint, specific = DEFAULT_ENDPOINT[protocol], False
    if protocol == "http/protobuf" and not specific:
        # The spec: a generic endpoint gets the per-signal path; a per-signal one is used as is.
        endpoint = endpoint.rstrip("/") + f"/v1/{signal}"
    headers = dict(read.key_values("OTEL_EXPORTER_OTLP_HEADERS", what="header"))
    headers.update(read.key_values(f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS", what="header"))
    # The spec gives OTLP timeouts in milliseconds (some SDK versions read seconds: we pass it).
    timeout_ms, _ = read.signal_get(signal, "TIMEOUT", _int_at_least(1), 10000)
    compression, _ = read.signal_get(signal, "COMPRESSION", _choice(COMPRESSIONS), "none")
    return OtlpSettings(
        protocol=protocol,
        endpoint=endpoint,
        headers=headers,
        timeout_seconds=timeout_ms / 1000.0,
        compression=compression,
    )


def _batch_settings(read: _Reader, prefix: str, *, schedule_delay: int) -> BatchSettings:
    positive = _int_at_least(1)
    queue = read.get(f"{prefix}_MAX_QUEUE_SIZE", positive, 2048)
    batch = read.get(f"{prefix}_MAX_EXPORT_BATCH_SIZE", positive, min(512, queue))
    if batch > queue:
        read.reject(
            f"{prefix}_MAX_EXPORT_BATCH_SIZE",
            f"{prefix}_MAX_EXPORT_BATCH_SIZE={batch} is larger than {prefix}_MAX_QUEUE_SIZE="
            f"{queue}; using {queue}",
            keep=str(queue),
        )
        batch = queue
    return BatchSettings(
        schedule_delay_millis=read.get(
            f"{prefix}_SCHEDULE_DELAY", _int_at_least(0), schedule_delay
        ),
        export_timeout_millis=read.get(f"{prefix}_EXPORT_TIMEOUT", positive, 30000),
        max_queue_size=queue,
        max_export_batch_size=batch,
    )
