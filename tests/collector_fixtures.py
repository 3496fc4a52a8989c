"""Run the real chenu-otelcol in tests: build it, start it on loopback, read what it wrote.

The binary comes from ``scripts/build-collector`` (cached outside the clone, keyed by the
manifest). Starting collectors (`CollectorProcess`, `DownstreamCollector`) and reading back what
they wrote (`read_otlp`) is the stack's own code (`chenu_otel.stack`), importable from here as
before; this module adds the build, the tests' stand-in config and the e2e sender.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chenu_otel.stack import collector as stack_collector
from chenu_otel.stack.collector import (
    CollectorProcess,
    config_args,
    dead_endpoint,
    run_collector_command,
)
from chenu_otel.stack.otlp_json import (
    LogRecordData,
    MetricPoint,
    OtlpData,
    SpanRecord,
    attribute_value,
    attributes_of,
    read_otlp,
)
from tests.support import REPO_ROOT

__all__ = [
    "BASE_CONFIG",
    "BUILD_SCRIPT",
    "COLLECTOR_DIR",
    "DOWNSTREAM_CONFIG",
    "OVERLAY_DIR",
    "SENDER",
    "CollectorProcess",
    "DownstreamCollector",
    "LogRecordData",
    "MetricPoint",
    "OtlpData",
    "SpanRecord",
    "attribute_value",
    "attributes_of",
    "build_collector",
    "config_args",
    "dead_endpoint",
    "read_otlp",
    "run_burst",
    "run_collector_command",
    "sender_env",
]

COLLECTOR_DIR = REPO_ROOT / "collector"
BASE_CONFIG = COLLECTOR_DIR / "otelcol.yaml"
OVERLAY_DIR = COLLECTOR_DIR / "overlays"
FLEET_DIR = COLLECTOR_DIR / "fleet"  # the agent and gateway roles
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-collector"
DOWNSTREAM_CONFIG = REPO_ROOT / "tests" / "e2e" / "downstream-collector.yaml"


@functools.cache
def build_collector() -> Path:
    """Path of the chenu-otelcol binary, built (or reused from the cache) by the build script."""
    try:
        result = subprocess.run(
            [str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"scripts/build-collector could not run: {exc}") from exc
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"scripts/build-collector failed with exit code {result.returncode}; it builds "
            f"chenu-otelcol from collector/manifest.yaml with Go and the module proxy.\n"
            f"--- stderr (tail) ---\n{result.stderr[-4000:]}"
        )
    binary = Path(lines[-1])
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"scripts/build-collector printed {binary}, which is not executable")
    return binary


@dataclass
class DownstreamCollector(stack_collector.DownstreamCollector):
    """The stack's backend stand-in with the tests' config (it also copies the vendor's
    ``x-vendor-key`` header into the output, so a test can see it was sent)."""

    config: Path | None = DOWNSTREAM_CONFIG


# --- the application side ------------------------------------------------------------------

SENDER = REPO_ROOT / "tests" / "e2e" / "collector_sender.py"


def sender_env(endpoint: str, protocol: str) -> dict[str, str]:
    """A clean OTEL_* environment pointing the app at `endpoint` with `protocol`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    return env


def run_script(script: Path, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a test helper script in a fresh interpreter; returns the JSON summary it prints last."""
    result = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{script.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def run_burst(env: dict[str, str], marker: str, service: str, canary: str) -> dict[str, Any]:
    """Run the sender's burst in a fresh interpreter; returns its JSON summary."""
    return run_script(SENDER, ["burst", marker, service, canary], env)
