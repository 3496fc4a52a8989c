"""What deploy/ ships, read back for tests: rule files, dashboards, datasources, their PromQL.

The config tests check these files offline (parse, uids, promtool); the e2e tests run every
expression found here against a live Prometheus. Both go through this module so they see the
same set of queries.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT

try:
    import yaml
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "PyYAML is needed to read deploy/ (rules, provisioning, compose): add `pyyaml` to the "
        "dev extra in pyproject.toml and re-run scripts/bootstrap"
    ) from exc

DEPLOY = REPO_ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
GRAFANA_DIR = DEPLOY / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DATASOURCES_DIR = GRAFANA_DIR / "provisioning" / "datasources"
BUILD_BACKENDS = REPO_ROOT / "scripts" / "build-backends"

# Grafana variables in dashboard queries, replaced by what "All" / a default range would give.
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$service": ".+",
}


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


@dataclass(frozen=True)
class Expression:
    """One PromQL expression shipped in deploy/, with where it came from."""

    origin: str  # e.g. "rule ChenuHTTPLatencyP95High" or "dashboard chenu-service-red / p95"
    expr: str  # ready to run: Grafana variables substituted
    raw: str  # as written in the file


def backend_binary(name: str) -> Path:
    """Path of a natively built backend binary (prometheus, promtool, jaeger, alertmanager, amtool).

    Runs scripts/build-backends, which builds from the Go module proxy on first use (minutes) and
    returns at once afterwards.
    """
    try:
        result = subprocess.run(
            [str(BUILD_BACKENDS), "--print", name],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"scripts/build-backends could not run: {exc}") from exc
    path = Path(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else None
    if result.returncode != 0 or path is None or not path.exists():
        raise RuntimeError(
            f"scripts/build-backends --print {name} failed (exit {result.returncode}); it builds "
            f"the backends with Go from the module proxy.\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return path


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting and recording rule in deploy/prometheus/rules."""
    rules: list[dict[str, Any]] = []
    for path in rule_files():
        for group in load_yaml(path)["groups"]:
            rules.extend(group["rules"])
    return rules


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query target in every panel, rows included."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel.get("datasource") or {}
                found.append((panel.get("title", ""), {**target, "datasource": datasource}))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return found


def promql_expressions() -> list[Expression]:
    """Every PromQL expression of every alert rule and every Prometheus dashboard panel."""
    expressions = [
        Expression(f"rule {rule.get('alert') or rule.get('record')}", rule["expr"], rule["expr"])
        for rule in alert_rules()
    ]
    for path in dashboard_files():
        dashboard = json.loads(path.read_text())
        for title, target in dashboard_targets(dashboard):
            if target["datasource"].get("uid") != "prometheus":
                continue
            origin = f"dashboard {dashboard['uid']} / {title} / {target.get('refId')}"
            expressions.append(Expression(origin, substitute(target["expr"]), target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if variable.get("type") == "query" and isinstance(query, str):
                match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query.strip())
                if match:  # label_values(selector, label) is Grafana's; its selector is PromQL
                    origin = f"dashboard {dashboard['uid']} / variable {variable['name']}"
                    expressions.append(Expression(origin, match.group(1), query))
    return expressions


# Metric names in PromQL: identifiers followed by `{`, `[`, `)` or space that are not functions,
# keywords or label names. Good enough for our own expressions, which name metrics plainly.
_PROMQL_WORDS = {
    "sum", "rate", "increase", "histogram_quantile", "max", "min", "avg", "count", "by",
    "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "label_values", "topk", "bottomk", "irate", "delta", "abs", "clamp_min",
    "clamp_max", "time", "vector", "scalar", "absent", "le", "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (by plain name or by a `__name__=~` alternation)."""
    names: set[str] = set()
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)  # drop label matchers and their values
    stripped = re.sub(r'"[^"]*"', '""', stripped)
    stripped = re.sub(r"\bby\s*\([^)]*\)|\bwithout\s*\([^)]*\)", "", stripped)
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(?=[{\[)\s]|$)", stripped):
        word = match.group(1)
        if word.lower() not in _PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]?", word):
            names.add(word)
    for match in re.finditer(r'__name__=~"([^"]+)"', expr):
        pattern = match.group(1)
        alternation = re.fullmatch(r"(.*)\(([^()]+)\)(.*)", pattern)
        if alternation:
            prefix, options, suffix = alternation.groups()
            names.update(f"{prefix}{option}{suffix}" for option in options.split("|"))
        else:
            names.add(pattern)
    return names
