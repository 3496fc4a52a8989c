"""Grafana provisioning in deploy/grafana: datasources cross-linked by fixed uids, dashboards whose
every PromQL expression is valid (promtool) and names only metrics from the catalogue."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_files import (
    DASHBOARDS_DIR,
    DATASOURCES_DIR,
    GRAFANA_DIR,
    alert_rules,
    backend_binary,
    dashboard_files,
    dashboard_targets,
    load_yaml,
    metric_names,
    promql_expressions,
)
from tests.support import REPO_ROOT

REQUIRED_DASHBOARDS = {
    "chenu-service-red",
    "chenu-agents-llm",
    "chenu-threads-websocket",
    "chenu-database-cache",
    "chenu-collector-health",
}
# Series that are not in the app's catalogue: the collector's and Prometheus' own metrics.
EXTERNAL_PREFIXES = ("otelcol_", "prometheus_")
EXTERNAL_NAMES = {"up", "target_info"}
# Labels every OTLP series carries: job/instance from service.* and the promoted attributes.
RESOURCE_LABELS = {
    "job", "instance", "le", "service_name", "service_namespace", "service_version",
    "deployment_environment", "deployment_environment_name", "__name__",
}


def datasources() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(DATASOURCES_DIR.glob("*.yaml")):
        for source in load_yaml(path)["datasources"]:
            assert source["uid"] not in found, f"duplicate datasource uid {source['uid']}"
            found[source["uid"]] = source
    return found


@pytest.fixture(scope="module")
def catalogue() -> dict[str, set[str]]:
    """{prometheus series name: its labels} from the metric catalogue's own CLI listing."""
    result = subprocess.run(
        [sys.executable, "-m", "chenu_otel.cli", "metrics", "--format", "json"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False,
    )
    assert result.returncode == 0, f"chenu-otel metrics --format json failed:\n{result.stderr}"
    series: dict[str, set[str]] = {}
    for metric in json.loads(result.stdout):
        for name in metric["prometheus_series"]:
            series[name] = set(metric["labels"])
    return series


def test_datasources_have_fixed_uids_and_link_to_each_other() -> None:
    """Prometheus exemplars → Jaeger, Loki trace_id → Jaeger, Jaeger → Loki by trace id."""
    sources = datasources()
    assert {"prometheus", "jaeger", "loki", "alertmanager"} <= set(sources)
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "jaeger"}
    ]
    (derived,) = sources["loki"]["jsonData"]["derivedFields"]
    assert derived["matcherType"] == "label"
    assert derived["matcherRegex"] == "trace_id"
    assert derived["datasourceUid"] == "jaeger"
    to_logs = sources["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki"
    assert to_logs["filterByTraceID"] is True
    assert {"key": "service.name", "value": "service_name"} in to_logs["tags"]
    for source in sources.values():
        for link in _find_key(source, "datasourceUid"):
            assert link in sources, f"{source['uid']} links to unknown datasource {link}"


def _find_key(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        found = [node[key]] if key in node else []
        for value in node.values():
            found += _find_key(value, key)
        return found
    if isinstance(node, list):
        return [item for value in node for item in _find_key(value, key)]
    return []


def test_dashboard_provider_points_where_compose_mounts_the_dashboards() -> None:
    (provider,) = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yaml")[
        "providers"
    ]
    compose = (REPO_ROOT / "deploy" / "compose.yaml").read_text()
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose


def test_dashboards_are_generated_and_up_to_date() -> None:
    """The JSON files are exactly what scripts/grafana_dashboards.py produces."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "grafana_dashboards.py"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_required_dashboards_exist_with_unique_uids_and_known_datasources() -> None:
    sources = datasources()
    uids: list[str] = []
    for path in dashboard_files():
        dashboard = json.loads(path.read_text())
        uids.append(dashboard["uid"])
        targets = dashboard_targets(dashboard)
        assert targets, f"{path.name} has no queries"
        for title, target in targets:
            assert target["datasource"]["uid"] in sources, f"{path.name} / {title}"
            assert target["expr"].strip(), f"{path.name} / {title} has an empty query"
    assert len(uids) == len(set(uids))
    assert set(uids) >= REQUIRED_DASHBOARDS, sorted(uids)


def test_latency_panels_show_exemplars() -> None:
    """The RED dashboard's latency panel asks Prometheus for exemplars (links to traces)."""
    dashboard = json.loads((DASHBOARDS_DIR / "chenu-service-red.json").read_text())
    latency = [t for title, t in dashboard_targets(dashboard) if title.startswith("Latency")]
    assert latency and all(t["exemplar"] is True for t in latency)
    assert all("http_server_request_duration_seconds_bucket" in t["expr"] for t in latency)


def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard and alert expression (as recording rules)."""
    expressions = promql_expressions()
    rules = {
        "groups": [
            {
                "name": "deploy-expressions",
                "rules": [
                    {"record": f"deploy_expression_{i}", "expr": e.expr}
                    for i, e in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "expressions.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [str(backend_binary("promtool")), "check", "rules", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    origins = "\n".join(f"{i}: {e.origin}" for i, e in enumerate(expressions))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{origins}"
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


def test_no_grafana_variable_is_left_unsubstituted() -> None:
    leftover = [e.origin for e in promql_expressions() if "$" in e.expr]
    assert not leftover, leftover


def test_every_metric_and_label_comes_from_the_catalogue(catalogue: dict[str, set[str]]) -> None:
    """Dashboards and alerts use the translated names the catalogue lists, and its labels."""
    unknown: list[str] = []
    for expression in promql_expressions():
        names = metric_names(expression.expr)
        assert names, f"no metric found in {expression.origin}: {expression.expr}"
        ours = {n for n in names if not n.startswith(EXTERNAL_PREFIXES) and n not in EXTERNAL_NAMES}
        unknown += [f"{expression.origin}: metric {n}" for n in ours if n not in catalogue]
        if ours and all(n in catalogue for n in ours):
            allowed = RESOURCE_LABELS.union(*(catalogue[n] for n in ours))
            for label in label_names(expression.expr):
                if label not in allowed:
                    unknown.append(f"{expression.origin}: label {label}")
    assert not unknown, "\n".join(unknown)


def test_alert_expressions_use_only_catalogue_or_collector_metrics() -> None:
    for rule in alert_rules():
        assert metric_names(rule["expr"]), rule


def label_names(expr: str) -> set[str]:
    """Label names used in matchers and in by()/without() clauses."""
    names: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        names.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        names.update(n.strip() for n in group.split(",") if n.strip())
    return names
