"""Read and validate the standard ``OTEL_*`` environment variables; reading never writes them.

`load_settings()` turns an environment (``os.environ`` by default) into one immutable `Settings`
value. Each variable (named in `chenu_otel.environment_variables`) is parsed by a small function
that returns the value or raises `ValueError` saying what is accepted. A rejected value is never
fatal: a warning names the variable and the value (header values are never echoed: they usually
carry credentials) and the documented default is used.

A rejected value stays away from the SDK because `chenu_otel.configure()` passes every validated
value to it explicitly (sampler, limits, batch processors, metric reader, exemplar filter,
propagators, each exporter's endpoint, headers, timeout, compression and temporality). Only two
SDK code paths read the environment whatever they are given: the gRPC exporters parse
``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_TIMEOUT`` (and cannot start on a non-number) and the
HTTP exporters merge ``OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS`` into every request. For those, when
a value was rejected, `Settings.sdk_environment` says what the SDK must see instead, and
``configure()`` applies it (the one place chenu-otel writes ``os.environ``), logging each change.
A bad ``OTEL_PROPAGATORS`` name already breaks ``import opentelemetry.propagate`` (and ``import
fastapi``) before any library runs; chenu-otel still validates it for its own propagator.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Final, TypeVar
from urllib.parse import quote, unquote, urlsplit

from chenu_otel import environment_variables as env
from chenu_otel.environment_variables import (
    AccessLogOutput,
    Compression,
    ExemplarFilterName,
    Exporter,
    HistogramAggregation,
    OtlpEncoder,
    Protocol,
    SamplerName,
    Signal,
    Temporality,
)

__all__ = [
    "SIGNALS",
    "BatchSettings",
    "Compression",
    "ExemplarFilterName",
    "Exporter",
    "HistogramAggregation",
    "LimitSettings",
    "OtlpEncoder",
    "OtlpSettings",
    "Protocol",
    "SamplerName",
    "Settings",
    "Signal",
    "Temporality",
    "load_settings",
    "parse_bool",
    "parse_endpoint",
    "parse_key_values",
    "parse_ratio",
    "read_access_log_outputs",
]

_logger = logging.getLogger("chenu_otel.settings")

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


SIGNALS: Final = tuple(Signal)
EXPORTERS: Final[Mapping[Signal, tuple[Exporter, ...]]] = {
    Signal.TRACES: (Exporter.OTLP, Exporter.CONSOLE, Exporter.NONE),
    Signal.METRICS: (Exporter.OTLP, Exporter.CONSOLE, Exporter.PROMETHEUS, Exporter.NONE),
    Signal.LOGS: (Exporter.OTLP, Exporter.CONSOLE, Exporter.NONE),
}
DEFAULT_ENDPOINT: Final = {
    Protocol.GRPC: "http://localhost:4317",
    Protocol.HTTP_PROTOBUF: "http://localhost:4318",
}

#: Longest attribute value kept when OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is not set. The SDK's own
#: default is unlimited; an observability library should not ship megabyte attributes by default.
DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT: Final = 4096

_HEADER_NAME: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


@dataclass(frozen=True)
class OtlpSettings:
    """Where and how one signal is sent over OTLP."""

    protocol: Protocol
    #: Full URL for HTTP (``.../v1/traces``); ``scheme://host:port`` for gRPC.
    endpoint: str
    headers: Mapping[str, str]
    timeout_seconds: float
    compression: Compression


@dataclass(frozen=True)
class BatchSettings:
    """OTEL_BSP_* / OTEL_BLRP_*: the batch processor in front of an exporter."""

    schedule_delay_millis: int
    export_timeout_millis: int
    max_queue_size: int
    max_export_batch_size: int


@dataclass(frozen=True)
class LimitSettings:
    """The attribute, event and link limits of spans and log records."""

    attribute_value_length: int
    attribute_count: int
    span_attribute_value_length: int
    span_attribute_count: int
    span_event_count: int
    span_link_count: int
    event_attribute_count: int
    link_attribute_count: int
    log_attribute_value_length: int
    log_attribute_count: int


@dataclass(frozen=True)
class Settings:
    """The validated OpenTelemetry configuration of this process."""

    sdk_disabled: bool
    service_name: str | None
    resource_attributes: Mapping[str, str]
    exporters: Mapping[Signal, tuple[Exporter, ...]]
    otlp: Mapping[Signal, OtlpSettings]
    sampler: SamplerName
    sampler_arg: float
    metric_export_interval_millis: int
    metric_export_timeout_millis: int
    exemplar_filter: ExemplarFilterName
    temporality: Temporality
    histogram_aggregation: HistogramAggregation
    bsp: BatchSettings
    blrp: BatchSettings
    propagators: tuple[str, ...]
    limits: LimitSettings
    #: ``CHENU_OTEL_OTLP_ENCODER``: how the OTLP exporters encode batches.
    otlp_encoder: OtlpEncoder = OtlpEncoder.WIRE
    #: One sentence per rejected variable, in the order they were found.
    problems: tuple[str, ...] = ()
    #: Variables the SDK reads itself whatever it is given, whose value was rejected: what the
    #: SDK must see instead (None: unset). Applied by ``configure()``, never by reading.
    sdk_environment: Mapping[str, str | None] = field(default_factory=dict)


# --- parsers: str -> value, or ValueError("what is accepted") -------------------------------


def parse_bool(raw: str) -> bool:
    """``true`` or ``false``, any case."""
    value = raw.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("expected true or false")


def _choice(kind: type[E]) -> Callable[[str], E]:
    options = [str(member.value) for member in kind]

    def parse(raw: str) -> E:
        try:
            return kind(raw.strip().lower())
        except ValueError:
            raise ValueError(f"expected one of {', '.join(options)}") from None

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
    """A number from 0 to 1 (``OTEL_TRACES_SAMPLER_ARG``)."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError("expected a number from 0 to 1")
    return value


def parse_endpoint(raw: str) -> str:
    """An ``http://`` or ``https://`` URL with a host and a valid port."""
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise ValueError("expected a port from 0 to 65535") from None
    return value


def parse_key_values(raw: str, *, headers: bool) -> tuple[dict[str, str], list[str]]:
    """Parse the W3C-baggage-like ``k1=v1,k2=v2`` list of OTEL_*_HEADERS (`headers`) and
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
        elif headers and not _HEADER_NAME.match(key):
            bad.append(f"entry {position} has an invalid header name {key[:40]!r}")
        elif headers and any(c in value for c in "\r\n\0"):
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
    """Reads one environment; collects problems and the SDK environment repairs."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []
        self.rejected: set[str] = set()

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

    def reject(self, name: str, message: str) -> None:
        self.rejected.add(name)
        if message not in self.problems:  # generic variables are read once per signal
            self.problems.append(message)
            _logger.warning("chenu-otel: %s", message)

    def signal_get(
        self, names: tuple[str, str], parse: Callable[[str], T], default: T
    ) -> tuple[T, bool]:
        """Read the per-signal variable, falling back to the generic one; the flag says whether
        the per-signal form was used."""
        specific, generic = names
        marker = object()
        value = self.get(specific, parse, marker)
        if value is not marker:
            return value, True  # type: ignore[return-value]
        return self.get(generic, parse, default), False

    def key_values(self, name: str, *, headers: bool) -> dict[str, str]:
        raw = self.environ.get(name)
        if not raw:
            return {}
        pairs, bad = parse_key_values(raw, headers=headers)
        for complaint in bad:
            self.reject(name, f"{name}: {complaint}; the entry is ignored")
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
            )
            return kept
        return known


def _installed_propagators() -> tuple[str, ...]:
    names = {ep.name for ep in entry_points(group="opentelemetry_propagator")}
    return tuple(sorted(names | {"none"}))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Validate the OTEL_* variables of `environ` (default ``os.environ``, only read), warning
    about each rejected value."""
    source: Mapping[str, str] = os.environ if environ is None else environ
    read = _Reader(source)

    sdk_disabled = read.get(env.OTEL_SDK_DISABLED, parse_bool, False)
    service_name = (source.get(env.OTEL_SERVICE_NAME) or "").strip() or None
    resource_attributes = read.key_values(env.OTEL_RESOURCE_ATTRIBUTES, headers=False)

    exporters: dict[Signal, tuple[Exporter, ...]] = {}
    otlp: dict[Signal, OtlpSettings] = {}
    for signal in SIGNALS:
        allowed = tuple(str(e) for e in EXPORTERS[signal])
        names = read.name_list(env.OTLP_PER_SIGNAL[signal].exporter, allowed, ("otlp",))
        exporters[signal] = () if "none" in names else tuple(Exporter(n) for n in names)
        otlp[signal] = _otlp_settings(read, signal)

    sampler = read.get(
        env.OTEL_TRACES_SAMPLER, _choice(SamplerName), SamplerName.PARENTBASED_ALWAYS_ON
    )
    sampler_arg = 1.0
    if sampler.endswith("traceidratio"):
        sampler_arg = read.get(env.OTEL_TRACES_SAMPLER_ARG, parse_ratio, 1.0)

    positive = _int_at_least(1)
    propagators = read.name_list(
        env.OTEL_PROPAGATORS, _installed_propagators(), ("tracecontext", "baggage")
    )
    settings = Settings(
        sdk_disabled=sdk_disabled,
        service_name=service_name,
        resource_attributes=resource_attributes,
        exporters=exporters,
        otlp=otlp,
        sampler=sampler,
        sampler_arg=sampler_arg,
        metric_export_interval_millis=read.get(env.OTEL_METRIC_EXPORT_INTERVAL, positive, 60000),
        metric_export_timeout_millis=read.get(env.OTEL_METRIC_EXPORT_TIMEOUT, positive, 30000),
        exemplar_filter=read.get(
            env.OTEL_METRICS_EXEMPLAR_FILTER,
            _choice(ExemplarFilterName),
            ExemplarFilterName.TRACE_BASED,
        ),
        temporality=read.get(
            env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE,
            _choice(Temporality),
            Temporality.CUMULATIVE,
        ),
        histogram_aggregation=read.get(
            env.OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION,
            _choice(HistogramAggregation),
            HistogramAggregation.EXPLICIT_BUCKET,
        ),
        bsp=_batch_settings(read, env.BSP, schedule_delay=5000),
        blrp=_batch_settings(read, env.BLRP, schedule_delay=1000),
        propagators=() if "none" in propagators else propagators,
        limits=_limit_settings(read),
        otlp_encoder=read.get(
            env.CHENU_OTEL_OTLP_ENCODER, _choice(OtlpEncoder), OtlpEncoder.WIRE
        ),
    )
    return _with_problems(settings, read)


def read_access_log_outputs(
    environ: Mapping[str, str] | None = None,
) -> frozenset[AccessLogOutput]:
    """``CHENU_OTEL_ACCESS_LOG`` of `environ` (default ``os.environ``): the outputs of the
    access line, empty for ``none``; an unknown entry is warned about and ignored."""
    read = _Reader(os.environ if environ is None else environ)
    names = read.name_list(
        env.CHENU_OTEL_ACCESS_LOG,
        tuple(str(output) for output in AccessLogOutput),
        tuple(str(output) for output in sorted(env.DEFAULT_ACCESS_LOG)),
    )
    if "none" in names:
        return frozenset()
    return frozenset(AccessLogOutput(name) for name in names)


def _otlp_settings(read: _Reader, signal: Signal) -> OtlpSettings:
    own, generic = env.OTLP_PER_SIGNAL[signal], env.OTLP_GENERIC
    protocol, _ = read.signal_get(
        (own.protocol, generic.protocol), _choice(Protocol), Protocol.GRPC
    )
    endpoint, specific = read.signal_get((own.endpoint, generic.endpoint), parse_endpoint, "")
    if not endpoint:
        endpoint, specific = DEFAULT_ENDPOINT[protocol], False
    if protocol is Protocol.HTTP_PROTOBUF and not specific:
        # The spec: a generic endpoint gets the per-signal path; a per-signal one is used as is.
        endpoint = endpoint.rstrip("/") + f"/v1/{signal}"
    headers = dict(read.key_values(generic.headers, headers=True))
    headers.update(read.key_values(own.headers, headers=True))
    # The spec gives OTLP timeouts in milliseconds (some SDK versions read seconds: we pass it).
    timeout_ms, _ = read.signal_get((own.timeout, generic.timeout), _int_at_least(1), 10000)
    compression, _ = read.signal_get(
        (own.compression, generic.compression), _choice(Compression), Compression.NONE
    )
    return OtlpSettings(
        protocol=protocol,
        endpoint=endpoint,
        headers=headers,
        timeout_seconds=timeout_ms / 1000.0,
        compression=compression,
    )


def _batch_settings(
    read: _Reader, names: env.BatchVariables, *, schedule_delay: int
) -> BatchSettings:
    positive = _int_at_least(1)
    queue = read.get(names.max_queue_size, positive, env.DEFAULT_MAX_QUEUE_SIZE)
    batch = read.get(
        names.max_export_batch_size, positive, min(env.DEFAULT_MAX_EXPORT_BATCH_SIZE, queue)
    )
    if batch > queue:
        read.reject(
            names.max_export_batch_size,
            f"{names.max_export_batch_size}={batch} is larger than {names.max_queue_size}="
            f"{queue}; using {queue}",
        )
        batch = queue
    return BatchSettings(
        schedule_delay_millis=read.get(names.schedule_delay, _int_at_least(0), schedule_delay),
        export_timeout_millis=read.get(names.export_timeout, positive, 30000),
        max_queue_size=queue,
        max_export_batch_size=batch,
    )


def _limit_settings(read: _Reader) -> LimitSettings:
    non_negative = _int_at_least(0)
    value_length = read.get(
        env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, non_negative, DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT
    )
    count = read.get(env.OTEL_ATTRIBUTE_COUNT_LIMIT, non_negative, 128)
    return LimitSettings(
        attribute_value_length=value_length,
        attribute_count=count,
        span_attribute_value_length=read.get(
            env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, non_negative, value_length
        ),
        span_attribute_count=read.get(env.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, non_negative, count),
        span_event_count=read.get(env.OTEL_SPAN_EVENT_COUNT_LIMIT, non_negative, 128),
        span_link_count=read.get(env.OTEL_SPAN_LINK_COUNT_LIMIT, non_negative, 128),
        event_attribute_count=read.get(env.OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT, non_negative, count),
        link_attribute_count=read.get(env.OTEL_LINK_ATTRIBUTE_COUNT_LIMIT, non_negative, count),
        log_attribute_value_length=read.get(
            env.OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT, non_negative, value_length
        ),
        log_attribute_count=read.get(
            env.OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT, non_negative, count
        ),
    )


def _with_problems(settings: Settings, read: _Reader) -> Settings:
    """`settings` with the problems found and, for the variables the SDK exporters read
    themselves whatever they are given, what they must see instead."""
    repairs: dict[str, str | None] = {}
    for signal in SIGNALS:
        timeout = env.OTLP_PER_SIGNAL[signal].timeout
        if timeout in read.rejected:  # the gRPC exporters float() it unconditionally
            repairs[timeout] = None
    headers = [env.OTLP_GENERIC.headers, *(env.OTLP_PER_SIGNAL[s].headers for s in SIGNALS)]
    for name in headers:
        if name in read.rejected:  # the HTTP exporters merge it into every request
            valid, _ = parse_key_values(read.environ[name], headers=True)
            repairs[name] = _key_values_text(valid)
    return Settings(
        **{**settings.__dict__, "problems": tuple(read.problems), "sdk_environment": repairs}
    )


def _key_values_text(pairs: Mapping[str, str]) -> str | None:
    """The pairs in the percent-encoded form the SDK parses back; None when there are none."""
    return ",".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs.items()) or None
