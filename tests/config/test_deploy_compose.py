"""deploy/compose.yaml and the backend configs it mounts, checked without Docker: structure,
pinned versions in one place, loopback-only ports, no default Grafana password, Alertmanager
receivers off unless configured (rendered and checked by the real amtool), Loki ready for OTLP."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.collector_fixtures import BASE_CONFIG, build_collector
from tests.deploy_files import DEPLOY, backend_binary, load_yaml
from tests.support import REPO_ROOT

COMPOSE = DEPLOY / "compose.yaml"
ENV_FILE = DEPLOY / ".env"
RENDER = DEPLOY / "alertmanager" / "render-config.sh"
REQUIRED_SERVICES = {
    "otel-collector", "prometheus", "alertmanager", "jaeger", "loki", "grafana", "redis",
    "demo", "loadgen",
}


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def env_file() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_compose_has_every_service_of_the_pipeline() -> None:
    assert set(compose()["services"]) >= REQUIRED_SERVICES


def test_every_image_version_comes_from_the_env_file() -> None:
    """Images are pinned in deploy/.env only: compose names a variable, the file gives a tag."""
    versions = env_file()
    services = compose()["services"]
    built_here = {s.get("image") for s in services.values() if "build" in s}
    for name, service in services.items():
        image = service.get("image")
        if image is None or image in built_here:
            continue
        match = re.fullmatch(r"[\w./-]+:\$\{(\w+)\}", image)
        assert match, f"{name}: image {image!r} is not pinned through deploy/.env"
        assert versions.get(match.group(1)), f"{name}: {match.group(1)} missing from deploy/.env"
        assert versions[match.group(1)] != "latest"


def test_versions_match_the_native_builds() -> None:
    """Compose images and the natively built backends/collector are the same releases."""
    versions = env_file()
    backends = (REPO_ROOT / "scripts" / "build-backends").read_text()
    prometheus_module = re.search(r'PROMETHEUS_VERSION="v0\.(\d+)\.(\d+)"', backends)
    assert prometheus_module
    minor = int(prometheus_module.group(1)) - 300
    assert versions["PROMETHEUS_VERSION"] == f"v3.{minor}.{prometheus_module.group(2)}"
    assert f'ALERTMANAGER_VERSION="{versions["ALERTMANAGER_VERSION"]}"' in backends
    manifest = (REPO_ROOT / "collector" / "manifest.yaml").read_text()
    assert f"v{versions['OTELCOL_CONTRIB_VERSION']}" in manifest


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_files_mounted_from_the_repository_exist() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).exists(), name


def test_prometheus_runs_with_otlp_receiver_and_exemplar_storage() -> None:
    command = compose()["services"]["prometheus"]["command"]
    assert "--web.enable-otlp-receiver" in command
    assert "--enable-feature=exemplar-storage" in command
    assert "--config.file=/etc/prometheus/prometheus.yml" in command


def test_collector_runs_the_repository_config_against_the_compose_backends() -> None:
    collector = compose()["services"]["otel-collector"]
    assert "--config=/etc/otelcol/otelcol.yaml" in collector["command"]
    assert "../collector:/etc/otelcol:ro" in collector["volumes"]
    assert (REPO_ROOT / "collector" / "otelcol.yaml").exists()
    env = collector["environment"]
    assert env["PROMETHEUS_OTLP_ENDPOINT"] == "http://prometheus:9090/api/v1/otlp"
    assert env["LOKI_OTLP_ENDPOINT"] == "http://loki:3100/otlp"
    assert env["JAEGER_OTLP_ENDPOINT"] == "jaeger:4317"


def test_grafana_has_no_default_password_and_anonymous_is_viewer_at_most() -> None:
    env = compose()["services"]["grafana"]["environment"]
    password = env["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?.+\}", password), password
    assert env.get("GF_SECURITY_ADMIN_USER") != "admin"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_loki_accepts_otlp_with_structured_metadata_on_schema_v13() -> None:
    config = load_yaml(DEPLOY / "loki" / "config.yaml")
    assert config["limits_config"]["allow_structured_metadata"] is True
    schema = config["schema_config"]["configs"][-1]
    assert (schema["schema"], schema["store"]) == ("v13", "tsdb")


# --- Alertmanager -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def amtool() -> Path:
    return backend_binary("amtool")


def render(tmp_path: Path, **env: str) -> tuple[Path, str]:
    rendered = tmp_path / "rendered" / "alertmanager.yml"
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY"}
    }
    result = subprocess.run(
        ["sh", str(RENDER)],
        env={**base, "ALERTMANAGER_TEMPLATE": str(DEPLOY / "alertmanager" / "alertmanager.yml"),
             "ALERTMANAGER_RENDERED": str(rendered), **env},
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    return rendered, result.stderr


def check_config(amtool: Path, path: Path) -> str:
    result = subprocess.run(
        [str(amtool), "check-config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_alertmanager_without_receivers_configured_notifies_nobody(
    amtool: Path, tmp_path: Path
) -> None:
    rendered, _ = render(tmp_path)
    check_config(amtool, rendered)
    routes = load_yaml(rendered)["route"]["routes"]
    assert {route["receiver"] for route in routes} == {"null"}


def test_alertmanager_routes_to_slack_and_pagerduty_when_configured(
    amtool: Path, tmp_path: Path
) -> None:
    """Configured receivers are routed to; the secrets sit in files, not in the config."""
    webhook = "https://hooks.slack.example/services/T0/B0/canary-webhook"
    key = "canary-routing-key-0123456789abcdef"
    rendered, _ = render(
        tmp_path, SLACK_WEBHOOK_URL=webhook, PAGERDUTY_ROUTING_KEY=key, SLACK_CHANNEL="#ops"
    )
    check_config(amtool, rendered)
    config = load_yaml(rendered)
    assert [route["receiver"] for route in config["route"]["routes"]] == ["slack", "pagerduty"]
    text = rendered.read_text()
    assert webhook not in text and key not in text
    assert (rendered.parent / "slack_webhook_url").read_text() == webhook
    assert (rendered.parent / "pagerduty_routing_key").read_text() == key
    slack = next(r for r in config["receivers"] if r["name"] == "slack")
    assert slack["slack_configs"][0]["channel"] == "#ops"


def test_alertmanager_template_itself_is_not_a_valid_config(amtool: Path) -> None:
    """The placeholders must be rendered: the raw template fails amtool's check."""
    result = subprocess.run(
        [str(amtool), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0


def test_jaeger_config_is_valid_for_the_pinned_jaeger_v2() -> None:
    """The real Jaeger v2 binary (same release as the image) validates deploy/jaeger/config.yaml."""
    result = subprocess.run(
        [str(backend_binary("jaeger")), "validate", "--config",
         str(DEPLOY / "jaeger" / "config.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "JAEGER_LISTEN_HOST": "127.0.0.1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def compose_default(value: object) -> str:
    """A compose value with `${NAME:-default}` interpolated as if NAME were unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


def test_collector_config_is_valid_with_the_compose_environment(tmp_path: Path) -> None:
    """collector/otelcol.yaml with exactly the environment compose gives the collector service
    passes the real collector's validate (our distribution: same release as the contrib image)."""
    service_env = compose()["services"]["otel-collector"]["environment"]
    env = {str(k): compose_default(v) for k, v in service_env.items()}
    env["OTELCOL_STORAGE_DIR"] = str(tmp_path)  # the volume path exists only in the container
    result = subprocess.run(
        [str(build_collector()), "validate", "--config", str(BASE_CONFIG)],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
