"""deploy/kubernetes, checked offline: rendered by the real kustomize (deploy/kubernetes/render,
pinned, built from its Go module), every manifest validated against the Kubernetes 1.35 schemas
in strict mode (kubernetes-validate), and the collector configs the pods mount run through the
real chenu-otelcol with the pods' own arguments and environment. No cluster runs here."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from tests.collector_fixtures import COLLECTOR_DIR, build_collector, run_collector_command
from tests.support import REPO_ROOT

pytestmark = pytest.mark.slow

KUBERNETES_DIR = REPO_ROOT / "deploy" / "kubernetes"
RENDER = KUBERNETES_DIR / "render"
KUBERNETES_VERSION = "1.35.0"
KUSTOMIZATIONS = sorted(
    p.parent.relative_to(KUBERNETES_DIR).as_posix()
    for p in KUBERNETES_DIR.rglob("kustomization.yaml")
)
FLEET = [k for k in KUSTOMIZATIONS if k != "example-app"]
CONFIG_MAP = "chenu-otelcol-config"
CONFIG_MOUNT = "/etc/otelcol"
COLLECTOR_WORKLOADS = ("DaemonSet/chenu-otelcol-agent", "StatefulSet/chenu-otelcol-gateway")
# What the downward API would give the pods, for running their configs here.
DOWNWARD_API = {"spec.nodeName": "node-a", "status.hostIP": "10.0.0.7", "metadata.uid": "uid-1"}


@functools.cache
def render(kustomization: str) -> tuple[dict[str, Any], ...]:
    """The manifests `deploy/kubernetes/render <kustomization>` prints."""
    result = subprocess.run(
        [str(RENDER), kustomization], capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, f"render {kustomization} failed:\n{result.stderr[-4000:]}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(kustomization: str, kind: str, name: str) -> dict[str, Any]:
    """The rendered object; generated ConfigMaps match on their name before the hash suffix."""
    for doc in render(kustomization):
        doc_name = doc["metadata"]["name"]
        if doc["kind"] == kind and (doc_name == name or doc_name.rsplit("-", 1)[0] == name):
            return doc
    raise AssertionError(f"{kustomization} renders no {kind}/{name}")


def workload(kustomization: str, ref: str) -> dict[str, Any]:
    kind, name = ref.split("/")
    return find(kustomization, kind, name)


def container(obj: dict[str, Any], name: str = "otelcol") -> dict[str, Any]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == name]
    return found


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity (Mi/Gi) or a GOMEMLIMIT value (MiB/GiB) in MiB."""
    match = re.fullmatch(r"(\d+)(Mi|Gi|MiB|GiB)", quantity)
    assert match, f"unexpected memory quantity {quantity!r}"
    return int(match[1]) * (1024 if match[2].startswith("G") else 1)


def pod_environment(kustomization: str, spec: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it: envFrom ConfigMaps, then env
    (literal values with $(VAR) expanded, downward API fields, resource fields)."""
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(find(kustomization, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), str(item["value"])
            )
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = DOWNWARD_API[item["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            resource = item["valueFrom"]["resourceFieldRef"]["resource"]
            kind, what = resource.split(".")
            env[item["name"]] = str(spec["resources"][kind][what])
    return env


def materialise(
    kustomization: str, obj: dict[str, Any], where: Path
) -> tuple[list[str], dict[str, str]]:
    """Write the mounted config files to `where`; returns the collector's args pointing there
    and the environment (storage dir moved under `where`)."""
    spec = container(obj)
    for key, text in find(kustomization, "ConfigMap", CONFIG_MAP)["data"].items():
        (where / key).write_text(text)
    args = [arg.replace(CONFIG_MOUNT, str(where)) for arg in spec["args"]]
    env = pod_environment(kustomization, spec)
    env["OTELCOL_STORAGE_DIR"] = str(where / "queue")
    return args, env


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    return build_collector()


# --- schemas ---------------------------------------------------------------------------------


def test_every_kustomization_is_checked() -> None:
    assert {"base", "example-app"} <= set(KUSTOMIZATIONS)
    assert any(k.startswith("overlays/") for k in KUSTOMIZATIONS)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(kustomization: str) -> None:
    """Strict: an unknown or misspelt field anywhere in an object fails, not only a wrong type."""
    documents = render(kustomization)
    assert documents
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_is_refused_by_the_schema_check() -> None:
    """The check above can fail: one typo in the DaemonSet's container is caught."""
    agent = copy.deepcopy(workload("base", COLLECTOR_WORKLOADS[0]))
    container(agent)["imagePulPolicy"] = "IfNotPresent"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePulPolicy"):
        kubernetes_validate.validate(agent, KUBERNETES_VERSION, strict=True)


# --- the collector configs the pods mount ----------------------------------------------------


@pytest.mark.parametrize("kustomization", FLEET)
def test_mounted_configs_are_the_files_in_collector(kustomization: str) -> None:
    """The ConfigMap holds the files of collector/ byte for byte (there is no second copy), and
    every --config of every collector pod names a key of it, mounted at /etc/otelcol."""
    data = find(kustomization, "ConfigMap", CONFIG_MAP)["data"]
    for key, text in data.items():
        (source,) = [p for p in COLLECTOR_DIR.rglob(key) if p.suffix == ".yaml"]
        assert text == source.read_text(), f"{key} differs from {source.relative_to(REPO_ROOT)}"
    for ref in COLLECTOR_WORKLOADS:
        obj = workload(kustomization, ref)
        volumes = {v["name"]: v for v in obj["spec"]["template"]["spec"]["volumes"]}
        (mount,) = [m for m in container(obj)["volumeMounts"] if m["mountPath"] == CONFIG_MOUNT]
        assert (
            volumes[mount["name"]]["configMap"]["name"]
            == find(kustomization, "ConfigMap", CONFIG_MAP)["metadata"]["name"]
        )
        for arg in container(obj)["args"]:
            assert arg.startswith(f"--config={CONFIG_MOUNT}/"), arg
            assert arg.rsplit("/", 1)[1] in data, f"{ref}: {arg} is not in the ConfigMap"


@pytest.mark.parametrize("ref", COLLECTOR_WORKLOADS)
@pytest.mark.parametrize("kustomization", FLEET)
def test_each_collector_pod_runs_a_config_the_real_collector_accepts(
    collector_binary: Path, tmp_path: Path, kustomization: str, ref: str
) -> None:
    """The pod's args over the mounted files, with the pod's environment: `validate` passes."""
    args, env = materialise(kustomization, workload(kustomization, ref), tmp_path)
    result = run_collector_command(collector_binary, "validate", *args, env=env)
    assert result.returncode == 0, f"{kustomization} {ref}: {args}\n{result.stderr}"


@pytest.mark.parametrize("ref", COLLECTOR_WORKLOADS)
def test_probes_and_resources_match_the_collector_config(
    collector_binary: Path, tmp_path: Path, ref: str
) -> None:
    """Probes hit health_check's port; memory_limiter and GOMEMLIMIT stay below the container's
    memory limit with headroom; GOMAXPROCS follows the CPU limit."""
    obj = workload("base", ref)
    args, env = materialise("base", obj, tmp_path)
    result = run_collector_command(
        collector_binary, "print-config", "--format=json", *args, env=env
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    spec = container(obj)
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    health_port = int(config["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
    for probe in ("readinessProbe", "livenessProbe"):
        assert spec[probe]["httpGet"]["path"] == "/"
        assert ports[spec[probe]["httpGet"]["port"]] == health_port, probe
    limit = mebibytes(spec["resources"]["limits"]["memory"])
    memory_limiter = config["processors"]["memory_limiter"]["limit_mib"]
    assert memory_limiter <= 0.85 * limit, (memory_limiter, limit)
    assert memory_limiter >= 0.6 * limit, "the limiter leaves most of the container unused"
    assert mebibytes(env["GOMEMLIMIT"]) <= memory_limiter
    assert env["GOMAXPROCS"] == str(spec["resources"]["limits"]["cpu"])
    metrics_port = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"][
        "prometheus"
    ]["port"]
    assert ports["metrics"] == metrics_port


# --- wiring between the objects --------------------------------------------------------------


@pytest.mark.parametrize("kustomization", FLEET)
def test_agents_find_the_gateways_through_the_headless_service(kustomization: str) -> None:
    agent = workload(kustomization, COLLECTOR_WORKLOADS[0])
    gateway = workload(kustomization, COLLECTOR_WORKLOADS[1])
    env = pod_environment(kustomization, container(agent))
    dns = any("resolver-dns.yaml" in arg for arg in container(agent)["args"])
    service_name = env["OTELCOL_GATEWAY_DNS_NAME" if dns else "OTELCOL_GATEWAY_SERVICE"]
    service = find(kustomization, "Service", service_name)
    assert service["spec"]["clusterIP"] == "None", "trace-id routing needs one address per pod"
    assert gateway["spec"]["serviceName"] == service_name
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    gateway_ports = {p["name"]: p["containerPort"] for p in container(gateway)["ports"]}
    (otlp,) = service["spec"]["ports"]
    assert otlp["port"] == gateway_ports[otlp["targetPort"]] == 4317  # OTELCOL_GATEWAY_PORT
    hpa = find(kustomization, "HorizontalPodAutoscaler", "chenu-otelcol-gateway")
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    assert hpa["spec"]["scaleTargetRef"]["name"] == gateway["metadata"]["name"]
    pdb = find(kustomization, "PodDisruptionBudget", "chenu-otelcol-gateway")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # The disk queue is on the StatefulSet's own volume, where file_storage writes.
    (claim,) = gateway["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(gateway)["volumeMounts"]}
    gateway_env = pod_environment(kustomization, container(gateway))
    assert mounts[claim["metadata"]["name"]] == gateway_env["OTELCOL_STORAGE_DIR"]


def bound_rules(kustomization: str, role_kind: str, role_name: str) -> list[dict[str, Any]]:
    """The rules of a (Cluster)Role, checked to be bound to the agent's ServiceAccount."""
    binding = find(kustomization, f"{role_kind}Binding", role_name)
    assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) == (role_kind, role_name)
    agent = {"kind": "ServiceAccount", "name": "chenu-otelcol-agent", "namespace": "observability"}
    assert agent in binding["subjects"]
    rules: list[dict[str, Any]] = find(kustomization, role_kind, role_name)["rules"]
    return rules


@pytest.mark.parametrize("kustomization", FLEET)
def test_only_the_agent_may_read_the_api_and_only_what_it_needs(kustomization: str) -> None:
    agent = workload(kustomization, COLLECTOR_WORKLOADS[0])
    gateway = workload(kustomization, COLLECTOR_WORKLOADS[1])
    assert agent["spec"]["template"]["spec"]["serviceAccountName"] == "chenu-otelcol-agent"
    assert gateway["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    (pods,) = bound_rules(kustomization, "ClusterRole", "chenu-otelcol-agent")
    assert set(pods["resources"]) == {"pods", "namespaces"}
    assert set(pods["verbs"]) == {"get", "list", "watch"}
    uses_k8s_resolver = not any("resolver-dns" in a for a in container(agent)["args"])
    roles = [d for d in render(kustomization) if d["kind"] == "Role"]
    if uses_k8s_resolver:
        (slices,) = bound_rules(kustomization, "Role", "chenu-otelcol-agent-resolver")
        assert slices == {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        }
    else:
        assert roles == [], "the DNS resolver needs no EndpointSlice access"


def test_network_policies_admit_only_the_intended_senders() -> None:
    agent_policy = find("base", "NetworkPolicy", "chenu-otelcol-agent")
    gateway_policy = find("base", "NetworkPolicy", "chenu-otelcol-gateway")
    otlp_rules = [
        rule
        for rule in agent_policy["spec"]["ingress"]
        if {p["port"] for p in rule["ports"]} & {"otlp-grpc", "otlp-http"}
    ]
    (apps,) = otlp_rules
    assert apps["from"] == [
        {"namespaceSelector": {"matchLabels": {"chenu-otel.io/telemetry": "enabled"}}}
    ]
    otlp_rules = [
        rule
        for rule in gateway_policy["spec"]["ingress"]
        if rule["ports"][0]["port"] == "otlp-grpc"
    ]
    (agents,) = otlp_rules
    agent_labels = workload("base", COLLECTOR_WORKLOADS[0])["spec"]["template"]["metadata"][
        "labels"
    ]
    (sender,) = agents["from"]
    assert set(sender) == {"podSelector"}
    assert sender["podSelector"]["matchLabels"].items() <= agent_labels.items()


def test_the_example_app_sends_to_the_agent_on_its_node() -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the node's IP (downward API) on the agent's hostPort, the
    pod uid is in the resource for k8s_attributes, and its namespace may send to the agents."""
    app = find("example-app", "Deployment", "chenu-demo")
    (spec,) = app["spec"]["template"]["spec"]["containers"]
    by_name = {e["name"]: e for e in spec["env"]}
    assert by_name["NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    host_ports = {
        p["name"]: p["hostPort"]
        for p in container(workload("base", COLLECTOR_WORKLOADS[0]))["ports"]
        if "hostPort" in p
    }
    env = pod_environment("example-app", spec)
    assert (
        env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        == f"http://{DOWNWARD_API['status.hostIP']}:{host_ports['otlp-grpc']}"
    )
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert f"k8s.pod.uid={DOWNWARD_API['metadata.uid']}" in env["OTEL_RESOURCE_ATTRIBUTES"].split(
        ","
    )
    namespace = find("example-app", "Namespace", "chenu")
    assert namespace["metadata"]["labels"]["chenu-otel.io/telemetry"] == "enabled"
    assert app["metadata"]["namespace"] == "chenu"
