"""From what the doctor observed to one concrete hint: pure functions, no I/O.

Every failed check carries one sentence saying what to change. The inputs are facts gathered
elsewhere: what the SDK exporter said while it failed (`ExporterEvidence`, read from its own log
records), what a raw connection to the endpoint showed (`EndpointProbe`), what Prometheus
answered. Keeping the mapping here, away from sockets and HTTP, lets it be tested case by case.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final
from urllib.parse import urlsplit

from chenu_otel import environment_variables as env
from chenu_otel.settings import Protocol, Temporality

__all__ = [
    "Connection",
    "EndpointProbe",
    "ExportFailure",
    "ExporterEvidence",
    "Transport",
    "describe",
    "evidence_from_records",
    "exemplar_storage_hint",
    "export_hint",
    "missing_metric_hint",
    "otlp_receiver_hint",
]

_HTTP_PHRASES: Final[Mapping[str, int]] = {status.phrase: status.value for status in HTTPStatus}
_TLS_UNTRUSTED: Final = ("certificate_verify_failed", "certificate verify failed")
#: The collector's OTLP ports (its defaults, and the ones compose publishes).
GRPC_PORT: Final = 4317
HTTP_PORT: Final = 4318


class Connection(enum.Enum):
    """What a plain TCP connection to the endpoint's host and port gave."""

    OK = "connected"
    REFUSED = "connection refused"
    TIMEOUT = "no answer"
    UNRESOLVED = "host name does not resolve"
    UNREACHABLE = "unreachable"


class Transport(enum.Enum):
    """What the server at the endpoint speaks, as far as a probe could tell."""

    HTTP1 = "HTTP/1.1"
    HTTP2 = "HTTP/2 (gRPC)"
    TLS = "TLS"
    PLAINTEXT = "no TLS"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class EndpointProbe:
    """One look at an endpoint with raw sockets: can we connect, and what does it speak."""

    host: str
    port: int
    connection: Connection
    transport: Transport = Transport.UNKNOWN
    detail: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ExporterEvidence:
    """What an SDK exporter reported while it failed: the last status it saw, and its words."""

    grpc_status: str | None = None
    http_status: int | None = None
    #: The most telling thing it said: the last message naming a status or an error.
    message: str = ""
    #: Everything it said at warning level or above, in order.
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportFailure:
    """A failed test export, with the settings that shaped it and the variables behind them."""

    signal: str
    protocol: Protocol
    endpoint: str
    protocol_variable: str
    endpoint_variable: str
    header_names: tuple[str, ...]
    timeout_seconds: float
    evidence: ExporterEvidence
    #: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE when set next to OTEL_EXPORTER_OTLP_CERTIFICATE: the
    #: HTTP exporter's requests session then trusts that bundle instead (psf/requests#3829).
    ca_bundle_override: str | None = None


def evidence_from_records(records: Iterable[logging.LogRecord]) -> ExporterEvidence:
    """Read the status an SDK exporter saw from its own log records.

    The OTLP exporters log each failed attempt with the gRPC ``StatusCode``, the HTTP status
    (code or reason phrase) or the exception among the record's arguments; the last status
    seen wins. A record with a single argument (the signal) is the generic "gave up" line, so
    the message kept is the last one with more to say.
    """
    grpc_status: str | None = None
    http_status: int | None = None
    messages: list[str] = []
    telling = ""
    for record in records:
        if record.levelno < logging.WARNING:
            continue
        arguments = record.args if isinstance(record.args, tuple) else ()
        for argument in arguments:
            if isinstance(argument, enum.Enum) and type(argument).__name__ == "StatusCode":
                grpc_status = argument.name
            elif isinstance(argument, int) and not isinstance(argument, bool):
                if 100 <= argument <= 599:
                    http_status = argument
            elif isinstance(argument, str) and argument in _HTTP_PHRASES:
                http_status = _HTTP_PHRASES[argument]
        text = record.getMessage()
        messages.append(text)
        if len(arguments) >= 2:
            telling = text
    return ExporterEvidence(
        grpc_status=grpc_status,
        http_status=http_status,
        message=telling or (messages[-1] if messages else ""),
        messages=tuple(messages),
    )


def describe(evidence: ExporterEvidence, limit: int = 160) -> str:
    """A short account of what the exporter saw: its status and the server's or client's words."""
    said = evidence.message
    if "error details: " in said:  # the gRPC exporter's wording: the details are what matter
        said = said.split("error details: ", 1)[1]
    status = _status_text(evidence)
    if status == "no status":
        return _shorten(said, limit)
    return _shorten(f"{status}: {said}" if said and evidence.grpc_status else status, limit)


def export_hint(failure: ExportFailure, probe: EndpointProbe | None) -> str:
    """The one thing to change so that this export succeeds, as a sentence."""
    for hint in (_connection_hint(failure, probe), _status_hint(failure, probe)):
        if hint:
            return hint
    said = failure.evidence.message or "no reason given"
    return f"the export failed ({_shorten(said)}); the collector's own log may say why"


def _connection_hint(failure: ExportFailure, probe: EndpointProbe | None) -> str | None:
    if probe is None:
        return None
    where, endpoint_var = probe.address, failure.endpoint_variable
    if probe.connection is Connection.UNRESOLVED:
        return f"the host {probe.host!r} in {endpoint_var} does not resolve: check its spelling"
    if probe.connection is Connection.REFUSED:
        return (
            f"nothing listens on {where} (connection refused): wrong port in {endpoint_var}, or "
            f"the collector is not running; OTLP uses {GRPC_PORT} for gRPC, {HTTP_PORT} for HTTP"
        )
    if probe.connection is Connection.TIMEOUT:
        return (
            f"no answer from {where}: a firewall drops the packets or the host in "
            f"{endpoint_var} is wrong"
        )
    if probe.connection is Connection.UNREACHABLE:
        return f"{where} is unreachable ({probe.detail}): check the address in {endpoint_var}"
    protocol_var = failure.protocol_variable
    if failure.protocol is Protocol.GRPC and probe.transport is Transport.HTTP1:
        return (
            f"{protocol_var}=grpc but the endpoint speaks HTTP: set {protocol_var}=http/protobuf, "
            f"or point {endpoint_var} at the collector's gRPC port ({GRPC_PORT})"
        )
    if failure.protocol is Protocol.HTTP_PROTOBUF and probe.transport is Transport.HTTP2:
        return (
            f"{protocol_var}=http/protobuf but the endpoint speaks gRPC: set {protocol_var}=grpc, "
            f"or point {endpoint_var} at the collector's HTTP port ({HTTP_PORT})"
        )
    scheme = urlsplit(failure.endpoint).scheme
    if scheme == "http" and probe.transport is Transport.TLS:
        return (
            f"the endpoint expects TLS: use https:// in {endpoint_var} (with "
            "OTEL_EXPORTER_OTLP_CERTIFICATE=<CA file> when its certificate is from a private CA)"
        )
    if scheme == "https" and probe.transport is Transport.PLAINTEXT:
        return f"the endpoint does not speak TLS: use http:// in {endpoint_var}"
    return None


def _status_hint(failure: ExportFailure, probe: EndpointProbe | None) -> str | None:
    evidence = failure.evidence
    grpc, http = evidence.grpc_status, evidence.http_status
    status = _status_text(evidence)
    said = " ".join(evidence.messages or (evidence.message,)).lower()
    if any(marker in said for marker in _TLS_UNTRUSTED):
        if failure.protocol is Protocol.HTTP_PROTOBUF and failure.ca_bundle_override:
            bundle = failure.ca_bundle_override
            return (
                f"the collector's TLS certificate is not trusted: {bundle} is set, and the HTTP "
                f"exporter then trusts that bundle instead of OTEL_EXPORTER_OTLP_CERTIFICATE; "
                f"unset {bundle} for the app, or add the collector's CA to that bundle"
            )
        return (
            "the collector's TLS certificate is not trusted: set OTEL_EXPORTER_OTLP_CERTIFICATE "
            "to the CA certificate (PEM) that signed it"
        )
    if http == 401 or grpc == "UNAUTHENTICATED":
        if "authorization" not in {name.lower() for name in failure.header_names}:
            return (
                f"the collector requires a token and none was sent ({status}): set "
                "OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token>"
            )
        return (
            f"the collector refused the token in the authorization header ({status}): check it "
            "is one the collector accepts now (its token file or OTELCOL_AUTH_TOKEN)"
        )
    if http == 403 or grpc == "PERMISSION_DENIED":
        return f"the collector knows this client but does not let it send ({status})"
    if http == 404:
        return _not_found_hint(failure)
    if grpc == "UNIMPLEMENTED":
        return (
            f"the gRPC server at {failure.endpoint} has no OTLP {failure.signal} service "
            f"({status}): point {failure.endpoint_variable} at the collector's OTLP port"
        )
    if http == 413 or (grpc == "RESOURCE_EXHAUSTED" and "larger than" in evidence.message):
        return f"the request is larger than the collector accepts ({status}): send smaller batches"
    if http == 429 or grpc == "RESOURCE_EXHAUSTED":
        return (
            f"the collector is refusing data ({status}): it is over its memory limit or rate "
            "limit; look at otelcol_receiver_refused_* in its own metrics and at its log"
        )
    if http == 503 or (grpc == "UNAVAILABLE" and _answered(probe)):
        full = (
            "its sending queue is full"
            if "queue is full" in evidence.message
            else ("its sending queue is full or memory_limiter is refusing")
        )
        return (
            f"the collector refused the data ({status}): {full}, usually because a backend "
            "behind it is down or slow; look at otelcol_exporter_queue_size and "
            "otelcol_exporter_send_failed_* in its own metrics and at its log"
        )
    if http in (400, 415) or grpc == "INVALID_ARGUMENT":
        return (
            f"the endpoint refused the OTLP request as malformed ({status}): is "
            f"{failure.endpoint_variable} an OTLP receiver?"
        )
    if grpc == "DEADLINE_EXCEEDED" or (_answered(probe) and not grpc and not http):
        return (
            f"{failure.endpoint} accepted the connection but gave no OTLP answer within "
            f"{failure.timeout_seconds:g}s: the collector is overloaded, or something other "
            "than an OTLP receiver listens there"
        )
    return None


def _answered(probe: EndpointProbe | None) -> bool:
    return probe is not None and probe.connection is Connection.OK


def _not_found_hint(failure: ExportFailure) -> str:
    path = f"/v1/{failure.signal}"
    if failure.endpoint_variable != env.OTLP_GENERIC.endpoint:
        return (
            f"nothing at {failure.endpoint} (HTTP 404): {failure.endpoint_variable} is used as "
            f"is, so it must be the full URL ending in {path}"
        )
    return (
        f"nothing at {failure.endpoint} (HTTP 404): {failure.endpoint_variable} gets {path} "
        "appended, so give it the collector's base URL only (http://host:4318)"
    )


def _status_text(evidence: ExporterEvidence) -> str:
    if evidence.http_status is not None:
        try:
            return f"HTTP {evidence.http_status} {HTTPStatus(evidence.http_status).phrase}"
        except ValueError:
            return f"HTTP {evidence.http_status}"
    if evidence.grpc_status is not None:
        return f"gRPC {evidence.grpc_status}"
    return "no status"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Prometheus ------------------------------------------------------------------------------

#: What Prometheus 3 answers on /api/v1/otlp/v1/metrics when the receiver flag is missing.
OTLP_RECEIVER_FLAG: Final = "--web.enable-otlp-receiver"
EXEMPLAR_FEATURE: Final = "exemplar-storage"


def otlp_receiver_hint(status: int, body: str) -> str | None:
    """None when Prometheus' OTLP route answered like an enabled receiver, else the hint.

    An enabled receiver accepts an empty OTLP request (2xx); a disabled one answers 404 naming
    the flag (Prometheus 3).
    """
    if status == 404 and OTLP_RECEIVER_FLAG in body:
        return (
            f"Prometheus was started without {OTLP_RECEIVER_FLAG}: add the flag, or the "
            "collector's metrics are refused (HTTP 404)"
        )
    if status == 404:
        return (
            "no OTLP receiver at /api/v1/otlp/v1/metrics (HTTP 404): this is not Prometheus 3, "
            "or --prometheus lacks its --web.route-prefix"
        )
    if not 200 <= status < 300:
        return (
            f"Prometheus' OTLP receiver answered HTTP {status} to an empty request, where an "
            "enabled one accepts it: see Prometheus' log"
        )
    return None


def missing_metric_hint(temporality: Temporality) -> str:
    """Why a metric point the collector accepted is not in Prometheus, as far as this process
    can tell: a delta temporality preference (Prometheus 3's OTLP receiver refuses delta
    histograms with "invalid temporality and type combination" and the collector drops them),
    else the collector's metrics pipeline."""
    variable = env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE
    if temporality is not Temporality.CUMULATIVE:
        return (
            f"{variable}={temporality} sends histograms as deltas, which Prometheus' OTLP "
            "receiver refuses (invalid temporality and type combination) and the collector then "
            f"drops: set {variable}=cumulative"
        )
    return (
        "the collector accepted the metric point but this Prometheus does not have it: the "
        "collector's metrics pipeline does not reach it (check PROMETHEUS_OTLP_ENDPOINT="
        "<prometheus>/api/v1/otlp in the collector's environment and the collector's log)"
    )


def exemplar_storage_hint(max_exemplars: float | None, enabled_features: str | None) -> str | None:
    """None when Prometheus keeps exemplars, else the hint.

    `max_exemplars` is Prometheus' own ``prometheus_tsdb_exemplar_max_exemplars`` gauge (0 when
    exemplar storage is off); `enabled_features` its ``enable-feature`` flag value. With
    neither readable nothing can be said, which is not a failure of the storage (None).
    """
    feature_on = enabled_features is not None and EXEMPLAR_FEATURE in enabled_features.split(",")
    if max_exemplars is not None and max_exemplars > 0:
        return None
    if max_exemplars is None and (enabled_features is None or feature_on):
        return None
    if not feature_on:
        return (
            f"Prometheus was started without --enable-feature={EXEMPLAR_FEATURE}: add the flag, "
            "or every exemplar (the trace id on a metric) is dropped"
        )
    return (
        "exemplar storage is on but keeps no exemplars (storage.exemplars.max_exemplars is 0 "
        "in prometheus.yml): set it, e.g. to 100000"
    )
