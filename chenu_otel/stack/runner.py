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
- logs (``logs=``): VictoriaLogs, the native logs backend (``collector/overlays/victorialogs.yaml``
  on top of the base config), or, for Loki (AGPL, never built here), a second collector listening
  on Loki's OTLP route ``/otlp/v1/logs`` and writing what it receives to a JSON-lines file;
- redis-server, the demo's cache.

The config files come from a chenu-otel checkout (`StackFiles`), the binaries from
`StackBinaries` (``chenu_otel.stack.binaries``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chenu_otel.demo.provider import PROVIDER_SERVICE_NAME
from chenu_otel.stack.backends import JaegerAPI, PrometheusAPI
from chenu_otel.stack.collector import CollectorProcess, DownstreamCollector
from chenu_otel.stack.files import StackBinaries, StackFiles, find_repo
from chenu_otel.stack.otlp_json import OtlpData
from chenu_otel.stack.processes import LOOPBACK, ManagedProcess, free_port, http_ok, poll_until
from chenu_otel.stack.redis_server import redis_server
from chenu_otel.stack.servers import JaegerServer, PrometheusServer, VictoriaLogsServer

__all__ = [
    "JOB",
    "LOGS_BACKENDS",
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
_CLIENT_DURATION: Final = "http_client_request_duration_seconds"
#: What ``logs=`` accepts: the native logs backend, or the stand-in for Loki's OTLP route.
LOGS_BACKENDS: Final = ("victorialogs", "loki-standin")


@dataclass
class NativeStack:
    """Start/stop the whole native stack in `work_dir`; ask the backends what landed.

    `logs` picks the logs backend (one of `LOGS_BACKENDS`): ``victorialogs`` needs
    ``binaries.victoria_logs``; ``loki-standin`` proves Loki's OTLP route with a file sink."""

    work_dir: Path
    binaries: StackBinaries
    files: StackFiles
    with_alertmanager: bool = True
    logs: str = "victorialogs"
    processes: list[ManagedProcess] = field(default_factory=list)
    collector: CollectorProcess | None = None
    loki: DownstreamCollector | None = None
    victorialogs: VictoriaLogsServer | None = None
    jaeger_server: JaegerServer = field(init=False)
    prometheus_server: PrometheusServer = field(init=False)
    alertmanager_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    demo_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        if self.logs not in LOGS_BACKENDS:
            raise ValueError(f"logs must be one of {LOGS_BACKENDS}, not {self.logs!r}")
        self.jaeger_server = JaegerServer(self.binaries.jaeger, self.files, self.logs_dir)
        self.prometheus_server = PrometheusServer(
            self.binaries.prometheus, self.files, self.work_dir, self.logs_dir
        )
        if self.logs == "victorialogs":
            if self.binaries.victoria_logs is None:
                raise ValueError("logs='victorialogs' needs binaries.victoria_logs")
            self.victorialogs = VictoriaLogsServer(
                self.binaries.victoria_logs, self.work_dir, self.logs_dir
            )

    # --- addresses ---------------------------------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def prometheus_url(self) -> str:
        return self.prometheus_server.url

    @property
    def jaeger_url(self) -> str:
        return self.jaeger_server.url

    @property
    def alertmanager_url(self) -> str:
        return f"http://{LOOPBACK}:{self.alertmanager_port}"

    @property
    def demo_url(self) -> str:
        return f"http://{LOOPBACK}:{self.demo_port}"

    @property
    def prometheus(self) -> PrometheusAPI:
        return self.prometheus_server.api

    @property
    def jaeger(self) -> JaegerAPI:
        return self.jaeger_server.api

    # --- lifecycle ---------------------------------------------------------------------------
    def _run(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process.start()

    def start(self) -> NativeStack:
        """Start every process in data-flow order, backends first, and wait until each is
        ready; on any failure stop what started and raise."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.processes.append(self.jaeger_server.start())
            self._start_logs_backend()
            self._start_collector()
            if self.with_alertmanager:
                self._start_alertmanager()
            self.processes.append(self.prometheus_server.start(self.prometheus_targets()))
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

    def _start_logs_backend(self) -> None:
        if self.victorialogs is not None:
            self.processes.append(self.victorialogs.start())
            return
        self.loki = DownstreamCollector(
            self.binaries.collector,
            self.logs_dir,
            self.work_dir / "loki-standin",
            name="loki-standin",
            logs_path=LOKI_LOGS_PATH,
        ).start()

    def _start_collector(self) -> None:
        configs = [self.files.collector_config]
        environ = {
            "JAEGER_OTLP_ENDPOINT": self.jaeger_server.otlp_grpc_address,
            "PROMETHEUS_OTLP_ENDPOINT": self.prometheus_server.otlp_endpoint,
            "DEPLOYMENT_ENVIRONMENT": "native",
        }
        if self.victorialogs is not None:
            configs.append(self.files.overlay("victorialogs"))
            environ["VICTORIALOGS_URL"] = self.victorialogs.url
        else:
            assert self.loki is not None
            environ["LOKI_OTLP_ENDPOINT"] = f"{self.loki.http_url}/otlp"
        self.collector = CollectorProcess(
            binary=self.binaries.collector,
            configs=configs,
            log_dir=self.logs_dir,
            storage_dir=self.work_dir / "collector-queue",
            name="collector",
            env=environ,
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

    def prometheus_targets(self) -> dict[str, list[str]]:
        """The file_sd targets of deploy/prometheus/targets, at their loopback addresses."""
        assert self.collector is not None
        return {
            "otel-collector.yml": [f"{LOOPBACK}:{self.collector.metrics_port}"],
            "prometheus.yml": [f"{LOOPBACK}:{self.prometheus_server.port}"],
            "alertmanager.yml": [f"{LOOPBACK}:{self.alertmanager_port}"]
            if self.with_alertmanager
            else [],
        }

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

    def outbound_requests(self) -> dict[str, float]:
        """Outbound HTTP requests the apps counted, by server address."""
        answer = self.prometheus.query(f"sum by (server_address) ({_CLIENT_DURATION}_count)")
        return {
            r["metric"].get("server_address", ""): float(r["value"][1]) for r in answer["result"]
        }

    def cross_service_trace_ids(self) -> list[str]:
        """Trace ids of exemplars on the outbound duration: the demo's calls to its provider,
        each one trace across both services."""
        return self.prometheus.exemplar_trace_ids(f"{_CLIENT_DURATION}_bucket")

    def _trace_line(self, trace_id: str) -> str:
        """The trace's Jaeger URL with its span count and services as Jaeger holds them."""
        trace = self.jaeger.trace(trace_id) or {"spans": [], "processes": {}}
        services = sorted({p["serviceName"] for p in trace["processes"].values()})
        return (
            f"{self.jaeger_url}/api/traces/{trace_id}  ({len(trace['spans'])} spans; "
            f"{', '.join(services) or 'not in Jaeger yet'})"
        )

    def _logs_lines(self, trace_ids: list[str]) -> list[str]:
        if self.victorialogs is None:
            logs = self.log_records().logs
            outputs = ", ".join(str(path) for path in self.loki.outputs()) if self.loki else "-"
            return [
                f"Loki stand-in (OTLP {LOKI_LOGS_PATH})  {len(logs)} log records, "
                f"{sum(1 for r in logs if r.trace_id)} with a trace id -> {outputs}"
            ]
        api = self.victorialogs.api
        lines = [f"VictoriaLogs {self.victorialogs.url}  UI {api.ui_url}"]
        for trace_id in trace_ids[:5]:
            query = f'trace_id:"{trace_id}"'
            found = api.logsql(query)
            if found:
                lines.append(f"  LogsQL {query}: {len(found)} log lines -> {api.query_url(query)}")
                break
        else:
            lines.append("  no log lines found for the example traces")
        return lines

    def summary(self, example_count: int = 3) -> str:
        """What landed where, with example trace ids and the Jaeger API URL to open."""
        names = self.prometheus.series_names()
        ours = sorted(n for n in names if n.startswith(("http_", "db_", "chenu_", "gen_ai_")))
        collector = sorted(n for n in names if n.startswith("otelcol_"))
        trace_ids = self.prometheus.exemplar_trace_ids(_HTTP_DURATION_BUCKETS)
        outbound = self.outbound_requests()
        alerts = self.prometheus.alerts()
        lines = [
            f"Prometheus  {self.prometheus_url}  {len(ours)} app series names, "
            f"{len(collector)} collector series names",
            f"  exemplars on http_server_request_duration_seconds: {len(trace_ids)} trace ids",
            f"  outbound HTTP (sum by server_address of {_CLIENT_DURATION}_count): "
            + (", ".join(f"{k}={v:.0f}" for k, v in sorted(outbound.items())) or "none"),
            f"Jaeger      {self.jaeger_url}  services: {', '.join(sorted(self.jaeger.services()))}",
            *self._logs_lines(trace_ids),
            f"Alertmanager {self.alertmanager_url}  alerts in Prometheus now: "
            + (", ".join(f"{a['labels']['alertname']} ({a['state']})" for a in alerts) or "none"),
            "Example traces (exemplar → Jaeger):",
        ]
        lines += [f"  {self.jaeger_url}/api/traces/{t}" for t in trace_ids[:example_count]]
        across = self.cross_service_trace_ids()
        lines.append(
            f"A trace across {SERVICE_NAME} → {PROVIDER_SERVICE_NAME} "
            f"(exemplar of {_CLIENT_DURATION}_bucket):"
        )
        lines.append(f"  {self._trace_line(across[0])}" if across else "  none yet")
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
                **(
                    {"victorialogs": f"{self.victorialogs.url}/health"}
                    if self.victorialogs is not None
                    else {}
                ),
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
