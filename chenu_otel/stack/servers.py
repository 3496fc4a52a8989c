"""The backends as processes on loopback: Jaeger v2, Prometheus 3 and VictoriaLogs.

Each runs with the file ``deploy/`` ships (Jaeger: ``deploy/jaeger/config.yaml``; Prometheus:
compose's flags and ``deploy/prometheus/prometheus.yml`` copied byte for byte next to the
shipped rules, only the file_sd target files written with loopback addresses), every listener
on 127.0.0.1 at a free port. ``start()`` returns once the server answers its readiness check;
one that never does is stopped and the error carries its output.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from chenu_otel.stack.backends import JaegerAPI, PrometheusAPI, VictoriaLogsAPI
from chenu_otel.stack.files import StackFiles
from chenu_otel.stack.processes import LOOPBACK, ManagedProcess, free_port, http_ok

__all__ = ["JaegerServer", "PrometheusServer", "VictoriaLogsServer"]

_JAEGER_PORTS: Final = ("OTLP_GRPC", "OTLP_HTTP", "QUERY_HTTP", "QUERY_GRPC", "HEALTH", "METRICS")


def _start(process: ManagedProcess, ready: Callable[[], object]) -> ManagedProcess:
    process.start()
    try:
        process.wait_ready(ready)
    except BaseException:
        process.stop()
        raise
    return process


@dataclass
class JaegerServer:
    """Jaeger v2 with ``deploy/jaeger/config.yaml``; its ports come from the environment."""

    binary: Path
    files: StackFiles
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {n: free_port() for n in _JAEGER_PORTS})
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The query API and UI."""
        return f"http://{LOOPBACK}:{self.ports['QUERY_HTTP']}"

    @property
    def otlp_grpc_address(self) -> str:
        """host:port of its OTLP/gRPC receiver (JAEGER_OTLP_ENDPOINT of the collector)."""
        return f"{LOOPBACK}:{self.ports['OTLP_GRPC']}"

    @property
    def api(self) -> JaegerAPI:
        return JaegerAPI(self.url)

    def start(self) -> ManagedProcess:
        environ = {"JAEGER_LISTEN_HOST": LOOPBACK}
        environ.update({f"JAEGER_{name}_PORT": str(p) for name, p in self.ports.items()})
        process = ManagedProcess(
            "jaeger", [self.binary, "--config", self.files.jaeger_config],
            log_dir=self.log_dir, env=environ,
        )  # fmt: skip
        self.process = _start(process, lambda: http_ok(f"{self.url}/api/services"))
        return self.process


@dataclass
class PrometheusServer:
    """Prometheus 3 as compose runs it (OTLP receiver, exemplar storage), data in `work_dir`.

    `dropped_flags` leaves some of compose's flags out (a broken set-up, on purpose)."""

    binary: Path
    files: StackFiles
    work_dir: Path
    log_dir: Path
    port: int = field(default_factory=free_port)
    dropped_flags: Sequence[str] = ()
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def otlp_endpoint(self) -> str:
        """PROMETHEUS_OTLP_ENDPOINT of the collector."""
        return f"{self.url}/api/v1/otlp"

    @property
    def api(self) -> PrometheusAPI:
        return PrometheusAPI(self.url)

    @property
    def config_dir(self) -> Path:
        return self.work_dir / "prometheus"

    def write_config(self) -> Path:
        """deploy/prometheus/prometheus.yml unchanged and the shipped rules, in `config_dir`."""
        shipped = self.files.prometheus_dir
        self.config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shipped / "prometheus.yml", self.config_dir / "prometheus.yml")
        rules = self.config_dir / "rules"
        if not rules.exists():
            rules.symlink_to(shipped / "rules", target_is_directory=True)
        return self.config_dir / "prometheus.yml"

    def write_targets(self, targets: Mapping[str, Sequence[str]]) -> None:
        """Write the file_sd target files (file name → host:port list); Prometheus re-reads
        them while it runs. Every file deploy/prometheus/targets ships must be given, so a new
        scrape job cannot silently run without targets."""
        shipped = {path.name for path in (self.files.prometheus_dir / "targets").glob("*.yml")}
        if shipped != set(targets):
            raise RuntimeError(
                f"deploy/prometheus/targets holds {sorted(shipped)}, the stack writes "
                f"{sorted(targets)}: update the caller of PrometheusServer.write_targets"
            )
        directory = self.config_dir / "targets"
        directory.mkdir(parents=True, exist_ok=True)
        for name, addresses in targets.items():
            # JSON is YAML: one static group per file, like the shipped compose addresses.
            (directory / name).write_text(json.dumps([{"targets": list(addresses)}]) + "\n")

    def flags(self) -> list[str]:
        """Compose's flags with loopback paths and address, minus `dropped_flags`."""
        missing = set(self.dropped_flags) - set(self.files.prometheus_flags())
        if missing:
            raise RuntimeError(f"compose no longer passes {sorted(missing)}")
        flags = []
        for flag in self.files.prometheus_flags():
            if flag in self.dropped_flags:
                continue
            if flag.startswith("--config.file="):
                flag = f"--config.file={self.config_dir / 'prometheus.yml'}"
            elif flag.startswith("--storage.tsdb.path="):
                flag = f"--storage.tsdb.path={self.work_dir / 'prometheus-data'}"
            flags.append(flag)
        return [*flags, f"--web.listen-address={LOOPBACK}:{self.port}"]

    def start(self, targets: Mapping[str, Sequence[str]] | None = None) -> ManagedProcess:
        """Write the config and `targets` (default: scrape only itself) and start."""
        self.write_config()
        self.write_targets(targets if targets is not None else self.self_scrape_only())
        process = ManagedProcess(
            "prometheus", [self.binary, *self.flags()], log_dir=self.log_dir
        )  # fmt: skip
        self.process = _start(process, lambda: http_ok(f"{self.url}/-/ready"))
        return self.process

    def self_scrape_only(self) -> dict[str, list[str]]:
        """Targets where Prometheus scrapes itself and nothing else."""
        names = (path.name for path in (self.files.prometheus_dir / "targets").glob("*.yml"))
        return {
            name: [f"{LOOPBACK}:{self.port}"] if name == "prometheus.yml" else [] for name in names
        }


@dataclass
class VictoriaLogsServer:
    """VictoriaLogs (the native logs backend, OTLP/HTTP protobuf in, LogsQL out)."""

    binary: Path
    work_dir: Path
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """Base URL (VICTORIALOGS_URL of collector/overlays/victorialogs.yaml)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api(self) -> VictoriaLogsAPI:
        return VictoriaLogsAPI(self.url)

    def start(self) -> ManagedProcess:
        process = ManagedProcess(
            "victorialogs",
            [self.binary, f"-httpListenAddr={LOOPBACK}:{self.port}",
             f"-storageDataPath={self.work_dir / 'victorialogs-data'}"],
            log_dir=self.log_dir,
        )  # fmt: skip
        self.process = _start(process, lambda: http_ok(f"{self.url}/health"))
        return self.process
