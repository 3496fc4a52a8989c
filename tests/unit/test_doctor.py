"""chenu-otel doctor in process: the hint for each failure, the evidence it is read from, the
probes, the output, and what the test export really sends (read back at an OTLP receiver).

Receivers and servers here run on 127.0.0.1 inside the test: an OTLP sink that accepts, HTTP
and gRPC receivers that refuse with a chosen status, a TLS server, a stand-in for Loki's query
API. The real collector, Prometheus, Jaeger and VictoriaLogs are in tests/e2e/test_doctor.py.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from chenu_otel.doctor import DoctorOptions, add_doctor_parser, main, run_doctor
from chenu_otel.doctor.backends import Deadline, check_logs
from chenu_otel.doctor.hints import (
    Connection,
    EndpointProbe,
    ExporterEvidence,
    ExportFailure,
    Transport,
    exemplar_storage_hint,
    export_hint,
    missing_metric_hint,
    otlp_receiver_hint,
)
from chenu_otel.doctor.probes import probe_endpoint
from chenu_otel.doctor.report import CheckResult, Reporter, Status
from chenu_otel.doctor.telemetry import PROMETHEUS_METRIC, make_test_telemetry
from chenu_otel.settings import Protocol, Temporality, load_settings
from chenu_otel.testing import OtlpSink, attributes_of
from tests.e2e.edge_collector import make_tls_files
from tests.support import LOOPBACK, free_port

GENERIC_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
GENERIC_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


# --- the hint for each failure ---------------------------------------------------------------


def failure(
    protocol: Protocol = Protocol.GRPC,
    endpoint: str = "http://127.0.0.1:4317",
    *,
    grpc_status: str | None = None,
    http_status: int | None = None,
    message: str = "",
    headers: tuple[str, ...] = (),
    **fields: Any,
) -> ExportFailure:
    evidence = ExporterEvidence(grpc_status, http_status, message, (message,) if message else ())
    return ExportFailure(
        signal=fields.pop("signal", "traces"),
        protocol=protocol,
        endpoint=endpoint,
        protocol_variable=fields.pop("protocol_variable", GENERIC_PROTOCOL),
        endpoint_variable=fields.pop("endpoint_variable", GENERIC_ENDPOINT),
        header_names=headers,
        timeout_seconds=5.0,
        evidence=evidence,
        **fields,
    )


def connected(transport: Transport, port: int = 4317) -> EndpointProbe:
    return EndpointProbe(LOOPBACK, port, Connection.OK, transport)


HINTS: list[tuple[str, ExportFailure, EndpointProbe | None, str]] = [
    (
        "wrong port",
        failure(grpc_status="UNAVAILABLE"),
        EndpointProbe(LOOPBACK, 4317, Connection.REFUSED),
        "nothing listens on 127.0.0.1:4317 (connection refused): wrong port in "
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ),
    (
        "unknown host",
        failure(endpoint="http://colector:4317"),
        EndpointProbe("colector", 4317, Connection.UNRESOLVED),
        "the host 'colector' in OTEL_EXPORTER_OTLP_ENDPOINT does not resolve",
    ),
    (
        "dropped packets",
        failure(),
        EndpointProbe("10.0.0.9", 4317, Connection.TIMEOUT),
        "no answer from 10.0.0.9:4317: a firewall drops the packets",
    ),
    (
        "gRPC to an HTTP port",
        failure(grpc_status="UNAVAILABLE", message="Trying to connect an http1.x server"),
        connected(Transport.HTTP1, 4318),
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc but the endpoint speaks HTTP: set "
        "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
    ),
    (
        "HTTP to a gRPC port",
        failure(Protocol.HTTP_PROTOBUF, "http://127.0.0.1:4317/v1/traces"),
        connected(Transport.HTTP2),
        "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf but the endpoint speaks gRPC: set "
        "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
    ),
    (
        "the per-signal variable is named when it decided",
        failure(protocol_variable="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
        connected(Transport.HTTP1, 4318),
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc but the endpoint speaks HTTP",
    ),
    (
        "plaintext to TLS",
        failure(grpc_status="UNAVAILABLE", message="Socket closed"),
        connected(Transport.TLS),
        "the endpoint expects TLS: use https:// in OTEL_EXPORTER_OTLP_ENDPOINT",
    ),
    (
        "TLS to plaintext",
        failure(endpoint="https://127.0.0.1:4317"),
        connected(Transport.PLAINTEXT),
        "the endpoint does not speak TLS: use http:// in OTEL_EXPORTER_OTLP_ENDPOINT",
    ),
    (
        "no token (gRPC)",
        failure(grpc_status="UNAUTHENTICATED", message="missing or empty authorization header"),
        connected(Transport.HTTP2),
        "the collector requires a token and none was sent (gRPC UNAUTHENTICATED): set "
        "OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token>",
    ),
    (
        "no token (HTTP)",
        failure(Protocol.HTTP_PROTOBUF, http_status=401),
        connected(Transport.HTTP1, 4318),
        "the collector requires a token and none was sent (HTTP 401 Unauthorized)",
    ),
    (
        "a token that is refused",
        failure(grpc_status="UNAUTHENTICATED", headers=("Authorization",)),
        connected(Transport.HTTP2),
        "the collector refused the token in the authorization header (gRPC UNAUTHENTICATED)",
    ),
    (
        "forbidden",
        failure(Protocol.HTTP_PROTOBUF, http_status=403),
        connected(Transport.HTTP1, 4318),
        "does not let it send (HTTP 403 Forbidden)",
    ),
    (
        "a generic endpoint with the signal path already in it",
        failure(Protocol.HTTP_PROTOBUF, "http://c:4318/v1/traces/v1/traces", http_status=404),
        connected(Transport.HTTP1, 4318),
        "OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended, so give it the collector's "
        "base URL only",
    ),
    (
        "a per-signal endpoint without the signal path",
        failure(
            Protocol.HTTP_PROTOBUF,
            "http://c:4318",
            http_status=404,
            endpoint_variable="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        connected(Transport.HTTP1, 4318),
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is, so it must be the full URL ending "
        "in /v1/traces",
    ),
    (
        "a gRPC server without the OTLP service",
        failure(grpc_status="UNIMPLEMENTED"),
        connected(Transport.HTTP2),
        "has no OTLP traces service (gRPC UNIMPLEMENTED)",
    ),
    (
        "over the memory limit (HTTP)",
        failure(Protocol.HTTP_PROTOBUF, http_status=429),
        connected(Transport.HTTP1, 4318),
        "the collector is refusing data (HTTP 429 Too Many Requests)",
    ),
    (
        "over the memory limit (gRPC)",
        failure(grpc_status="RESOURCE_EXHAUSTED", message="data refused due to high memory"),
        connected(Transport.HTTP2),
        "the collector is refusing data (gRPC RESOURCE_EXHAUSTED)",
    ),
    (
        "a full queue (gRPC)",
        failure(grpc_status="UNAVAILABLE", message="error details: sending queue is full"),
        connected(Transport.HTTP2),
        "the collector refused the data (gRPC UNAVAILABLE): its sending queue is full",
    ),
    (
        "a full queue (HTTP)",
        failure(Protocol.HTTP_PROTOBUF, http_status=503),
        connected(Transport.HTTP1, 4318),
        "the collector refused the data (HTTP 503 Service Unavailable): its sending queue is "
        "full or memory_limiter is refusing",
    ),
    (
        "an untrusted certificate",
        failure(endpoint="https://c:4317", message="SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED"),
        connected(Transport.HTTP2),
        "the collector's TLS certificate is not trusted: set OTEL_EXPORTER_OTLP_CERTIFICATE",
    ),
    (
        "a CA bundle variable that requests prefers",
        failure(
            Protocol.HTTP_PROTOBUF,
            "https://c:4318/v1/traces",
            message="SSLError(SSLCertVerificationError('certificate verify failed'))",
            ca_bundle_override="REQUESTS_CA_BUNDLE",
        ),
        connected(Transport.HTTP1, 4318),
        "REQUESTS_CA_BUNDLE is set, and the HTTP exporter then trusts that bundle instead of "
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
    ),
    (
        "a malformed request",
        failure(Protocol.HTTP_PROTOBUF, http_status=415),
        connected(Transport.HTTP1, 4318),
        "refused the OTLP request as malformed (HTTP 415 Unsupported Media Type)",
    ),
    (
        "no answer in time",
        failure(grpc_status="DEADLINE_EXCEEDED"),
        connected(Transport.HTTP2),
        "accepted the connection but gave no OTLP answer within 5s",
    ),
    (
        "nothing else to go on",
        failure(message="something odd"),
        None,
        "the export failed (something odd); the collector's own log may say why",
    ),
]


@pytest.mark.parametrize(
    ("failed", "probe", "expected"),
    [case[1:] for case in HINTS],
    ids=[case[0] for case in HINTS],
)
def test_each_failure_gets_its_one_hint(
    failed: ExportFailure, probe: EndpointProbe | None, expected: str
) -> None:
    """Every failure the doctor can tell apart maps to the sentence that says what to change."""
    assert expected in export_hint(failed, probe)


def test_unavailable_without_a_connection_is_not_called_a_full_queue() -> None:
    """gRPC UNAVAILABLE is also what a dead port gives: the probe decides, not the status."""
    refused = EndpointProbe(LOOPBACK, 4317, Connection.REFUSED)
    hint = export_hint(failure(grpc_status="UNAVAILABLE"), refused)
    assert "connection refused" in hint
    assert "queue" not in hint


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, "", None),
        (404, "otlp write receiver needs to be enabled with --web.enable-otlp-receiver\n",
         "Prometheus was started without --web.enable-otlp-receiver"),
        (404, "404 page not found", "no OTLP receiver at /api/v1/otlp/v1/metrics (HTTP 404)"),
        (400, "bad", "answered HTTP 400 to an empty request"),
        (500, "", "answered HTTP 500"),
    ],
)  # fmt: skip
def test_prometheus_otlp_receiver_hint(status: int, body: str, expected: str | None) -> None:
    """The receiver is on only when an empty OTLP request is accepted; a 404 naming the flag
    means Prometheus was started without it."""
    hint = otlp_receiver_hint(status, body)
    assert hint is None if expected is None else expected in (hint or "")


@pytest.mark.parametrize(
    ("max_exemplars", "features", "expected"),
    [
        (100000.0, "exemplar-storage", None),
        (100000.0, None, None),
        (None, "exemplar-storage", None),
        (None, None, None),
        (0.0, "", "started without --enable-feature=exemplar-storage"),
        (0.0, "native-histograms", "started without --enable-feature=exemplar-storage"),
        (None, "", "started without --enable-feature=exemplar-storage"),
        (0.0, "exemplar-storage", "storage.exemplars.max_exemplars is 0"),
    ],
)
def test_exemplar_storage_hint(
    max_exemplars: float | None, features: str | None, expected: str | None
) -> None:
    """Exemplar storage is judged by Prometheus' own max-exemplars gauge first, its
    enable-feature flag second."""
    hint = exemplar_storage_hint(max_exemplars, features)
    assert hint is None if expected is None else expected in (hint or "")


@pytest.mark.parametrize(
    ("temporality", "expected"),
    [
        (Temporality.CUMULATIVE, "the collector's metrics pipeline does not reach it"),
        (Temporality.DELTA, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta sends "
         "histograms as deltas, which Prometheus' OTLP receiver refuses"),
        (Temporality.LOWMEMORY, "set OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative"),
    ],
)  # fmt: skip
def test_missing_metric_hint_names_a_delta_temporality(
    temporality: Temporality, expected: str
) -> None:
    """A metric accepted by the collector but absent from Prometheus: a delta preference is the
    cause this process can see; otherwise the collector's metrics pipeline is."""
    assert expected in missing_metric_hint(temporality)


# --- what the exporters say, against receivers that refuse ----------------------------------


@contextmanager
def refusing_http_receiver(status: int) -> Iterator[str]:
    """An OTLP/HTTP endpoint that answers every POST with `status`; yields its base URL."""

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(ThreadingHTTPServer((LOOPBACK, 0), Refuse)) as server:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def refusing_grpc_receiver(code: grpc.StatusCode, details: str) -> Iterator[str]:
    """An OTLP/gRPC endpoint whose three Export methods fail with `code`; yields its URL."""

    def export(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, details)

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        Export = staticmethod(export)

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        Export = staticmethod(export)

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        Export = staticmethod(export)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.stop(grace=None)


def doctor(environ: dict[str, str], **options: Any) -> tuple[int, str]:
    """Run the doctor in process with `environ`; returns its exit status and UTF-8 output."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8")
    code = run_doctor(
        DoctorOptions(timeout=options.pop("timeout", 2.0), **options), environ, stream
    )
    stream.flush()
    return code, raw.getvalue().decode()


def failed_lines(output: str) -> list[str]:
    """Each failed check's line joined with its hint line."""
    lines = output.splitlines()
    return [
        f"{line} {lines[n + 1].strip()}"
        for n, line in enumerate(lines)
        if line.startswith("  ✘") and n + 1 < len(lines)
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "the collector requires a token and none was sent (HTTP 401 Unauthorized)"),
        (503, "the collector refused the data (HTTP 503 Service Unavailable)"),
        (429, "the collector is refusing data (HTTP 429 Too Many Requests)"),
    ],
)
def test_refusing_http_receiver_gives_the_status_hint_for_every_signal(
    status: int, expected: str
) -> None:
    """The HTTP status reaches the hint through the SDK exporter's own log records, for all
    three signals (the SDK drops repeated log messages; the doctor must still see each)."""
    with refusing_http_receiver(status) as url:
        code, output = doctor(
            {GENERIC_ENDPOINT: url, GENERIC_PROTOCOL: "http/protobuf"}, timeout=2.0
        )
    failures = failed_lines(output)
    sends = [line for line in failures if "send a" in line]
    assert code == 1, output
    assert len(sends) == 3, output
    assert all(expected in line for line in sends), output


@pytest.mark.parametrize(
    ("code", "details", "environ", "expected"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, "missing or empty authorization header", {},
         "the collector requires a token and none was sent (gRPC UNAUTHENTICATED)"),
        (grpc.StatusCode.UNAUTHENTICATED, "token mismatch",
         {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20stale"},
         "the collector refused the token in the authorization header"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "data refused due to high memory usage", {},
         "the collector is refusing data (gRPC RESOURCE_EXHAUSTED)"),
    ],
)  # fmt: skip
def test_refusing_grpc_receiver_gives_the_status_hint_for_every_signal(
    code: grpc.StatusCode, details: str, environ: dict[str, str], expected: str
) -> None:
    """The gRPC status and its details reach the hint and the check line, for all signals."""
    with refusing_grpc_receiver(code, details) as url:
        status, output = doctor({GENERIC_ENDPOINT: url, **environ}, timeout=2.0)
    sends = [line for line in failed_lines(output) if "send a" in line]
    assert status == 1, output
    assert len(sends) == 3, output
    assert all(expected in line and details in line for line in sends), output


# --- probes -----------------------------------------------------------------------------------


def test_probe_tells_grpc_from_http_and_finds_a_closed_port(otlp_sink: OtlpSink) -> None:
    """The gRPC port answers the HTTP/2 preface, the HTTP port with HTTP/1.x; a free port
    refuses the connection."""
    assert probe_endpoint(otlp_sink.grpc_endpoint).transport is Transport.HTTP2
    assert probe_endpoint(otlp_sink.http_endpoint).transport is Transport.HTTP1
    closed = probe_endpoint(f"http://{LOOPBACK}:{free_port()}")
    assert closed.connection is Connection.REFUSED
    plain = probe_endpoint(otlp_sink.http_endpoint.replace("http://", "https://"))
    assert (plain.connection, plain.transport) == (Connection.OK, Transport.PLAINTEXT)


def test_probe_recognises_a_tls_server(tmp_path: Path) -> None:
    """Plaintext at a TLS port is recognised as TLS; over TLS the server is seen as HTTP/1.1."""
    tls = make_tls_files(tmp_path)

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert, tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server):
        port = server.server_address[1]
        assert probe_endpoint(f"http://{LOOPBACK}:{port}").transport is Transport.TLS
        assert probe_endpoint(f"https://{LOOPBACK}:{port}").transport is Transport.HTTP1


# --- the output -------------------------------------------------------------------------------


def test_marks_fall_back_to_ascii_when_stdout_cannot_print_them() -> None:
    """✔/✘ on a UTF-8 stream, ok/FAIL on an ASCII one, and the exit status follows failures."""
    results = [CheckResult("a", Status.PASS, "fine"), CheckResult("b", Status.FAIL, "bad", "fix")]
    for encoding, marks in (
        ("utf-8", ("  ✔ a: fine", "  ✘ b: bad")),
        ("ascii", ("  ok   a", "  FAIL b")),
    ):
        raw = io.BytesIO()
        stream = io.TextIOWrapper(raw, encoding=encoding)
        report = Reporter(stream)
        for result in results:
            report.check(result)
        assert report.summary() == 1
        stream.flush()
        text = raw.getvalue().decode(encoding)
        assert all(mark in text for mark in marks), text
        assert "      hint: fix" in text
        assert "1 passed, 1 failed" in text


def test_doctor_registers_as_a_subcommand() -> None:
    """`chenu-otel doctor` is one `add_doctor_parser(commands)` away: the sub-command parses the
    same options as `python -m chenu_otel.doctor`."""
    parser = argparse.ArgumentParser(prog="chenu-otel")
    add_doctor_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", "--jaeger", "http://127.0.0.1:16686", "--timeout", "3"])
    assert (args.command, args.jaeger, args.timeout, args.wait) == (
        "doctor",
        "http://127.0.0.1:16686",
        3.0,
        30.0,
    )


@pytest.mark.parametrize("argv", [["--timeout", "1"], ["--wait", "0"], ["--wait", "soon"]])
def test_usage_errors_exit_with_2(argv: list[str]) -> None:
    """A malformed option is a usage error (argparse), not a failed check; an export timeout
    under 2 s is refused because the SDK would not report the status it got."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2


# --- what the doctor sends ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_doctor_sends_a_span_a_log_in_it_and_a_metric_with_its_exemplar(
    otlp_sink: OtlpSink, protocol: str
) -> None:
    """Against a receiver that accepts: exit 0, and what arrived is one span, one log record
    carrying that span's ids and one histogram point whose exemplar names the span."""
    endpoint = otlp_sink.grpc_endpoint if protocol == "grpc" else otlp_sink.http_endpoint
    code, output = doctor({GENERIC_ENDPOINT: endpoint, GENERIC_PROTOCOL: protocol})
    assert code == 0, output
    assert output.count("  ✔ send a") == 3, output
    transport = "grpc" if protocol == "grpc" else "http"
    [(resource, span)] = otlp_sink.spans(transport)
    [(log_resource, record)] = otlp_sink.logs(transport)
    metrics = [m for _, m in otlp_sink.metrics(transport)]
    assert resource["service.name"] == log_resource["service.name"] == "chenu-otel-doctor"
    run_id = resource["service.instance.id"]
    assert f"service.instance.id={run_id}" in output
    assert span.name == "chenu-otel doctor"
    assert (record.trace_id, record.span_id) == (span.trace_id, span.span_id)
    assert attributes_of(record.attributes)["chenu.doctor.run.id"] == run_id
    [histogram] = [m for m in metrics if m.name == "chenu.doctor.probe.duration"]
    [point] = histogram.histogram.data_points
    assert point.count == 1
    [exemplar] = point.exemplars
    assert (exemplar.trace_id, exemplar.span_id) == (span.trace_id, span.span_id)
    assert PROMETHEUS_METRIC == "chenu_doctor_probe_duration_seconds"
    assert span.trace_id.hex() in output


def test_rejected_settings_are_printed_and_fail_the_run(otlp_sink: OtlpSink) -> None:
    """Every warning of the settings reader is printed; a rejected value fails the run even
    when the exports work."""
    environ = {
        GENERIC_ENDPOINT: otlp_sink.grpc_endpoint,
        "OTEL_TRACES_SAMPLER": "sometimes",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-team=ai,broken",
        "OTEL_LOGS_EXPORTER": "console",
    }
    code, output = doctor(environ)
    assert code == 1, output
    for problem in load_settings(environ).problems:
        assert problem in output
    assert "✘ OTEL_* values: 2 rejected" in output
    assert "! your app's settings: OTEL_LOGS_EXPORTER=console: your app does not send logs" in (
        output
    )
    assert output.count("  ✔ send a") == 3, output
    assert "x-team" in output and "headers x-team" in output  # names only, never values


# --- logs backends ------------------------------------------------------------------------------


@contextmanager
def fake_http(route: Callable[[str, dict[str, list[str]]], tuple[int, str, str]]) -> Iterator[str]:
    """A GET-only server answering `route(path, query) -> (status, content type, body)`."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            seen.append(self.path)
            status, content_type, body = route(parts.path, urllib.parse.parse_qs(parts.query))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(ThreadingHTTPServer((LOOPBACK, 0), Handler)) as server:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"


def test_loki_is_queried_by_service_name_and_trace_id() -> None:
    """Contract with Loki's query API (Loki is AGPL and never run here): detected through its
    buildinfo route, queried with `{service_name=...} | trace_id="..."` on query_range."""
    telemetry = make_test_telemetry(load_settings({}))
    wanted = f'{{service_name="chenu-otel-doctor"}} | trace_id="{telemetry.trace_id}"'
    queries: list[str] = []

    def loki(path: str, query: dict[str, list[str]]) -> tuple[int, str, str]:
        if path == "/loki/api/v1/status/buildinfo":
            return 200, "application/json", json.dumps({"version": "3.5.0"})
        if path == "/loki/api/v1/query_range":
            queries.append(query["query"][0])
            values = (
                [["1", "chenu-otel doctor test log record"]] if query["query"][0] == wanted else []
            )
            data = {"resultType": "streams", "result": [{"stream": {}, "values": values}]}
            return 200, "application/json", json.dumps({"status": "success", "data": data})
        return 404, "text/plain", "404 page not found"

    with fake_http(loki) as url:
        result = check_logs(url, telemetry, Deadline.after(2))
    assert result.status is Status.PASS, result
    assert result.name == "Loki has the test log record"
    assert queries and set(queries) == {wanted}


def test_a_catch_all_web_page_is_not_taken_for_a_logs_backend() -> None:
    """A server answering 200 HTML everywhere (a UI) is neither VictoriaLogs nor Loki."""
    telemetry = make_test_telemetry(load_settings({}))
    with fake_http(lambda path, query: (200, "text/html", "<html></html>")) as url:
        result = check_logs(url, telemetry, Deadline.after(1))
    assert result.status is Status.FAIL
    assert "is neither VictoriaLogs (/select/logsql/query) nor Loki" in result.hint


def test_capped_timeout_bounds_an_export_to_a_silent_endpoint() -> None:
    """An endpoint that accepts connections and never answers costs about --timeout, and the
    hint says it never answered."""
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(64)  # connections complete in the kernel; nothing ever answers
        url = f"http://{LOOPBACK}:{silent.getsockname()[1]}"
        code, output = doctor(
            {GENERIC_ENDPOINT: url, GENERIC_PROTOCOL: "http/protobuf"}, timeout=2.0
        )
    sends = [line for line in failed_lines(output) if "send a" in line]
    assert code == 1
    assert len(sends) == 3, output
    assert all("gave no OTLP answer within 2s" in line for line in sends), output


def test_settings_shown_come_from_the_settings_reader() -> None:
    """The endpoint and protocol printed per signal are the resolved ones (HTTP gets the
    signal path appended to a generic endpoint)."""
    environ = {
        GENERIC_ENDPOINT: f"http://{LOOPBACK}:{free_port()}",
        GENERIC_PROTOCOL: "http/protobuf",
    }
    settings = load_settings(environ)
    _, output = doctor(environ, timeout=2.0)
    for signal, otlp in settings.otlp.items():
        assert f"{signal} exporter" in output
        assert f"OTLP http/protobuf {otlp.endpoint}," in output
