"""The ``chenu-otel`` command: the metric catalogue listing and the stack's error paths."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from chenu_otel import cli
from chenu_otel.catalogue import CATALOGUE
from chenu_otel.stack.binaries import MissingBinaryError, find_binary
from tests.support import REPO_ROOT

BIN_VARIABLES = (
    "CHENU_OTEL_COLLECTOR_BIN",
    "CHENU_OTEL_PROMETHEUS_BIN",
    "CHENU_OTEL_JAEGER_BIN",
    "CHENU_OTEL_ALERTMANAGER_BIN",
    "CHENU_OTEL_REDIS_SERVER_BIN",
)


def test_metrics_lists_every_metric_with_its_prometheus_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`chenu-otel metrics` prints one row per metric with OTel and Prometheus names."""
    assert cli.main(["metrics"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(CATALOGUE) + 1
    for s, line in zip(CATALOGUE, out[1:], strict=True):
        assert line.split()[:4] == [s.name, s.kind.prometheus_type, s.unit, s.prometheus_name]


def test_metrics_json_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON listing carries the Prometheus series names dashboards query."""
    assert cli.main(["metrics", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["http.server.request.duration"]["prometheus_series"] == [
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_sum",
        "http_server_request_duration_seconds_count",
    ]
    assert by_name["http.server.request.duration"]["labels"][:2] == [
        "http_request_method",
        "http_route",
    ]


def test_metrics_write_produces_the_markdown_reference(tmp_path: Path) -> None:
    """`--write` writes the same reference as `--format markdown`."""
    target = tmp_path / "METRICS.md"
    assert cli.main(["metrics", "--write", str(target)]) == 0
    assert target.read_text() == (REPO_ROOT / "chenu_otel" / "METRICS.md").read_text()


@pytest.fixture
def no_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty build cache, no CHENU_OTEL_*_BIN, a PATH without any of the stack's binaries."""
    cache = tmp_path / "cache"
    cache.mkdir()
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("CHENU_OTEL_CACHE", str(cache))
    monkeypatch.setenv("PATH", str(empty))
    for name in BIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return cache


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_stack_up_says_what_is_missing_and_how_to_get_it(
    no_binaries: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without binaries `stack up` exits 2 naming the binary, where it looked, how to build it."""
    assert cli.main(["stack", "up", "--work-dir", str(tmp_path / "stack")]) == 2
    out = capsys.readouterr().out
    assert "chenu-otelcol not found" in out
    assert str(no_binaries / "collector") in out
    assert "scripts/build-collector" in out
    assert "CHENU_OTEL_COLLECTOR_BIN" in out
    assert not (tmp_path / "stack" / "stack.json").exists()


def test_stack_status_and_down_of_a_stack_never_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` and `down` on a folder without a started stack exit 1 and say so."""
    for action in ("status", "down"):
        assert cli.main(["stack", action, "--work-dir", str(tmp_path)]) == 1
        assert "not started" in capsys.readouterr().out


def test_the_collector_must_be_the_build_of_this_manifest(no_binaries: Path) -> None:
    """With a checkout, only the build keyed by its collector/manifest.yaml counts."""
    _executable(no_binaries / "collector" / "0123456789abcdef" / "chenu-otelcol")
    with pytest.raises(MissingBinaryError, match="this manifest's build"):
        find_binary("chenu-otelcol", repo=REPO_ROOT)
    key = hashlib.sha256((REPO_ROOT / "collector" / "manifest.yaml").read_bytes()).hexdigest()
    built = _executable(no_binaries / "collector" / key[:16] / "chenu-otelcol")
    assert find_binary("chenu-otelcol", repo=REPO_ROOT) == built


def test_binaries_come_from_the_variable_then_the_cache_then_path(
    no_binaries: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit CHENU_OTEL_*_BIN wins over the cache, the cache over PATH."""
    on_path = _executable(tmp_path / "bin" / "prometheus")
    assert find_binary("prometheus") == on_path
    cached = _executable(no_binaries / "backends" / "prometheus-v0.316.0" / "prometheus")
    assert find_binary("prometheus") == cached
    explicit = _executable(tmp_path / "elsewhere" / "prometheus")
    monkeypatch.setenv("CHENU_OTEL_PROMETHEUS_BIN", str(explicit))
    assert find_binary("prometheus") == explicit


def test_a_missing_redis_points_at_the_debian_package(no_binaries: Path) -> None:
    """redis-server is not built here: the message says how to install it."""
    with pytest.raises(MissingBinaryError, match="redis-server") as caught:
        find_binary("redis-server")
    assert "apt-get install redis-server" in str(caught.value)
    assert "CHENU_OTEL_REDIS_SERVER_BIN" in str(caught.value)
