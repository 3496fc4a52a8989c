"""Look at an OTLP endpoint with raw sockets: does anything listen, and what does it speak.

Run only after an export failed, to tell apart what the exporter's own error blurs: nothing
listening (connection refused), a gRPC client at an HTTP/1.1 port and the reverse, TLS where
plaintext was expected and the reverse. Every step is bounded by `timeout`; nothing is sent but
a protocol greeting (the HTTP/2 connection preface, or a ``GET /``), and never any telemetry.
"""

from __future__ import annotations

import socket
import ssl
from typing import Final
from urllib.parse import urlsplit

from chenu_otel.doctor.hints import Connection, EndpointProbe, Transport

__all__ = ["probe_endpoint"]

#: The HTTP/2 client connection preface followed by an empty SETTINGS frame (RFC 9113 §3.4).
_HTTP2_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_HTTP1_REQUEST: Final = b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
_SETTINGS_FRAME_TYPE: Final = 4
_TLS_ALERT_RECORD: Final = 0x15


def probe_endpoint(endpoint: str, *, timeout: float = 2.0) -> EndpointProbe:
    """Connect to `endpoint` (``http(s)://host:port[/path]``) and find out what answers."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return EndpointProbe(host, port, Connection.UNRESOLVED, detail=str(exc))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        return EndpointProbe(host, port, Connection.REFUSED)
    except TimeoutError:
        return EndpointProbe(host, port, Connection.TIMEOUT)
    except OSError as exc:
        return EndpointProbe(host, port, Connection.UNREACHABLE, detail=exc.strerror or str(exc))
    sniff = _tls_transport if tls else _plain_transport
    transport = sniff(host, port, timeout)
    return EndpointProbe(host, port, Connection.OK, transport)


def _plain_transport(host: str, port: int, timeout: float) -> Transport:
    """HTTP/2 (gRPC) servers answer the preface with SETTINGS, HTTP/1.1 servers with a status
    line; a TLS server sends an alert or hangs up, and then completes a TLS handshake."""
    first = _exchange(host, port, timeout, _HTTP2_PREFACE)
    if first is None:  # silence: not a TLS server either, which would have refused the preface
        return Transport.UNKNOWN
    kind = _classify(first)
    if kind is not Transport.UNKNOWN:
        return kind
    if _tls_handshake(host, port, timeout, alpn=["h2", "http/1.1"]) is not None:
        return Transport.TLS
    return Transport.UNKNOWN


def _tls_transport(host: str, port: int, timeout: float) -> Transport:
    """Over TLS an HTTP/1.1 server answers ``GET /`` (ALPN http/1.1); a gRPC server refuses
    that protocol and answers the HTTP/2 preface instead. A plaintext server fails the
    handshake."""
    request = _HTTP1_REQUEST % host.encode()
    selected = _tls_handshake(host, port, timeout, alpn=["http/1.1"], send=request)
    if selected and _classify(selected) is Transport.HTTP1:
        return Transport.HTTP1
    over_h2 = _tls_handshake(host, port, timeout, alpn=["h2"], send=_HTTP2_PREFACE)
    if over_h2 is not None:
        return Transport.HTTP2 if _classify(over_h2 or b"") is Transport.HTTP2 else Transport.TLS
    if selected is not None:
        return Transport.TLS
    plain = _exchange(host, port, timeout, _HTTP2_PREFACE)
    if plain and _classify(plain) is not Transport.UNKNOWN:
        return Transport.PLAINTEXT
    return Transport.UNKNOWN


def _classify(first_bytes: bytes) -> Transport:
    # An HTTP/1.x server answers the preface with a status line, or (as HTTP/0.9) a bare page.
    if first_bytes.startswith((b"HTTP/", b"<")):
        return Transport.HTTP1
    if len(first_bytes) >= 9 and first_bytes[3] == _SETTINGS_FRAME_TYPE:
        return Transport.HTTP2
    if first_bytes[:1] == bytes([_TLS_ALERT_RECORD]):
        return Transport.TLS
    return Transport.UNKNOWN


def _exchange(host: str, port: int, timeout: float, greeting: bytes) -> bytes | None:
    """Send `greeting` on a fresh connection and return the first bytes that come back: b""
    when the server hangs up or resets, None when it says nothing within `timeout`."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(greeting)
            return _read_some(sock)
    except OSError:
        return b""


def _read_some(sock: socket.socket | ssl.SSLSocket, wanted: int = 9) -> bytes | None:
    received = b""
    try:
        while len(received) < wanted:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        return received or None
    except OSError:
        pass
    return received


def _tls_handshake(
    host: str, port: int, timeout: float, *, alpn: list[str], send: bytes = b""
) -> bytes | None:
    """None when the TLS handshake fails; else the first bytes answered to `send` (b"" when
    nothing is sent or answered). The certificate is not verified: this only asks whether TLS
    is spoken."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            if not send:
                return b""
            tls.sendall(send)
            return _read_some(tls) or b""
    except (OSError, ssl.SSLError):
        return None
