"""Run chenu-otelcol on loopback: the pipeline's collector and stand-ins for backends.

`CollectorProcess` runs a collector with given config files, every listener on 127.0.0.1 on a
free port and every backend endpoint pointing at loopback (a dead port unless told otherwise),
so nothing ever reaches for a compose hostname. `DownstreamCollector` is a second collector that
stands in for a backend: it receives OTLP (optionally on a backend's own routes, e.g. Loki's
``/otlp/v1/logs``) and writes everything to an OTLP JSON-lines file that `read_otlp` reads back.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from chenu_otel.stack.otlp_json import OtlpData, read_otlp
from chenu_otel.stack.processes import LOOPBACK, ManagedProcess, free_port, http_ok

__all__ = [
    "FILE_SINK_CONFIG",
    "CollectorProcess",
    "DownstreamCollector",
    "config_args",
    "dead_endpoint",
    "run_collector_command",
]

#: The config of a `DownstreamCollector` unless given another: OTLP in, one JSON-lines file out.
FILE_SINK_CONFIG: Final = """\
# A chenu-otelcol standing in for a backend: receives OTLP on loopback and writes everything it
# got to one OTLP JSON-lines file.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${env:DOWNSTREAM_GRPC_PORT}
      http:
        endpoint: 127.0.0.1:${env:DOWNSTREAM_HTTP_PORT}
        metrics_url_path: ${env:DOWNSTREAM_METRICS_PATH:-/v1/metrics}
        logs_url_path: ${env:DOWNSTREAM_LOGS_PATH:-/v1/logs}
exporters:
  file:
    path: ${env:DOWNSTREAM_OUTPUT}
    format: json
    flush_interval: 200ms
extensions:
  health_check:
    endpoint: 127.0.0.1:${env:DOWNSTREAM_HEALTH_PORT}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {receivers: [otlp], exporters: [file]}
    metrics: {receivers: [otlp], exporters: [file]}
    logs: {receivers: [otlp], exporters: [file]}
"""


def run_collector_command(
    binary: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a one-shot collector command (validate, components, print-config)."""
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def config_args(configs: Sequence[Path]) -> list[str]:
    """``--config A --config B ...``."""
    return [arg for config in configs for arg in ("--config", str(config))]


def dead_endpoint() -> str:
    """host:port on loopback where nothing listens: a backend that is down."""
    return f"{LOOPBACK}:{free_port()}"


def _start(process: ManagedProcess, health_port: int, timeout: float) -> ManagedProcess:
    """Start a collector and wait for its health check; one that never gets ready is stopped
    before the error is raised."""
    process.start()
    try:
        process.wait_ready(lambda: http_ok(f"http://{LOOPBACK}:{health_port}/"), timeout=timeout)
    except BaseException:
        process.stop()
        raise
    return process


@dataclass
class CollectorProcess:
    """One chenu-otelcol run with the given config files, all listeners on 127.0.0.1.

    Backends default to a dead loopback port; `env` overrides them (and anything else). Ports
    stay the same across `restart()` so a client keeps talking to the same address.
    """

    binary: Path
    configs: Sequence[Path]
    log_dir: Path
    storage_dir: Path
    name: str = "collector"
    env: dict[str, str] = field(default_factory=dict)
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    pprof_port: int = field(default_factory=free_port)
    runs: int = 0
    process: ManagedProcess | None = None

    def environment(self) -> dict[str, str]:
        """The variables collector/otelcol.yaml and its overlays read, for loopback."""
        down = dead_endpoint()
        return {
            "OTELCOL_LISTEN_HOST": LOOPBACK,
            "OTELCOL_OTLP_GRPC_PORT": str(self.grpc_port),
            "OTELCOL_OTLP_HTTP_PORT": str(self.http_port),
            "OTELCOL_HEALTH_PORT": str(self.health_port),
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "OTELCOL_PPROF_PORT": str(self.pprof_port),
            "OTELCOL_STORAGE_DIR": str(self.storage_dir),
            # Short back-off and span_metrics interval: quick runs; production uses defaults.
            "OTELCOL_RETRY_MAX_INTERVAL": "1s",
            "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s",
            "JAEGER_OTLP_ENDPOINT": down,
            "PROMETHEUS_OTLP_ENDPOINT": f"http://{down}/api/v1/otlp",
            "LOKI_OTLP_ENDPOINT": f"http://{down}/otlp",
            "TEMPO_OTLP_ENDPOINT": down,
            "VENDOR_OTLP_ENDPOINT": f"http://{down}",
            "REMOTE_WRITE_ENDPOINT": f"http://{down}/api/v1/push",
            **self.env,
        }

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def start(self, timeout: float = 60) -> CollectorProcess:
        """Start (again) and wait for the health check; a collector that never gets ready is
        stopped before the error is raised."""
        self.runs += 1
        process = ManagedProcess(
            f"{self.name}-run{self.runs}",
            [self.binary, *config_args(self.configs)],
            log_dir=self.log_dir,
            env=self.environment(),
        )
        self.process = _start(process, self.health_port, timeout)
        return self

    def stop(self) -> int | None:
        """Graceful stop (SIGTERM): batches are flushed and queues persisted before it exits."""
        return self.process.stop(timeout=30) if self.process is not None else None

    def output(self) -> str:
        return self.process.output() if self.process is not None else ""

    def own_metrics(self) -> str:
        """The collector's own Prometheus metrics (otelcol_*)."""
        url = f"http://{LOOPBACK}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())


@dataclass
class DownstreamCollector:
    """A second collector standing in for a backend: receives OTLP, writes one JSON-lines file
    per run. `metrics_path`/`logs_path` mimic a backend's OTLP routes (Prometheus:
    /api/v1/otlp/v1/metrics, Loki: /otlp/v1/logs); `config` replaces `FILE_SINK_CONFIG`.
    Ports stay the same across restarts."""

    binary: Path
    log_dir: Path
    output_dir: Path
    name: str = "downstream"
    metrics_path: str = "/v1/metrics"
    logs_path: str = "/v1/logs"
    config: Path | None = None
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    runs: int = 0
    process: ManagedProcess | None = None

    @property
    def output(self) -> Path:
        return self.output_dir / f"{self.name}-run{self.runs}.json"

    def outputs(self) -> list[Path]:
        """The file of every run so far."""
        return [self.output_dir / f"{self.name}-run{n}.json" for n in range(1, self.runs + 1)]

    @property
    def grpc_address(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def backend_env(self) -> dict[str, str]:
        """Env for chenu-otelcol so Jaeger, Prometheus and Loki all mean this downstream."""
        return {
            "JAEGER_OTLP_ENDPOINT": self.grpc_address,
            "PROMETHEUS_OTLP_ENDPOINT": f"{self.http_url}/api/v1/otlp",
            "LOKI_OTLP_ENDPOINT": f"{self.http_url}/otlp",
        }

    def _config_path(self) -> Path:
        if self.config is not None:
            return self.config
        path = self.output_dir / f"{self.name}-config.yaml"
        path.write_text(FILE_SINK_CONFIG)
        return path

    def start(self, timeout: float = 60) -> DownstreamCollector:
        """Start (again) and wait for the health check."""
        self.runs += 1
        self.output_dir.mkdir(parents=True, exist_ok=True)
        process = ManagedProcess(
            f"{self.name}-run{self.runs}",
            [self.binary, "--config", self._config_path()],
            log_dir=self.log_dir,
            env={
                "DOWNSTREAM_GRPC_PORT": str(self.grpc_port),
                "DOWNSTREAM_HTTP_PORT": str(self.http_port),
                "DOWNSTREAM_HEALTH_PORT": str(self.health_port),
                "DOWNSTREAM_METRICS_PATH": self.metrics_path,
                "DOWNSTREAM_LOGS_PATH": self.logs_path,
                "DOWNSTREAM_OUTPUT": str(self.output),
            },
        )
        self.process = _start(process, self.health_port, timeout)
        return self

    def stop(self) -> int | None:
        return self.process.stop(timeout=30) if self.process is not None else None

    def received(self) -> OtlpData:
        """Everything this stand-in wrote over all its runs."""
        return read_otlp(*self.outputs())
