"""The native stack: the demo app → OTLP → our collector → the backends, on loopback.

What runs, each with the same config file as ``deploy/compose.yaml`` (endpoints given through
the environment, every listener on 127.0.0.1 on a free port):

- the demo app (``python -m chenu_otel.demo``) sending OTLP to
- our collector (chenu-otelcol with ``collector/otelcol.yaml``), exporting metrics to
  Prometheus' native OTLP receiver, traces to Jaeger, logs to a Loki stand-in;
- Prometheus 3 with the flags of compose's ``prometheus`` service and
  ``deploy/prometheus/prometheus.yml`` copied byte for byte next to the shipped rules (only the
  file_sd target files are written, with loopback addresses);
- Jaeger v2 with ``deploy/jaeger/config.yaml``; Alertmanager with ``deploy/alertmanager``
  rendered by its ``render-config.sh`` (no receivers configured: alerts are only kept);
- for Loki (AGPL, never built here): a second collector listening on Loki's OTLP route
  ``/otlp/v1/logs`` and writing what it receives to a JSON-lines file;
- redis-server, the demo's cache.

The config files come from a chenu-otel checkout (`StackFiles`), the binaries from
`StackBinaries` (``chenu_otel.stack.binaries``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chenu_otel import environment_variables as env
from chenu_otel.stack.backends import JaegerAPI, PrometheusAPI
from chenu_otel.stack.binaries import find_binary
from chenu_otel.stack.collector import CollectorProcess, DownstreamCollector
from chenu_otel.stack.otlp_json import OtlpData
from chenu_otel.stack.processes import LOOPBACK, ManagedProcess, free_port, http_ok, poll_until
from chenu_otel.stack.redis_server import redis_server

__all__ = [
    "JOB",
    "LOKI_LOGS_PATH",
    "SERVICE_NAME",
    "NativeStack",
    "StackBinaries",
    "StackFiles",
    "find_repo",
    "wait_for_collector_scrape",
    "wait_for_data",
]

SERVICE_NAME: Final = "chenu-backend"
SERVICE_NAMESPACE: Final = "chenu"
JOB: Final = f"{SERVICE_NAMESPACE}/{SERVICE_NAME}"
LOKI_LOGS_PATH: Final = "/otlp/v1/logs"
_HTTP_DURATION_BUCKETS: Final = "http_server_request_duration_seconds_bucket"


def find_repo(start: Path | None = None) -> Path:
    """The chenu-otel checkout whose ``collector/`` and ``deploy/`` files the stack runs:
    ``$CHENU_OTEL_REPO``, else the first folder up from `start` (the current directory) that
    holds them, else the checkout this package was installed from (editable install)."""
    explicit = os.environ.get(env.CHENU_OTEL_REPO)
    candidates = [Path(explicit)] if explicit else []
    here = (start or Path.cwd()).resolve()
    candidates += [here, *here.parents, Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if (candidate / "collector" / "otelcol.yaml").exists() and (
            candidate / "deploy" / "compose.yaml"
        ).exists():
            return candidate
    raise FileNotFoundError(
        "chenu-otel stack runs the collector/ and deploy/ files of a chenu-otel checkout: run it "
        f"inside one or set {env.CHENU_OTEL_REPO} to its path"
    )


@dataclass(frozen=True)
class StackFiles:
    """The config files of a checkout that the stack runs."""

    repo: Path

    @property
    def collector_config(self) -> Path:
        return self.repo / "collector" / "otelcol.yaml"

    @property
    def deploy(self) -> Path:
        return self.repo / "deploy"

    @property
    def prometheus_dir(self) -> Path:
        return self.deploy / "prometheus"

    def prometheus_flags(self) -> list[str]:
        """The flags compose gives its Prometheus (one source for both runs)."""
        import yaml  # type: ignore[import-untyped]  # the dev extra; only the stack needs it

        compose = yaml.safe_load((self.deploy / "compose.yaml").read_text())
        return [str(flag) for flag in compose["services"]["prometheus"]["command"]]


@dataclass(frozen=True)
class StackBinaries:
    """Paths of the binaries the stack runs."""

    collector: Path
    prometheus: Path
    jaeger: Path
    alertmanager: Path
    redis_server: Path

    @classmethod
    def find(cls, repo: Path | None = None) -> StackBinaries:
        """Each from its ``CHENU_OTEL_*_BIN`` variable, the build cache or PATH (see
        `chenu_otel.stack.binaries`); `MissingBinaryError` names the first one missing."""
        return cls(
            collector=find_binary("chenu-otelcol", repo=repo),
            prometheus=find_binary("prometheus"),
            jaeger=find_binary("jaeger"),
            alertmanager=find_binary("alertmanager"),
            redis_server=find_binary("redis-server"),
        )


def _jaeger_ports() -> dict[str, int]:
    names = ("OTLP_GRPC", "OTLP_HTTP", "QUERY_HTTP", "QUERY_GRPC", "HEALTH", "METRICS")
    return {name: free_port() for name in names}


@dataclass
class NativeStack:
    """Start/stop the whole native stack in `work_dir`; ask the backends what landed."""

    work_dir: Path
    binaries: StackBinaries
    files: StackFiles
    with_alertmanager: bool = True
    processes: list[ManagedProcess] = field(default_factory=list)
    collector: CollectorProcess | None = None
    loki: DownstreamCollector | None = None
    prometheus_port: int = field(default_factory=free_port)
    alertmanager_port: int = field(default_factory=free_port)
    jaeger_ports: dict[str, int] = field(default_factory=_jaeger_ports)
    redis_port: int = field(default_factory=free_port)
    demo_port: int = field(default_factory=free_port)

    # --- addresses ---------------------------------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.prometheus_port}"

    @property
    def jaeger_url(self) -> str:
        return f"http://{LOOPBACK}:{self.jaeger_ports['QUERY_HTTP']}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{LOOPBACK}:{self.alertmanager_port}"

    @property
    def demo_url(self) -> str:
        return f"http://{LOOPBACK}:{self.demo_port}"

    @property
    def prometheus(self) -> PrometheusAPI:
        return PrometheusAPI(self.prometheus_url)

    @property
    def jaeger(self) -> JaegerAPI:
        return JaegerAPI(self.jaeger_url)

    # --- lifecycle ---------------------------------------------------------------------------
    def _run(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process.start()

    def start(self) -> NativeStack:
        """Start every process in data-flow order, backends first, and wait until each is
        ready; on any failure stop what started and raise."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_jaeger()
            self._start_loki_standin()
            self._start_collector()
            if self.with_alertmanager:
                self._start_alertmanager()
            self._start_prometheus()
            self.processes.append(
                redis_server(
                    self.binaries.redis_server, self.redis_port,
                    log_dir=self.logs_dir, data_dir=self.work_dir / "redis",
                )
            )  # fmt: skip
            self._start_demo()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_jaeger(self) -> None:
        environ = {"JAEGER_LISTEN_HOST": LOOPBACK}
        environ.update({f"JAEGER_{name}_PORT": str(p) for name, p in self.jaeger_ports.items()})
        config = self.files.deploy / "jaeger" / "config.yaml"
        self._run(
            ManagedProcess(
                "jaeger", [self.binaries.jaeger, "--config", config],
                log_dir=self.logs_dir, env=environ,
            )
        ).wait_ready(lambda: http_ok(f"{self.jaeger_url}/api/services"))  # fmt: skip

    def _start_loki_standin(self) -> None:
        self.loki = DownstreamCollector(
            self.binaries.collector,
            self.logs_dir,
            self.work_dir / "loki-standin",
            name="loki-standin",
            logs_path=LOKI_LOGS_PATH,
        ).start()

    def _start_collector(self) -> None:
        assert self.loki is not None
        self.collector = CollectorProcess(
            binary=self.binaries.collector,
            configs=[self.files.collector_config],
            log_dir=self.logs_dir,
            storage_dir=self.work_dir / "collector-queue",
            name="collector",
            env={
                "JAEGER_OTLP_ENDPOINT": f"{LOOPBACK}:{self.jaeger_ports['OTLP_GRPC']}",
                "PROMETHEUS_OTLP_ENDPOINT": f"{self.prometheus_url}/api/v1/otlp",
                "LOKI_OTLP_ENDPOINT": f"{self.loki.http_url}/otlp",
                "DEPLOYMENT_ENVIRONMENT": "native",
            },
        )
        self.collector.storage_dir.mkdir(parents=True, exist_ok=True)
        self.collector.start()

    def _start_alertmanager(self) -> None:
        template_dir = self.files.deploy / "alertmanager"
        rendered = self.work_dir / "alertmanager" / "alertmanager.yml"
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in {"SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY"}
        }
        environ["ALERTMANAGER_TEMPLATE"] = str(template_dir / "alertmanager.yml")
        environ["ALERTMANAGER_RENDERED"] = str(rendered)
        subprocess.run(
            ["sh", str(template_dir / "render-config.sh")],
            env=environ, check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        self._run(
            ManagedProcess(
                "alertmanager",
                [
                    self.binaries.alertmanager,
                    f"--config.file={rendered}",
                    f"--storage.path={self.work_dir / 'alertmanager' / 'data'}",
                    f"--web.listen-address={LOOPBACK}:{self.alertmanager_port}",
                    "--cluster.listen-address=",  # no gossip port on 0.0.0.0
                ],
                log_dir=self.logs_dir,
            )
        ).wait_ready(lambda: http_ok(f"{self.alertmanager_url}/-/ready"))

    def prometheus_config_dir(self) -> Path:
        """deploy/prometheus/prometheus.yml unchanged, the shipped rules, loopback targets."""
        assert self.collector is not None
        shipped_dir = self.files.prometheus_dir
        config_dir = self.work_dir / "prometheus"
        config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shipped_dir / "prometheus.yml", config_dir / "prometheus.yml")
        rules = config_dir / "rules"
        if not rules.exists():
            rules.symlink_to(shipped_dir / "rules", target_is_directory=True)
        targets = config_dir / "targets"
        targets.mkdir(exist_ok=True)
        loopback = {
            "otel-collector.yml": [f"{LOOPBACK}:{self.collector.metrics_port}"],
            "prometheus.yml": [f"{LOOPBACK}:{self.prometheus_port}"],
            "alertmanager.yml": [f"{LOOPBACK}:{self.alertmanager_port}"]
            if self.with_alertmanager
            else [],
        }
        shipped = {path.name for path in (shipped_dir / "targets").glob("*.yml")}
        if shipped != set(loopback):
            raise RuntimeError(
                f"deploy/prometheus/targets holds {sorted(shipped)}, the stack writes "
                f"{sorted(loopback)}: update chenu_otel/stack/runner.py"
            )
        for name, addresses in loopback.items():
            # JSON is YAML: one static group per file, like the shipped compose addresses.
            (targets / name).write_text(json.dumps([{"targets": addresses}]) + "\n")
        return config_dir

    def _start_prometheus(self) -> None:
        config_dir = self.prometheus_config_dir()
        flags = []
        for flag in self.files.prometheus_flags():
            if flag.startswith("--config.file="):
                flag = f"--config.file={config_dir / 'prometheus.yml'}"
            elif flag.startswith("--storage.tsdb.path="):
                flag = f"--storage.tsdb.path={self.work_dir / 'prometheus-data'}"
            flags.append(flag)
        flags.append(f"--web.listen-address={LOOPBACK}:{self.prometheus_port}")
        self._run(
            ManagedProcess("prometheus", [self.binaries.prometheus, *flags], log_dir=self.logs_dir)
        ).wait_ready(lambda: http_ok(f"{self.prometheus_url}/-/ready"))

    def demo_env(self) -> dict[str, str]:
        """The demo app's environment: OTLP to our collector, fast export intervals."""
        assert self.collector is not None
        return {
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_RESOURCE_ATTRIBUTES": f"service.namespace={SERVICE_NAMESPACE},"
            "service.version=1.0.0,deployment.environment.name=native",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.collector.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            # Short export intervals so a short run lands in the backends within seconds.
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "CHENU_DEMO_REDIS_URL": f"redis://{LOOPBACK}:{self.redis_port}/0",
            "CHENU_DEMO_DATABASE_URL": f"sqlite:///{self.work_dir / 'chenu-demo.db'}",
        }

    def _start_demo(self) -> None:
        argv = [sys.executable, "-m", "chenu_otel.demo", "--host", LOOPBACK,
                "--port", str(self.demo_port)]  # fmt: skip
        self._run(
            ManagedProcess(
                "demo", argv, log_dir=self.logs_dir, env=self.demo_env(), cwd=self.work_dir
            )
        ).wait_ready(lambda: http_ok(f"{self.demo_url}/health"))

    def run_load(self, requests: int = 300, seed: int = 7) -> str:
        """Drive the demo with its load generator; returns the generator's summary."""
        result = subprocess.run(
            [sys.executable, "-m", "chenu_otel.demo.load", "--base-url", self.demo_url,
             "--requests", str(requests), "--seed", str(seed)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def stop(self) -> None:
        """Stop in data-flow order so that each stage flushes into the next one."""
        by_name = {p.name: p for p in self.processes}
        demo = by_name.pop("demo", None)
        if demo is not None:
            demo.stop(timeout=20)
        if self.collector is not None:
            self.collector.stop()
        if self.loki is not None:
            self.loki.stop()
        for process in reversed(list(by_name.values())):
            process.stop()

    # --- where the data landed ---------------------------------------------------------------
    def log_records(self) -> OtlpData:
        """What the Loki stand-in received."""
        assert self.loki is not None
        return self.loki.received()

    def summary(self, example_count: int = 3) -> str:
        """What landed where, with example trace ids and the Jaeger API URL to open."""
        names = self.prometheus.series_names()
        ours = sorted(n for n in names if n.startswith(("http_", "db_", "chenu_", "gen_ai_")))
        collector = sorted(n for n in names if n.startswith("otelcol_"))
        trace_ids = self.prometheus.exemplar_trace_ids(_HTTP_DURATION_BUCKETS)
        logs = self.log_records().logs
        alerts = self.prometheus.alerts()
        outputs = ", ".join(str(path) for path in self.loki.outputs()) if self.loki else "-"
        lines = [
            f"Prometheus  {self.prometheus_url}  {len(ours)} app series names, "
            f"{len(collector)} collector series names",
            f"  exemplars on http_server_request_duration_seconds: {len(trace_ids)} trace ids",
            f"Jaeger      {self.jaeger_url}  services: {', '.join(sorted(self.jaeger.services()))}",
            f"Loki stand-in (OTLP {LOKI_LOGS_PATH})  {len(logs)} log records, "
            f"{sum(1 for r in logs if r.trace_id)} with a trace id -> {outputs}",
            f"Alertmanager {self.alertmanager_url}  alerts in Prometheus now: "
            + (", ".join(f"{a['labels']['alertname']} ({a['state']})" for a in alerts) or "none"),
            "Example traces (exemplar → Jaeger):",
        ]
        lines += [f"  {self.jaeger_url}/api/traces/{t}" for t in trace_ids[:example_count]]
        return "\n".join(lines)

    def describe(self) -> dict[str, Any]:
        """Addresses and process ids, for ``chenu-otel stack status|down``."""
        processes = {p.name: p.pid for p in self.processes}
        for extra in (self.collector, self.loki):
            if extra is not None and extra.process is not None:
                processes[extra.name] = extra.process.pid
        return {
            "work_dir": str(self.work_dir),
            "processes": processes,
            "health": {
                "demo": f"{self.demo_url}/health",
                "prometheus": f"{self.prometheus_url}/-/ready",
                "jaeger": f"{self.jaeger_url}/api/services",
                "alertmanager": f"{self.alertmanager_url}/-/ready",
            },
        }


def wait_for_data(stack: NativeStack, timeout: float = 90) -> None:
    """Poll until HTTP series with exemplars are in Prometheus and traces are in Jaeger."""

    def landed() -> bool:
        return bool(
            stack.prometheus.query("http_server_request_duration_seconds_count")["result"]
            and stack.prometheus.exemplar_trace_ids(_HTTP_DURATION_BUCKETS)
            and SERVICE_NAME in stack.jaeger.services()
        )

    poll_until(landed, timeout=timeout, interval=0.5, what="HTTP series, exemplars and traces")


def wait_for_collector_scrape(stack: NativeStack, timeout: float = 45) -> None:
    """Poll until Prometheus scraped the collector's own metrics (scrape interval 15 s)."""

    def scraped() -> bool:
        return bool(stack.prometheus.query('up{job="otel-collector"} == 1')["result"]) and any(
            name.startswith("otelcol_") for name in stack.prometheus.series_names()
        )

    poll_until(scraped, timeout=timeout, interval=0.5, what="the collector's metrics scraped")
