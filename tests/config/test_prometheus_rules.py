"""The shipped Prometheus config and rules, checked by the real promtool (Prometheus 3).

promtool comes from scripts/build-backends (built from the pinned Go module, cached); every
test fails with the build script's message when it cannot be built.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy_files import (
    PROMETHEUS_DIR,
    alert_rules,
    backend_binary,
    rule_files,
    rule_test_files,
)

SEED_ALERTS = {
    "ChenuHTTPLatencyP95High": ("warning", "5m"),
    "ChenuHTTPServerErrorRateHigh": ("critical", "5m"),
    "ChenuCacheHitRateLow": ("warning", "10m"),
    "ChenuDBQueryLatencyP95High": ("warning", "5m"),
    "ChenuAgentFailureRateHigh": ("critical", "10m"),
    "ChenuAgentCostHigh": ("warning", None),
}
COLLECTOR_ALERTS = {
    "OtelCollectorExporterSendFailed",
    "OtelCollectorExporterEnqueueFailed",
    "OtelCollectorExporterQueueNearlyFull",
    "OtelCollectorReceiverRefusedData",
}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return backend_binary("promtool")


def run(argv: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


def test_promtool_is_prometheus_3(promtool: Path) -> None:
    """The promtool in use is the pinned Prometheus 3 build, not Debian's 2.x."""
    result = run([promtool, "--version"])
    assert result.returncode == 0, result.stderr
    assert "version 3." in result.stdout + result.stderr, result.stdout + result.stderr


def test_check_config_accepts_prometheus_yml_with_its_rules(promtool: Path) -> None:
    """promtool check config loads prometheus.yml, its OTLP section and every rule file."""
    result = run([promtool, "check", "config", PROMETHEUS_DIR / "prometheus.yml"])
    assert result.returncode == 0, result.stdout + result.stderr
    for path in rule_files():
        assert path.name in result.stdout + result.stderr


def test_check_config_rejects_a_broken_rule_file(promtool: Path, tmp_path: Path) -> None:
    """check config does look into the rule files: a broken expression fails it."""
    shutil.copytree(PROMETHEUS_DIR, tmp_path / "prometheus")
    broken = tmp_path / "prometheus" / "rules" / "broken.yml"
    broken.write_text(
        "groups:\n  - name: broken\n    rules:\n      - alert: Broken\n"
        "        expr: sum(rate(http_server_request_duration_seconds_count[5m])\n"
    )
    result = run([promtool, "check", "config", tmp_path / "prometheus" / "prometheus.yml"])
    assert result.returncode != 0
    assert "broken.yml" in result.stdout + result.stderr


def test_check_rules_lints_every_rule_file(promtool: Path) -> None:
    """Every rule file parses, its PromQL is valid and the linter finds nothing."""
    files = rule_files()
    assert files, "no rule files in deploy/prometheus/rules"
    result = run([promtool, "check", "rules", "--lint=all", "--lint-fatal", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: Path) -> None:
    """promtool test rules: each alert fires on a bad series and stays silent on a good one."""
    files = rule_test_files()
    assert files, "no promtool unit tests in deploy/prometheus/tests"
    result = run([promtool, "test", "rules", *files], cwd=PROMETHEUS_DIR / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_fail_when_an_alert_does_not_fire(promtool: Path, tmp_path: Path) -> None:
    """The unit tests can fail: with a threshold no bad series reaches, they report the alert."""
    shutil.copytree(PROMETHEUS_DIR, tmp_path / "prometheus")
    rules = tmp_path / "prometheus" / "rules" / "chenu-service.yml"
    rules.write_text(rules.read_text().replace(") > 1\n", ") > 1000\n", 1))
    test_file = tmp_path / "prometheus" / "tests" / "chenu-service.test.yml"
    result = run([promtool, "test", "rules", test_file], cwd=test_file.parent)
    assert result.returncode != 0
    assert "ChenuHTTPLatencyP95High" in result.stdout + result.stderr


def test_seed_alerts_have_their_thresholds_severity_and_duration() -> None:
    """The six seed alerts and the collector health alerts exist with severity and `for`."""
    rules = {rule["alert"]: rule for rule in alert_rules() if "alert" in rule}
    assert set(SEED_ALERTS) | COLLECTOR_ALERTS <= set(rules), sorted(rules)
    for name, (severity, duration) in SEED_ALERTS.items():
        assert rules[name]["labels"]["severity"] == severity, name
        assert rules[name].get("for") == duration, name
        assert {"summary", "description"} <= set(rules[name]["annotations"]), name
    for name in COLLECTOR_ALERTS:
        assert rules[name]["labels"]["severity"] in {"warning", "critical"}, name


def test_every_alert_has_a_unit_test() -> None:
    """No alert ships without a promtool test that names it."""
    tested = "\n".join(path.read_text() for path in rule_test_files())
    untested = [
        rule["alert"]
        for rule in alert_rules()
        if "alert" in rule and f"alertname: {rule['alert']}" not in tested
    ]
    assert not untested, f"alerts without a promtool unit test: {untested}"
