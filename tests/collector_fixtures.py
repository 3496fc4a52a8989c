"""Run the real chenu-otelcol in tests: build it, start it on loopback, read what it wrote.

The binary comes from ``scripts/build-collector`` (cached outside the clone, keyed by the
manifest). A test starts collectors with `CollectorProcess`, which binds every listener to
127.0.0.1 on free ports and points every backend endpoint at loopback, so nothing ever reaches
for a compose hostname. What a collector exported is read back from OTLP JSON lines written by
the file exporter (`read_otlp`), flattened into spans, log records and metric points.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import LOOPBACK, REPO_ROOT, ManagedProcess, free_port, http_ok

COLLECTOR_DIR = REPO_ROOT / "collector"
BASE_CONFIG = COLLECTOR_DIR / "otelcol.yaml"
OVERLAY_DIR = COLLECTOR_DIR / "overlays"
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
    return [arg for config in configs for arg in ("--config", str(config))]


def dead_endpoint() -> str:
    """host:port on loopback where nothing listens: a backend that is down."""
    return f"{LOOPBACK}:{free_port()}"


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
        down = dead_endpoint()
        return {
            "OTELCOL_LISTEN_HOST": LOOPBACK,
            "OTELCOL_OTLP_GRPC_PORT": str(self.grpc_port),
            "OTELCOL_OTLP_HTTP_PORT": str(self.http_port),
            "OTELCOL_HEALTH_PORT": str(self.health_port),
            "OTELCOL_METRICS_PORT": str(self.metrics_port),
            "OTELCOL_PPROF_PORT": str(self.pprof_port),
            "OTELCOL_STORAGE_DIR": str(self.storage_dir),
            # Short back-off and span_metrics interval keep tests quick; production uses defaults.
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
        self.runs += 1
        self.process = ManagedProcess(
            f"{self.name}-run{self.runs}",
            [self.binary, *config_args(self.configs)],
            log_dir=self.log_dir,
            env=self.environment(),
        ).start()
        try:
            self.process.wait_ready(
                lambda: http_ok(f"http://{LOOPBACK}:{self.health_port}/"), timeout=timeout
            )
        except BaseException:
            self.process.stop()  # a collector that never got ready must not outlive the test
            raise
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
    """A second collector standing in for a backend: receives OTLP, writes one JSON-lines file.

    `metrics_path`/`logs_path` mimic a backend's OTLP routes (Prometheus: /api/v1/otlp/v1/metrics,
    Loki: /otlp/v1/logs). Ports stay the same across restarts; each run writes its own file.
    """

    binary: Path
    log_dir: Path
    output_dir: Path
    name: str = "downstream"
    metrics_path: str = "/v1/metrics"
    logs_path: str = "/v1/logs"
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    runs: int = 0
    process: ManagedProcess | None = None

    @property
    def output(self) -> Path:
        return self.output_dir / f"{self.name}-run{self.runs}.json"

    def outputs(self) -> list[Path]:
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

    def start(self) -> DownstreamCollector:
        self.runs += 1
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            f"{self.name}-run{self.runs}",
            [self.binary, "--config", DOWNSTREAM_CONFIG],
            log_dir=self.log_dir,
            env={
                "DOWNSTREAM_GRPC_PORT": str(self.grpc_port),
                "DOWNSTREAM_HTTP_PORT": str(self.http_port),
                "DOWNSTREAM_HEALTH_PORT": str(self.health_port),
                "DOWNSTREAM_METRICS_PATH": self.metrics_path,
                "DOWNSTREAM_LOGS_PATH": self.logs_path,
                "DOWNSTREAM_OUTPUT": str(self.output),
            },
        ).start()
        try:
            self.process.wait_ready(lambda: http_ok(f"http://{LOOPBACK}:{self.health_port}/"))
        except BaseException:
            self.process.stop()
            raise
        return self

    def stop(self) -> int | None:
        return self.process.stop(timeout=30) if self.process is not None else None

    def received(self) -> OtlpData:
        return read_otlp(*self.outputs())


# --- reading OTLP JSON ---------------------------------------------------------------------


def attribute_value(value: dict[str, Any]) -> Any:
    """Python value of an OTLP JSON AnyValue."""
    if "arrayValue" in value:
        return [attribute_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes_of(value["kvlistValue"].get("values", []))
    for kind in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def attributes_of(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: attribute_value(item.get("value", {})) for item in items or []}


@dataclass(frozen=True)
class SpanRecord:
    service: str
    name: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class LogRecordData:
    service: str
    body: Any
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class MetricPoint:
    service: str
    name: str
    kind: str
    attributes: dict[str, Any]
    exemplar_trace_ids: tuple[str, ...]
    resource: dict[str, Any]


@dataclass
class OtlpData:
    """Everything found in one or more OTLP JSON-lines files, flattened."""

    spans: list[SpanRecord] = field(default_factory=list)
    logs: list[LogRecordData] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    raw: str = ""

    def span_ids(self, name: str | None = None) -> set[tuple[str, str]]:
        return {(s.trace_id, s.span_id) for s in self.spans if name is None or s.name == name}


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text(errors="replace").splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:  # the last line may be half-written while we read
            continue


def read_otlp(*paths: Path) -> OtlpData:
    data = OtlpData()
    raw: list[str] = []
    for path in paths:
        if path.exists():
            raw.append(path.read_text(errors="replace"))
        for request in _lines(path):
            _collect(request, data)
    data.raw = "\n".join(raw)
    return data


def _collect(request: dict[str, Any], data: OtlpData) -> None:
    for resource_spans in request.get("resourceSpans", []):
        resource = attributes_of(resource_spans.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        for scope in resource_spans.get("scopeSpans", []):
            for span in scope.get("spans", []):
                data.spans.append(
                    SpanRecord(
                        service=service,
                        name=span.get("name", ""),
                        trace_id=span.get("traceId", ""),
                        span_id=span.get("spanId", ""),
                        attributes=attributes_of(span.get("attributes")),
                        resource=resource,
                    )
                )
    for resource_logs in request.get("resourceLogs", []):
        resource = attributes_of(resource_logs.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        for scope in resource_logs.get("scopeLogs", []):
            for record in scope.get("logRecords", []):
                data.logs.append(
                    LogRecordData(
                        service=service,
                        body=attribute_value(record.get("body", {})),
                        trace_id=record.get("traceId", ""),
                        span_id=record.get("spanId", ""),
                        attributes=attributes_of(record.get("attributes")),
                        resource=resource,
                    )
                )
    for resource_metrics in request.get("resourceMetrics", []):
        resource = attributes_of(resource_metrics.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name", ""))
        for scope in resource_metrics.get("scopeMetrics", []):
            for metric in scope.get("metrics", []):
                for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
                    for point in metric.get(kind, {}).get("dataPoints", []):
                        data.metrics.append(
                            MetricPoint(
                                service=service,
                                name=metric.get("name", ""),
                                kind=kind,
                                attributes=attributes_of(point.get("attributes")),
                                exemplar_trace_ids=tuple(
                                    e.get("traceId", "") for e in point.get("exemplars", [])
                                ),
                                resource=resource,
                            )
                        )


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


def run_burst(env: dict[str, str], marker: str, service: str, canary: str) -> dict[str, Any]:
    """Run the sender's burst in a fresh interpreter; returns its JSON summary."""
    result = subprocess.run(
        [sys.executable, str(SENDER), "burst", marker, service, canary],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, f"sender failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary
