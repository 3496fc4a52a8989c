"""A chenu-otelcol behind collector/overlays/secure-edge.yaml, for e2e tests and bench/fuzz.

`make_tls_files` makes a throwaway CA and a server certificate for 127.0.0.1 and localhost with
the `cryptography` package. `EdgeCollector` starts a downstream collector (the backend stand-in:
Jaeger, Prometheus and Loki all point at it, and it writes what it receives as OTLP JSON lines)
and the edge collector (base config + secure-edge overlay, the TLS files, a token file) on
loopback, then speaks to it as a client on another host would: OTLP/HTTP over TLS (`post`) and
OTLP/gRPC over TLS (`export_grpc`), with the right token, a wrong one, none, or in plaintext.
It also reads what the collector says about itself: its own metrics (`metric_total`) and the
RSS of its process from /proc (`memory`).
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import secrets
import socket
import ssl
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client.parser import text_string_to_metric_families

from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    CollectorProcess,
    DownstreamCollector,
    OtlpData,
)
from tests.e2e.otlp_payloads import GRPC_METHODS, Signal
from tests.support import LOOPBACK, http_ok

SECURE_EDGE = OVERLAY_DIR / "secure-edge.yaml"
#: What `post`/`export_grpc` send when told `token=DEFAULT_TOKEN`: the edge's first token.
DEFAULT_TOKEN = object()
KIB = 1024


@dataclass(frozen=True)
class TlsFiles:
    """A CA certificate (what clients trust) and the server certificate and key it signed."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path, hosts: Sequence[str] = (LOOPBACK, "localhost")) -> TlsFiles:
    """Write a fresh CA and a server certificate valid for `hosts` (IPs or DNS names)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    lifetime = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chenu-otel test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(lifetime[0])
        .not_valid_after(lifetime[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(lifetime[0])
        .not_valid_after(lifetime[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "tls.crt", directory / "tls.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class GrpcAnswer:
    code: grpc.StatusCode
    details: str


@dataclass(frozen=True)
class Memory:
    """Resident memory of the collector process now and at its peak, from /proc (bytes)."""

    rss: int
    peak: int


@dataclass
class EdgeCollector:
    """The secured edge with a downstream backend, both on loopback; see the module docstring."""

    binary: Path
    work_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    extra_configs: Sequence[Path] = ()
    tokens: tuple[str, ...] = field(
        default_factory=lambda: (secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    )
    name: str = "edge"

    def __post_init__(self) -> None:
        self.tls = make_tls_files(self.work_dir / "tls")
        self.token_file = self.work_dir / "auth" / "tokens"
        self.write_tokens(self.tokens)
        self.backend = DownstreamCollector(
            self.binary,
            self.work_dir / "logs",
            self.work_dir / "backend",
            name=f"{self.name}-backend",
            metrics_path="/api/v1/otlp/v1/metrics",
            logs_path="/otlp/v1/logs",
        )
        self.collector = CollectorProcess(
            self.binary,
            [BASE_CONFIG, SECURE_EDGE, *self.extra_configs],
            log_dir=self.work_dir / "logs",
            storage_dir=self.work_dir / "storage",
            name=self.name,
            env={
                **self.backend.backend_env(),
                "OTELCOL_TLS_CERT_FILE": str(self.tls.cert),
                "OTELCOL_TLS_KEY_FILE": str(self.tls.key),
                "OTELCOL_AUTH_TOKEN_FILE": str(self.token_file),
                **self.env,
            },
        )

    # --- life cycle ---------------------------------------------------------------------------
    def write_tokens(self, tokens: Sequence[str]) -> None:
        """Replace the token file (one token per line, a comment after it)."""
        self.token_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{token} # client {n}" for n, token in enumerate(tokens, start=1)]
        self.token_file.write_text("\n".join(lines) + "\n")
        self.token_file.chmod(0o600)

    def start(self) -> EdgeCollector:
        self.backend.start()
        try:
            self.collector.start()
        except BaseException:
            self.backend.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.collector.stop()
        finally:
            self.backend.stop()

    def __enter__(self) -> EdgeCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        process = self.collector.process
        assert process is not None and process.proc is not None, "the edge is not running"
        return process.proc.pid

    def alive(self) -> bool:
        """The process still runs and its health check answers."""
        process = self.collector.process
        if process is None or process.proc is None or process.proc.poll() is not None:
            return False
        try:
            return http_ok(f"http://{LOOPBACK}:{self.collector.health_port}/")
        except OSError:
            return False

    def output(self) -> str:
        return self.collector.output()

    # --- clients ------------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls.ca))

    def _authorization(self, token: object) -> str | None:
        if token is DEFAULT_TOKEN:
            return f"Bearer {self.tokens[0]}"
        return None if token is None else f"Bearer {token}"

    def post(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/x-protobuf",
        token: object = DEFAULT_TOKEN,
        headers: Mapping[str, str] | None = None,
        tls: bool = True,
        timeout: float = 30.0,
    ) -> HttpAnswer:
        """POST to the OTLP/HTTP receiver (TLS unless `tls=False`); `token=None` sends none."""
        connection: http.client.HTTPConnection
        if tls:
            connection = http.client.HTTPSConnection(
                LOOPBACK, self.collector.http_port, context=self.ssl_context(), timeout=timeout
            )
        else:
            connection = http.client.HTTPConnection(
                LOOPBACK, self.collector.http_port, timeout=timeout
            )
        sent = {"Content-Type": content_type, **(headers or {})}
        if (authorization := self._authorization(token)) is not None:
            sent["Authorization"] = authorization
        try:
            connection.request("POST", path, body=body, headers=sent)
            response = connection.getresponse()
            return HttpAnswer(response.status, response.read(), dict(response.getheaders()))
        finally:
            connection.close()

    @property
    def grpc_target(self) -> str:
        return f"{LOOPBACK}:{self.collector.grpc_port}"

    def export_grpc(
        self,
        signal: Signal,
        payload: bytes,
        *,
        token: object = DEFAULT_TOKEN,
        tls: bool = True,
        compression: grpc.Compression | None = None,
        timeout: float = 30.0,
    ) -> GrpcAnswer:
        """One OTLP/gRPC Export call with `payload` sent as is (valid or not)."""
        channel = (
            grpc.secure_channel(
                self.grpc_target, grpc.ssl_channel_credentials(self.tls.ca.read_bytes())
            )
            if tls
            else grpc.insecure_channel(self.grpc_target)
        )
        metadata = []
        if (authorization := self._authorization(token)) is not None:
            metadata.append(("authorization", authorization))
        with channel:
            export = channel.unary_unary(
                GRPC_METHODS[signal],
                request_serializer=bytes,
                response_deserializer=bytes,
            )
            try:
                export(payload, metadata=metadata, timeout=timeout, compression=compression)
            except grpc.RpcError as error:
                return GrpcAnswer(error.code(), error.details() or "")
        return GrpcAnswer(grpc.StatusCode.OK, "")

    # --- what the collector says about itself -------------------------------------------------
    def own_metrics(self) -> str:
        return self.collector.own_metrics()

    def metric_total(self, sample: str, **labels: str) -> float:
        """Sum of the collector's own metric samples named `sample` whose labels include
        `labels` (0 when there is none yet)."""
        total = 0.0
        for family in text_string_to_metric_families(self.own_metrics()):
            for point in family.samples:
                if point.name == sample and all(
                    point.labels.get(k) == v for k, v in labels.items()
                ):
                    total += point.value
        return total

    def memory(self) -> Memory:
        """VmRSS and VmHWM (peak RSS) of the collector process."""
        fields: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) * KIB
        return Memory(rss=fields["VmRSS"], peak=fields["VmHWM"])

    # --- what reached the backend -------------------------------------------------------------
    def received(self) -> OtlpData:
        """Everything the backend received, parsed (do not use after sending nested values
        deeper than Python's JSON parser accepts: see `backend_lines`)."""
        return self.backend.received()

    def backend_lines(self, containing: str) -> list[str]:
        """Raw OTLP JSON lines the backend wrote that contain `containing` (not parsed, so a
        line Python cannot parse, such as a value nested 10,000 deep, does no harm)."""
        lines: list[str] = []
        for path in self.backend.outputs():
            if path.exists():
                lines += [
                    ln for ln in path.read_text(errors="replace").splitlines() if containing in ln
                ]
        return lines


def http2_settings(port: int, ca: Path) -> dict[int, int]:
    """The SETTINGS a TLS server on `port` announces after an HTTP/2 preface (ALPN h2).

    Setting 3 is SETTINGS_MAX_CONCURRENT_STREAMS: the per-connection limit on parallel
    requests. Raises if the server does not negotiate h2.
    """
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((LOOPBACK, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        if tls.selected_alpn_protocol() != "h2":
            raise RuntimeError(f"port {port} did not negotiate HTTP/2 over TLS")
        empty_settings = (0).to_bytes(3, "big") + b"\x04\x00" + (0).to_bytes(4, "big")
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + empty_settings)
        received = b""
        while True:
            while len(received) < 9:
                received += _recv(tls)
            length, frame_type = int.from_bytes(received[:3], "big"), received[3]
            while len(received) < 9 + length:
                received += _recv(tls)
            payload, received = received[9 : 9 + length], received[9 + length :]
            if frame_type == 4:  # the server's first SETTINGS frame
                return dict(struct.unpack(">HI", payload[i : i + 6]) for i in range(0, length, 6))


def _recv(sock: ssl.SSLSocket) -> bytes:
    chunk = sock.recv(4096)
    if not chunk:
        raise RuntimeError("the server closed the connection before sending SETTINGS")
    return chunk
