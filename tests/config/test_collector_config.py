"""The collector's distribution and config files, judged by the real chenu-otelcol binary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.collector_fixtures import (
    BASE_CONFIG,
    FLEET_DIR,
    OVERLAY_DIR,
    build_collector,
    config_args,
    run_collector_command,
)

pytestmark = pytest.mark.slow

OVERLAYS = sorted(OVERLAY_DIR.glob("*.yaml"))
FLEET_ROLES = sorted(FLEET_DIR.glob("*.yaml"))
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
        "k8s_attributes",
    },
    "connectors": {"span_metrics", "forward"},
    "exporters": {
        "otlp_grpc",
        "otlp_http",
        "debug",
        "file",
        "prometheus_remote_write",
        "load_balancing",
    },
    "extensions": {"health_check", "file_storage", "pprof", "bearertokenauth"},
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


def component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def batching_violations(config: dict[str, Any], where: str) -> list[str]:
    """What breaks the durable ack path in one config: a batch processor anywhere but right
    after tail_sampling (anywhere else it acknowledges data held only in memory; after
    tail_sampling it holds kept traces that were only in memory already), or a disk queue that
    does not batch in the exporter."""
    problems = []
    pipelines = (config.get("service") or {}).get("pipelines") or {}
    for name, pipeline in pipelines.items():
        processors = (pipeline or {}).get("processors") or []
        for index, pid in enumerate(processors):
            after_sampling = index > 0 and component_type(processors[index - 1]) == "tail_sampling"
            if component_type(pid) == "batch" and not after_sampling:
                problems.append(f"{where}: pipeline {name} runs {pid} ahead of a durable ack")
    for eid, exporter in (config.get("exporters") or {}).items():
        queue = (exporter or {}).get("sending_queue") or {}
        if queue.get("storage") and not queue.get("batch"):
            problems.append(f"{eid} in {where} queues on disk without batching after the queue")
    return problems


def test_batching_violations_names_a_batch_ahead_of_the_ack() -> None:
    """The rule itself: a batch processor after the receiver is named, the same processor
    right after tail_sampling is not."""
    pipelines = {
        "traces": {"processors": ["memory_limiter", "batch"]},
        "traces/sampling": {"processors": ["tail_sampling", "batch/kept"]},
    }
    config = {"service": {"pipelines": pipelines}}
    assert batching_violations(config, "t") == [
        "t: pipeline traces runs batch ahead of a durable ack"
    ]


@pytest.mark.parametrize(
    "config_file", [BASE_CONFIG, *OVERLAYS, *FLEET_ROLES], ids=lambda p: p.stem
)
def test_no_batch_processor_and_every_disk_queue_batches_in_the_exporter(
    config_file: Path,
) -> None:
    """Each file as written: no batch processor ahead of a durable ack, and every exporter that
    queues on file_storage batches inside its sending_queue, so the receiver acks only data on
    disk."""
    config = yaml.safe_load(config_file.read_text())
    assert batching_violations(config, config_file.name) == []


@pytest.mark.parametrize("overlay", [None, *OVERLAYS], ids=lambda p: p.stem if p else "base")
def test_merged_config_acks_only_after_the_disk_queue(
    collector_binary: Path, overlay: Path | None
) -> None:
    """After merging (print-config): between the receiver and every disk-queued exporter there is
    nothing that holds data, each of those queues batches, refuses when full instead of blocking
    or dropping silently, and file_storage fsyncs by default."""
    config = resolved_config(collector_binary, BASE_CONFIG, *([overlay] if overlay else []))
    assert batching_violations(config, "merged config") == []
    pipelines = config["service"]["pipelines"]
    holding = {"batch", "tail_sampling", "groupbytrace", "groupbyattrs"}
    for name, pipeline in pipelines.items():
        held = [p for p in pipeline["processors"] if component_type(p) in holding]
        assert not held, f"{name} holds data in memory before the queue: {held}"
    in_use = {e for p in pipelines.values() for e in p["exporters"]}
    queued = [e for e in sorted(in_use) if (config["exporters"].get(e) or {}).get("sending_queue")]
    assert queued, "no exporter in use has a sending queue"
    for exporter_id in queued:
        queue = config["exporters"][exporter_id]["sending_queue"]
        if component_type(exporter_id) in ("otlp_grpc", "otlp_http"):
            assert queue["storage"] == "file_storage", exporter_id
        if queue.get("storage"):
            assert queue["batch"]["flush_timeout"] > 0, exporter_id
            assert queue["block_on_overflow"] is False, exporter_id
            assert queue["queue_size"] > 0, exporter_id
    assert config["extensions"]["file_storage"]["fsync"] is True
