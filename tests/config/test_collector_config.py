"""The collector's distribution and config files, judged by the real chenu-otelcol binary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    build_collector,
    config_args,
    run_collector_command,
)

pytestmark = pytest.mark.slow

OVERLAYS = sorted(OVERLAY_DIR.glob("*.yaml"))
BROKEN_OVERLAY = Path(__file__).with_name("collector-broken-overlay.yaml")

# What collector/manifest.yaml promises, under the type names the binary registers.
EXPECTED_COMPONENTS = {
    "receivers": {"otlp"},
    "processors": {
        "memory_limiter",
        "batch",
        "resource",
        "attributes",
        "transform",
        "redaction",
        "filter",
        "tail_sampling",
    },
    "connectors": {"span_metrics", "forward"},
    "exporters": {
        "otlp_grpc",
        "otlp_http",
        "debug",
        "file",
        "prometheus",
        "prometheus_remote_write",
    },
    "extensions": {"health_check", "file_storage", "pprof"},
}


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    return build_collector()


def components_by_kind(listing: str) -> dict[str, set[str]]:
    """Parse `chenu-otelcol components` (YAML) into {kind: {type names}} without a YAML lib."""
    found: dict[str, set[str]] = {}
    kind = ""
    for line in listing.splitlines():
        if re.match(r"^[a-z]+:\s*$", line):
            kind = line.strip().rstrip(":")
        elif match := re.match(r"^\s*-\s*name:\s*(\S+)", line):
            found.setdefault(kind, set()).add(match.group(1))
    return found


def validate(binary: Path, *configs: Path) -> tuple[int, str]:
    result = run_collector_command(binary, "validate", *config_args(configs))
    return result.returncode, result.stdout + result.stderr


def test_distribution_contains_every_component_of_the_manifest(collector_binary: Path) -> None:
    """The built binary registers every component the manifest lists, under the new type names."""
    result = run_collector_command(collector_binary, "components")
    assert result.returncode == 0, result.stderr
    found = components_by_kind(result.stdout)
    for kind, expected in EXPECTED_COMPONENTS.items():
        missing = expected - found.get(kind, set())
        assert not missing, f"{kind} missing from the distribution: {sorted(missing)}"


def test_base_config_is_valid(collector_binary: Path) -> None:
    """collector/otelcol.yaml passes the collector's own validation with its defaults."""
    code, output = validate(collector_binary, BASE_CONFIG)
    assert code == 0, f"validate failed for {BASE_CONFIG.name}:\n{output}"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.stem)
def test_base_with_overlay_is_valid(collector_binary: Path, overlay: Path) -> None:
    """Each backend overlay, merged over the base with a second --config, is a valid config."""
    code, output = validate(collector_binary, BASE_CONFIG, overlay)
    assert code == 0, f"validate failed for otelcol.yaml + {overlay.name}:\n{output}"


def test_there_is_an_overlay_per_backend_choice() -> None:
    """Tempo, a generic vendor, remote write and the debug/file overlay all exist."""
    assert {p.stem for p in OVERLAYS} >= {"tempo", "vendor", "remote-write", "debug-file"}


def test_broken_overlay_is_refused_with_the_collectors_message(collector_binary: Path) -> None:
    """An overlay naming an undefined exporter fails validation, and the collector says which."""
    code, output = validate(collector_binary, BASE_CONFIG, BROKEN_OVERLAY)
    print(f"collector said:\n{output}")
    assert code != 0, f"validate accepted the broken overlay:\n{output}"
    assert "otlp_grpc/jaegr" in output, f"collector's message does not name the exporter:\n{output}"


def test_vendor_headers_come_from_the_environment(collector_binary: Path) -> None:
    """VENDOR_OTLP_HEADERS is read as a map, so a malformed value is refused, not sent."""
    overlay = OVERLAY_DIR / "vendor.yaml"
    good = run_collector_command(
        collector_binary,
        "validate",
        *config_args([BASE_CONFIG, overlay]),
        env={"VENDOR_OTLP_HEADERS": '{"authorization": "Bearer k", "x-team": "t"}'},
    )
    assert good.returncode == 0, good.stderr
    bad = run_collector_command(
        collector_binary,
        "validate",
        *config_args([BASE_CONFIG, overlay]),
        env={"VENDOR_OTLP_HEADERS": "[not, a, map]"},
    )
    assert bad.returncode != 0, "a list of headers was accepted"
    assert "headers" in bad.stderr, bad.stderr


def resolved_config(binary: Path, *configs: Path) -> dict[str, Any]:
    """The merged config as the collector resolves it (print-config, JSON)."""
    result = run_collector_command(binary, "print-config", "--format=json", *config_args(configs))
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.parametrize("overlay", [None, *OVERLAYS], ids=lambda p: p.stem if p else "base")
def test_every_pipeline_is_guarded_and_every_otlp_exporter_queues_on_disk(
    collector_binary: Path, overlay: Path | None
) -> None:
    """After merging: memory_limiter first, redaction in each pipeline, span_metrics still fed,
    and each OTLP exporter in use queues on file_storage and never gives up retrying."""
    config = resolved_config(collector_binary, BASE_CONFIG, *([overlay] if overlay else []))
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: {pipeline['processors']}"
        assert "redaction" in pipeline["processors"], name
    # Lists replace on merge: an overlay that forgets span_metrics silently stops RED metrics.
    assert "span_metrics" in pipelines["traces"]["exporters"]
    assert "span_metrics" in pipelines["metrics"]["receivers"]
    in_use = {e for p in pipelines.values() for e in p["exporters"]}
    for exporter_id in sorted(in_use):
        if exporter_id.split("/")[0] not in ("otlp_grpc", "otlp_http"):
            continue
        exporter = config["exporters"][exporter_id]
        assert exporter["sending_queue"], f"{exporter_id} has no sending queue"
        assert exporter["sending_queue"]["storage"] == "file_storage", exporter_id
        assert exporter["retry_on_failure"]["max_elapsed_time"] == 0, exporter_id
    assert "file_storage" in config["service"]["extensions"]
    assert "health_check" in config["service"]["extensions"]
