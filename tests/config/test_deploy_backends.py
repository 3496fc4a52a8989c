"""scripts/build-backends: the natively built Prometheus, promtool, Jaeger v2 and Alertmanager
are the pinned releases, cached outside the clone, and the script's interface is stable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "build-backends"
EXPECTED_VERSIONS = {
    "prometheus": "version 3.16.0",
    "promtool": "version 3.16.0",
    "alertmanager": "version 0.35.0",
    "amtool": "version 0.35.0",
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
    assert set(binaries) == {"prometheus", "promtool", "jaeger", "alertmanager", "amtool"}
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
    assert "known: prometheus promtool jaeger alertmanager amtool" in result.stderr
