"""The fleet configs (collector/fleet/*.yaml over collector/otelcol.yaml), judged by the real
chenu-otelcol: `validate` for every combination of role, resolver and backend overlay, and
`print-config` for the shape that matters (what runs before what, what comes from the env)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.collector_fixtures import (
    BASE_CONFIG,
    COLLECTOR_DIR,
    FLEET_DIR,
    OVERLAY_DIR,
    build_collector,
    config_args,
    run_collector_command,
)

pytestmark = pytest.mark.slow

AGENT = FLEET_DIR / "agent.yaml"
GATEWAY = FLEET_DIR / "gateway.yaml"
AGENT_K8S = FLEET_DIR / "agent-kubernetes.yaml"
RESOLVER_DNS = FLEET_DIR / "resolver-dns.yaml"
FLEET_FILES = [AGENT, GATEWAY, AGENT_K8S, RESOLVER_DNS]
OVERLAYS = sorted(OVERLAY_DIR.glob("*.yaml"))
# In a cluster the DaemonSet sets this from the downward API; k8s_attributes requires it.
K8S_ENV = {"K8S_NODE_NAME": "node-a"}

AGENT_STACKS = {
    "static": [AGENT],
    "dns": [AGENT, RESOLVER_DNS],
    "kubernetes": [AGENT, AGENT_K8S],
    "kubernetes-dns": [AGENT, AGENT_K8S, RESOLVER_DNS],
}
# The exporter of kept traces that goes with each backend overlay (gateway role).
TRACES_EXPORTER = {"tempo": "otlp_grpc/tempo", "vendor": "otlp_http/vendor"}


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    return build_collector()


def run(
    binary: Path, command: str, configs: list[Path], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One collector command over `configs`, with the DaemonSet's node name set by default."""
    args = [command, *(["--format=json"] if command == "print-config" else [])]
    return run_collector_command(
        binary, *args, *config_args(configs), env={**K8S_ENV, **(env or {})}
    )


def validate(binary: Path, configs: list[Path], env: dict[str, str] | None = None) -> str:
    """Validate, fail the test with the collector's message if refused; returns its output."""
    result = run(binary, "validate", configs, env)
    names = " + ".join(p.relative_to(COLLECTOR_DIR).as_posix() for p in configs)
    assert result.returncode == 0, f"validate refused {names}:\n{result.stderr}"
    return str(result.stdout + result.stderr)


def resolved(binary: Path, configs: list[Path], env: dict[str, str] | None = None) -> Any:
    """The merged config as the collector resolves it (print-config, JSON)."""
    result = run(binary, "print-config", configs, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def connector_ids(config: dict[str, Any]) -> set[str]:
    return set(config.get("connectors") or {})


def upstream_processors(config: dict[str, Any], pipeline: str) -> set[str]:
    """Processors data passes through before it leaves `pipeline`: its own, and those of every
    pipeline that feeds it through a connector, transitively."""
    pipelines = config["service"]["pipelines"]
    connectors = connector_ids(config)
    seen: set[str] = set()
    processors: set[str] = set()
    todo = [pipeline]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        processors.update(pipelines[name].get("processors") or [])
        for receiver in pipelines[name]["receivers"]:
            if receiver in connectors:
                todo += [p for p, body in pipelines.items() if receiver in body["exporters"]]
    return processors


def pipelines_exporting_to(config: dict[str, Any], component: str) -> list[str]:
    pipelines = config["service"]["pipelines"]
    return [name for name, body in pipelines.items() if component in body["exporters"]]


# --- validate: every combination ------------------------------------------------------------


@pytest.mark.parametrize("stack", AGENT_STACKS, ids=str)
def test_agent_with_each_resolver_is_valid(collector_binary: Path, stack: str) -> None:
    validate(collector_binary, [BASE_CONFIG, *AGENT_STACKS[stack]])


def test_gateway_is_valid(collector_binary: Path) -> None:
    validate(collector_binary, [BASE_CONFIG, GATEWAY])


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.stem)
@pytest.mark.parametrize("role", ["agent", "gateway"])
def test_each_backend_overlay_composes_with_each_role(
    collector_binary: Path, overlay: Path, role: str
) -> None:
    """Backend overlay first, fleet overlay last: valid for both roles, and the backend overlay's
    metrics and logs exporters survive the fleet overlay."""
    fleet = [AGENT] if role == "agent" else [GATEWAY]
    env = {}
    if role == "gateway" and overlay.stem in TRACES_EXPORTER:
        env["OTELCOL_GATEWAY_TRACES_EXPORTER"] = TRACES_EXPORTER[overlay.stem]
    configs = [BASE_CONFIG, overlay, *fleet]
    validate(collector_binary, configs, env)
    alone = resolved(collector_binary, [BASE_CONFIG, overlay])["service"]["pipelines"]
    merged = resolved(collector_binary, configs, env)["service"]["pipelines"]
    for signal in ("metrics", "logs"):
        assert merged[signal]["exporters"] == alone[signal]["exporters"], signal
    if role == "gateway":
        expected = TRACES_EXPORTER.get(overlay.stem, "otlp_grpc/jaeger")
        assert merged["traces/sampling"]["exporters"] == [expected]


def test_a_fleet_overlay_before_a_backend_overlay_is_refused(collector_binary: Path) -> None:
    """Lists are replaced: the wrong order leaves forward/sampling without a feeding pipeline,
    and the collector refuses the config instead of silently sampling nothing."""
    result = run(collector_binary, "validate", [BASE_CONFIG, GATEWAY, OVERLAY_DIR / "tempo.yaml"])
    print(f"collector said:\n{result.stderr}")
    assert result.returncode != 0
    assert "forward/sampling" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "component"),
    [
        ("OTELCOL_TAIL_SAMPLING_PERCENTAGE", "lots", "sampling_percentage"),
        ("OTELCOL_TAIL_SAMPLING_LATENCY_THRESHOLD_MS", "fast", "threshold_ms"),
        ("OTELCOL_TAIL_SAMPLING_DECISION_WAIT", "soon", "decision_wait"),
        ("OTELCOL_GATEWAY_TRACES_EXPORTER", "otlp_grpc/nowhere", "otlp_grpc/nowhere"),
    ],
)
def test_gateway_env_values_reach_the_components(
    collector_binary: Path, variable: str, value: str, component: str
) -> None:
    """A malformed value is refused naming the setting it feeds: the variable is wired in
    (print-config does not show the policies' settings, validate does judge them)."""
    result = run(collector_binary, "validate", [BASE_CONFIG, GATEWAY], {variable: value})
    assert result.returncode != 0, f"{variable}={value} was accepted"
    assert component in result.stderr, result.stderr


@pytest.mark.parametrize("percentage", ["0", "12.5", "100"])
def test_sampling_share_accepts_the_whole_range(collector_binary: Path, percentage: str) -> None:
    validate(
        collector_binary, [BASE_CONFIG, GATEWAY], {"OTELCOL_TAIL_SAMPLING_PERCENTAGE": percentage}
    )


# --- print-config: the gateway's shape -------------------------------------------------------


def test_gateway_counts_span_metrics_before_tail_sampling(collector_binary: Path) -> None:
    """span_metrics is fed only by pipelines no tail_sampling runs before, and the kept-trace
    exporter only after tail_sampling: RED metrics count every span, the backend gets the kept
    ones. Moving tail_sampling into the ingest pipeline, or span_metrics after it, fails here."""
    config = resolved(collector_binary, [BASE_CONFIG, GATEWAY])
    pipelines = config["service"]["pipelines"]
    feeding = pipelines_exporting_to(config, "span_metrics")
    assert feeding == ["traces"]
    for name in feeding:
        assert "tail_sampling" not in upstream_processors(config, name), name
    assert pipelines["traces"]["receivers"] == ["otlp"]
    assert pipelines["traces"]["exporters"] == ["span_metrics", "forward/sampling"]
    assert pipelines["traces"]["processors"][0] == "memory_limiter"
    assert "redaction" in pipelines["traces"]["processors"]
    sampled = pipelines_exporting_to(config, "otlp_grpc/jaeger")
    assert sampled == ["traces/sampling"]
    assert "tail_sampling" in upstream_processors(config, "traces/sampling")
    assert pipelines["traces/sampling"]["receivers"] == ["forward/sampling"]
    assert "span_metrics" in pipelines["metrics"]["receivers"]


def test_gateway_queues_kept_traces_on_disk(collector_binary: Path) -> None:
    config = resolved(collector_binary, [BASE_CONFIG, GATEWAY])
    queue = config["exporters"]["otlp_grpc/jaeger"]["sending_queue"]
    assert queue["storage"] == "file_storage"
    assert queue["batch"]["flush_timeout"] > 0
    # tail_sampling releases one trace at a time: batched before the disk queue, which pays one
    # fsync'd write per request; nothing batches ahead of the receiver's ack.
    assert config["service"]["pipelines"]["traces/sampling"]["processors"] == [
        "tail_sampling",
        "batch/kept",
    ]
    assert "batch/kept" not in config["service"]["pipelines"]["traces"]["processors"]
    assert config["processors"]["batch/kept"]["timeout"] == 1_000_000_000
    assert config["exporters"]["otlp_grpc/jaeger"]["retry_on_failure"]["max_elapsed_time"] == 0


def test_gateway_tail_sampling_settings_come_from_the_environment(collector_binary: Path) -> None:
    defaults = resolved(collector_binary, [BASE_CONFIG, GATEWAY])["processors"]["tail_sampling"]
    assert defaults["decision_wait"] == 10 * 10**9
    assert defaults["num_traces"] == 100_000
    env = {
        "OTELCOL_TAIL_SAMPLING_DECISION_WAIT": "7s",
        "OTELCOL_TAIL_SAMPLING_NUM_TRACES": "5000",
    }
    custom = resolved(collector_binary, [BASE_CONFIG, GATEWAY], env)["processors"]["tail_sampling"]
    assert custom["decision_wait"] == 7 * 10**9
    assert custom["num_traces"] == 5000
    assert custom["decision_cache"]["sampled_cache_size"] > custom["num_traces"]


def test_gateway_policies_keep_errors_slow_traces_and_a_share() -> None:
    """The policies as written (print-config cannot show them): any one keeps a trace."""
    policies = yaml.safe_load(GATEWAY.read_text())["processors"]["tail_sampling"]["policies"]
    by_type = {p["type"]: p for p in policies}
    assert set(by_type) == {"status_code", "latency", "probabilistic"}
    assert by_type["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert (
        "OTELCOL_TAIL_SAMPLING_LATENCY_THRESHOLD_MS"
        in by_type["latency"]["latency"]["threshold_ms"]
    )
    share = by_type["probabilistic"]["probabilistic"]["sampling_percentage"]
    assert "OTELCOL_TAIL_SAMPLING_PERCENTAGE" in share
    # No `drop`/`and`/`not` policy that could veto an error trace.
    assert all(p["type"] in by_type for p in policies) and len(policies) == 3


# --- print-config: the agent's shape ---------------------------------------------------------


@pytest.mark.parametrize("stack", AGENT_STACKS, ids=str)
def test_agent_routes_traces_by_trace_id_and_sends_metrics_and_logs_straight(
    collector_binary: Path, stack: str
) -> None:
    config = resolved(collector_binary, [BASE_CONFIG, *AGENT_STACKS[stack]])
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["load_balancing"]
    assert config["exporters"]["load_balancing"]["routing_key"] == "traceID"
    # The agent computes no span_metrics: the gateways do, before sampling.
    assert "span_metrics" not in pipelines["metrics"]["receivers"]
    assert "span_metrics" not in {e for p in pipelines.values() for e in p["exporters"]}
    assert pipelines["metrics"]["exporters"] == ["otlp_http/prometheus"]
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]
    for name, pipeline in pipelines.items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", name
        assert {"redaction", "resource/host"} <= set(processors), name
        if "kubernetes" in stack:
            # k8s_attributes needs the sender's address: only the limiter runs before it.
            assert processors[1] == "k8s_attributes", name
    # Per gateway: a queue (a dead gateway stalls only its share) retried without a deadline.
    otlp = config["exporters"]["load_balancing"]["protocol"]["otlp"]
    assert otlp["sending_queue"]["queue_size"] > 0
    assert otlp["sending_queue"]["block_on_overflow"] is False
    assert otlp["retry_on_failure"]["max_elapsed_time"] == 0


def test_agent_static_resolver_lists_the_gateways_from_the_environment(
    collector_binary: Path,
) -> None:
    endpoints = "10.0.0.1:4317,10.0.0.2:4317,10.0.0.3:4317"
    config = resolved(
        collector_binary, [BASE_CONFIG, AGENT], {"OTELCOL_GATEWAY_ENDPOINTS": endpoints}
    )
    resolver = config["exporters"]["load_balancing"]["resolver"]
    assert resolver["static"]["hostnames"] == endpoints.split(",")
    assert resolver["dns"] is None and resolver["k8s"] is None


def test_agent_dns_and_k8s_resolvers_replace_the_static_list(collector_binary: Path) -> None:
    dns = resolved(
        collector_binary,
        [BASE_CONFIG, AGENT, RESOLVER_DNS],
        {"OTELCOL_GATEWAY_DNS_NAME": "gw.example.internal", "OTELCOL_GATEWAY_PORT": "14317"},
    )["exporters"]["load_balancing"]["resolver"]
    assert dns["static"] is None and dns["k8s"] is None
    assert (dns["dns"]["hostname"], dns["dns"]["port"]) == ("gw.example.internal", "14317")
    k8s = resolved(
        collector_binary,
        [BASE_CONFIG, AGENT, AGENT_K8S],
        {"OTELCOL_GATEWAY_SERVICE": "gw.telemetry", "OTELCOL_GATEWAY_PORT": "14317"},
    )["exporters"]["load_balancing"]["resolver"]
    assert k8s["static"] is None and k8s["dns"] is None
    assert (k8s["k8s"]["service"], k8s["k8s"]["ports"]) == ("gw.telemetry", [14317])


def test_agent_host_name_comes_from_the_environment(
    collector_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTELCOL_HOST_NAME, else the HOSTNAME a shell or systemd exports, else "unknown"."""
    monkeypatch.delenv("OTELCOL_HOST_NAME", raising=False)
    monkeypatch.delenv("HOSTNAME", raising=False)

    def host_name(env: dict[str, str]) -> str:
        config = resolved(collector_binary, [BASE_CONFIG, AGENT], env)
        (action,) = config["processors"]["resource/host"]["attributes"]
        assert (action["key"], action["action"]) == ("host.name", "insert")
        return str(action["value"])

    assert host_name({"OTELCOL_HOST_NAME": "node-7", "HOSTNAME": "box"}) == "node-7"
    assert host_name({"HOSTNAME": "box"}) == "box"
    assert host_name({}) == "unknown"


def test_the_kubernetes_agent_needs_its_node_name(collector_binary: Path) -> None:
    """Without K8S_NODE_NAME k8s_attributes would watch every pod of the cluster: refused."""
    configs = config_args([BASE_CONFIG, AGENT, AGENT_K8S])
    result = run_collector_command(collector_binary, "validate", *configs)
    assert result.returncode != 0
    assert "K8S_NODE_NAME" in result.stderr


# --- the files document what they read ------------------------------------------------------


@pytest.mark.parametrize("path", FLEET_FILES, ids=lambda p: p.stem)
def test_every_variable_a_fleet_file_reads_is_documented(path: Path) -> None:
    """Each ${env:VAR} a fleet file reads is named in its header, or in the base config's
    header for the variables the base config already documents."""

    def header(config: Path) -> str:
        return "\n".join(line for line in config.read_text().splitlines() if line.startswith("#"))

    documented = header(path) + header(BASE_CONFIG)
    body = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
    used = set(re.findall(r"\$\{env:([A-Z0-9_]+)", body))
    assert used, f"{path.name} reads no variable"
    undocumented = {name for name in used if not re.search(rf"\b{name}\b", documented)}
    assert not undocumented, f"{path.name}: {sorted(undocumented)} documented nowhere"
