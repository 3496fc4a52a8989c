"""scripts/build-backends: the natively built Prometheus, promtool, Jaeger v2, Alertmanager and
VictoriaLogs are the pinned releases, cached outside the clone, and the script's interface is
stable. Prometheus is the lean build (no service-discovery plugins) that still reads file_sd, and
long build steps report progress on stderr only."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import LOOPBACK, REPO_ROOT, ManagedProcess, free_port, http_ok, poll_until

SCRIPT = REPO_ROOT / "scripts" / "build-backends"
EXPECTED_VERSIONS = {
    "prometheus": "version 3.16.0",
    "promtool": "version 3.16.0",
    "alertmanager": "version 0.35.0",
    "amtool": "version 0.35.0",
    "victoria-logs": "victoria-logs-v1.52.1",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=3600, check=False
    )


@pytest.fixture(scope="module")
def binaries() -> dict[str, Path]:
    result = run()
    assert result.returncode == 0, f"scripts/build-backends failed:\n{result.stderr[-4000:]}"
    pairs = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    return {name: Path(path) for name, path in pairs.items()}


def test_every_backend_binary_is_listed_executable_and_outside_the_clone(
    binaries: dict[str, Path],
) -> None:
    assert set(binaries) == {
        "prometheus", "promtool", "jaeger", "alertmanager", "amtool", "victoria-logs",
    }
    for name, path in binaries.items():
        assert os.access(path, os.X_OK), name
        assert REPO_ROOT not in path.parents, f"{name} is cached inside the clone: {path}"


def test_print_names_the_same_binary(binaries: dict[str, Path]) -> None:
    result = run("--print", "promtool")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == binaries["promtool"]


@pytest.mark.parametrize(("name", "version"), sorted(EXPECTED_VERSIONS.items()))
def test_binaries_report_the_pinned_release(
    binaries: dict[str, Path], name: str, version: str
) -> None:
    result = subprocess.run(
        [str(binaries[name]), "--version"], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert version in result.stdout + result.stderr, result.stdout + result.stderr


def test_jaeger_is_the_v2_collector_based_binary(binaries: dict[str, Path]) -> None:
    """Jaeger v2 is an OpenTelemetry Collector distribution: it lists its components."""
    result = subprocess.run(
        [str(binaries["jaeger"]), "components"], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "jaeger_storage_exporter" in result.stdout
    assert "jaeger_query" in result.stdout


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    result = run("--print", "loki")
    assert result.returncode == 2
    assert "known: prometheus promtool jaeger alertmanager amtool victoria-logs" in result.stderr


def test_promtool_accepts_the_shipped_prometheus_config_and_rules(
    binaries: dict[str, Path],
) -> None:
    result = subprocess.run(
        [str(binaries["promtool"]), "check", "config", "prometheus.yml"],
        capture_output=True, text=True, timeout=60, check=False,
        cwd=REPO_ROOT / "deploy" / "prometheus",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: prometheus.yml is valid prometheus config file syntax" in result.stdout


def scrape_config(tmp_path: Path, discovery: dict[str, Any]) -> Path:
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({"scrape_configs": [
        {"job_name": "discovered", "scrape_interval": "1s", **discovery}
    ]}))
    return config


def test_lean_prometheus_still_discovers_file_sd_targets(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    """Built with remove_all_sd, Prometheus keeps file discovery (all our config uses): a target
    listed in a file_sd file is discovered, labelled and scraped."""
    port = free_port()
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps([
        {"targets": [f"{LOOPBACK}:{port}"], "labels": {"origin": "file_sd"}}
    ]))
    config = scrape_config(tmp_path, {"file_sd_configs": [{"files": [str(targets)]}]})
    url = f"http://{LOOPBACK}:{port}"
    with ManagedProcess(
        "prometheus",
        [
            binaries["prometheus"],
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
        ],
        log_dir=tmp_path / "logs",
    ) as prometheus:
        prometheus.wait_ready(lambda: http_ok(f"{url}/-/ready"))

        def scraped() -> list[dict[str, Any]]:
            with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=5) as response:
                active = json.loads(response.read())["data"]["activeTargets"]
            return [t for t in active if t["health"] == "up"]

        (target,) = poll_until(scraped, timeout=30, what="the file_sd target scraped")
    assert target["labels"]["origin"] == "file_sd"
    assert target["labels"]["instance"] == f"{LOOPBACK}:{port}"
    assert target["scrapePool"] == "discovered"


def test_lean_prometheus_refuses_a_discovery_it_was_built_without(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    """The build really is the lean one: kubernetes_sd_configs is unknown to this Prometheus."""
    config = scrape_config(tmp_path, {"kubernetes_sd_configs": [{"role": "pod"}]})
    result = subprocess.run(
        [
            str(binaries["prometheus"]),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={LOOPBACK}:{free_port()}",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "field kubernetes_sd_configs not found" in result.stderr, result.stderr[-2000:]


def run_with_progress(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`with_progress` from scripts/build-progress.sh, as the build scripts source it."""
    scripts = REPO_ROOT / "scripts"
    return subprocess.run(
        ["bash", "-c", f'source "{scripts}/common.sh"; source "{scripts}/build-progress.sh"; '
         + command],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "CHENU_OTEL_CACHE": str(tmp_path), "CHENU_OTEL_PROGRESS_INTERVAL": "1"},
    )


def test_a_long_build_step_reports_binary_elapsed_and_expected_time_on_stderr(
    tmp_path: Path,
) -> None:
    result = run_with_progress('with_progress "prometheus (prometheus promtool)" 180 sleep 3.5',
                               tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # stdout of the build scripts carries only binary paths
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "[chenu-otel] building prometheus (prometheus promtool) "
        "(a cold build takes about 3m00s on 2 cores)"
    )
    ticks = [line for line in lines[1:] if "elapsed of about 3m00s" in line]
    assert len(ticks) >= 2, lines
    assert all(line.startswith("[chenu-otel] building prometheus (prometheus promtool): ")
               for line in ticks)


def test_a_failed_build_step_keeps_its_exit_status(tmp_path: Path) -> None:
    result = run_with_progress('with_progress jaeger 330 sh -c "exit 3" || echo "status=$?"',
                               tmp_path)
    assert result.stdout.strip() == "status=3", result.stderr


def test_a_build_prints_progress_on_stderr_only_and_clears_a_killed_builds_leftovers(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    """A real (re)build of VictoriaLogs into an empty cache (Go's own caches are warm by now):
    stdout is the binary's path and nothing else, stderr says what is built and what to expect,
    and the staging dir of an earlier, killed build is gone."""
    leftover = tmp_path / "backends" / ".staging-victorialogs.killed"
    leftover.mkdir(parents=True)
    result = subprocess.run(
        [str(SCRIPT), "--print", "victoria-logs"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "CHENU_OTEL_CACHE": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    built = tmp_path / "backends" / "victorialogs-v1.52.1" / "victoria-logs"
    assert result.stdout == f"{built}\n"
    assert "[chenu-otel] building victorialogs (victoria-logs) from the Go module proxy (a cold " \
        "build takes about 1m00s on 2 cores)" in result.stderr
    assert not leftover.exists()
    version = subprocess.run(
        [str(built), "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert version.stdout.strip() == EXPECTED_VERSIONS["victoria-logs"]
