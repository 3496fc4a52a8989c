"""collector/overlays/secure-edge.yaml as the real chenu-otelcol resolves it (validate and
print-config): both OTLP receivers get TLS, token auth and limits from the environment, the
restated extension list keeps every base extension, and no token at all is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    build_collector,
    config_args,
    run_collector_command,
)

pytestmark = pytest.mark.slow

SECURE_EDGE = OVERLAY_DIR / "secure-edge.yaml"
AUTHENTICATOR = "bearertokenauth/edge"
SECOND = 1_000_000_000  # print-config --format=json writes durations in nanoseconds


@pytest.fixture(scope="module")
def collector_binary() -> Path:
    return build_collector()


def resolved(binary: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_collector_command(
        binary, "print-config", "--format=json", *config_args([BASE_CONFIG, SECURE_EDGE]), env=env
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_base_with_secure_edge_validates_with_its_defaults(collector_binary: Path) -> None:
    """With no variable set (default certificate and token-file paths) validate accepts it."""
    result = run_collector_command(
        collector_binary, "validate", *config_args([BASE_CONFIG, SECURE_EDGE])
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_receivers_get_tls_token_auth_and_limits(collector_binary: Path) -> None:
    """gRPC and HTTP each have TLS from the env, the bearer-token authenticator and a size
    limit; gRPC has its per-connection limits, HTTP its timeouts."""
    env = {
        "OTELCOL_TLS_CERT_FILE": "/run/edge/server.crt",
        "OTELCOL_TLS_KEY_FILE": "/run/edge/server.key",
        "OTELCOL_GRPC_MAX_RECV_MSG_SIZE_MIB": "8",
        "OTELCOL_GRPC_MAX_CONCURRENT_STREAMS": "64",
        "OTELCOL_HTTP_MAX_REQUEST_BODY_BYTES": "1048576",
    }
    protocols = resolved(collector_binary, env)["receivers"]["otlp"]["protocols"]
    for name in ("grpc", "http"):
        protocol = protocols[name]
        assert protocol["tls"]["cert_file"] == "/run/edge/server.crt", name
        assert protocol["tls"]["key_file"] == "/run/edge/server.key", name
        assert protocol["tls"]["min_version"] == "1.2", name
        assert protocol["auth"]["authenticator"] == AUTHENTICATOR, name
    grpc = protocols["grpc"]
    assert grpc["max_recv_msg_size_mib"] == 8
    assert grpc["max_concurrent_streams"] == 64
    assert grpc["keepalive"]["enforcement_policy"]["min_time"] == 10 * SECOND
    assert grpc["keepalive"]["server_parameters"]["max_connection_idle"] == 300 * SECOND
    http = protocols["http"]
    assert http["max_request_body_size"] == 1048576
    assert http["read_header_timeout"] == 10 * SECOND
    assert http["compression_algorithms"] == ["", "gzip", "zstd"]


def test_restated_extension_list_keeps_every_base_extension(collector_binary: Path) -> None:
    """Lists replace on merge: the overlay's service.extensions must still name every
    extension the base config runs, plus the authenticator."""
    base = yaml.safe_load(BASE_CONFIG.read_text())["service"]["extensions"]
    merged = resolved(collector_binary)["service"]["extensions"]
    assert set(merged) == {*base, AUTHENTICATOR}, merged


def test_token_from_a_file_by_default(collector_binary: Path) -> None:
    """By default the accepted tokens come from a file (rotation: one token per line)."""
    extension = resolved(collector_binary)["extensions"][AUTHENTICATOR]
    assert extension["filename"] == "/etc/otelcol/auth/token"
    assert extension["scheme"] == "Bearer"
    assert not extension.get("token")


def test_token_from_the_environment_when_the_file_is_switched_off(
    collector_binary: Path,
) -> None:
    """OTELCOL_AUTH_TOKEN_FILE set empty and OTELCOL_AUTH_TOKEN set: the env token is used (and
    print-config does not show it)."""
    env = {"OTELCOL_AUTH_TOKEN_FILE": "", "OTELCOL_AUTH_TOKEN": "edge-canary-token"}
    result = run_collector_command(
        collector_binary,
        "print-config",
        "--format=json",
        *config_args([BASE_CONFIG, SECURE_EDGE]),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "edge-canary-token" not in result.stdout + result.stderr
    extension = json.loads(result.stdout)["extensions"][AUTHENTICATOR]
    assert not extension.get("filename")
    assert extension["token"] == "[REDACTED]"


def test_no_token_at_all_is_refused(collector_binary: Path) -> None:
    """Neither a token file nor a token: the collector refuses the config instead of running
    an open edge."""
    result = run_collector_command(
        collector_binary,
        "validate",
        *config_args([BASE_CONFIG, SECURE_EDGE]),
        env={"OTELCOL_AUTH_TOKEN_FILE": "", "OTELCOL_AUTH_TOKEN": ""},
    )
    assert result.returncode != 0, "an edge without any token was accepted"
    assert "no bearer token provided" in result.stdout + result.stderr


def test_every_variable_the_overlay_reads_is_documented_in_its_header() -> None:
    """Each ${env:NAME...} the overlay reads appears in its header comment."""
    text = SECURE_EDGE.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    used = set(re.findall(r"\$\{env:([A-Z0-9_]+)", body))
    assert used, "the overlay reads no variable"
    undocumented = sorted(name for name in used if name not in header)
    assert not undocumented, f"not documented in the header: {undocumented}"
