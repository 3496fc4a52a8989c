"""The collector fleet on loopback with real binaries: apps → agents → gateways → backends.

    two apps (chenu_otel.stack.fleet_app: frontend calls backend, W3C trace context in between)
      frontend -> agent 0 ┐                 ┌ gateway 0 ┐
      backend  -> agent 1 ┴ load_balancing ─┼ gateway 1 ┼─ traces, tail-sampled -> Jaeger v2
                            by trace id     └ gateway 2 ┘─ span_metrics, every span -> Prometheus 3
      agents: app metrics straight to Prometheus (collector/fleet/agent.yaml)

Agents run collector/otelcol.yaml + collector/fleet/agent.yaml with the static resolver listing
the three gateways; gateways run collector/otelcol.yaml + collector/fleet/gateway.yaml. Jaeger
and Prometheus are the stack's (`chenu_otel.stack.servers`, deploy/'s files). Every listener is
on 127.0.0.1 at a free port. ``chenu-otel stack run --fleet`` runs it and prints where the
traces landed (`chenu_otel.stack.fleet_report`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from chenu_otel.stack.backends import http_json
from chenu_otel.stack.binaries import find_binary
from chenu_otel.stack.collector import CollectorProcess
from chenu_otel.stack.files import StackFiles
from chenu_otel.stack.processes import LOOPBACK, ManagedProcess, free_port
from chenu_otel.stack.servers import JaegerServer, PrometheusServer

__all__ = [
    "BACKEND",
    "FRONTEND",
    "Fleet",
    "FleetApp",
    "FleetBinaries",
    "JaegerTrace",
    "RequestRecord",
    "SamplingSettings",
    "mode_mix",
]

FRONTEND: Final = "fleet-frontend"
BACKEND: Final = "fleet-backend"


@dataclass(frozen=True)
class RequestRecord:
    """One request the driver sent to the frontend, with what it observed."""

    mode: str
    trace_id: str
    status: int
    seconds: float
    started: float  # time.monotonic() when sent
    error: str = ""


def mode_mix(count: int, *, error_share: float, slow_share: float, seed: int) -> list[str]:
    """A reproducible sequence of request modes with the given shares of errors and slow ones."""
    generator = random.Random(seed)
    modes = []
    for _ in range(count):
        draw = generator.random()
        modes.append(
            "error" if draw < error_share else "slow" if draw < error_share + slow_share else "ok"
        )
    return modes


@dataclass(frozen=True)
class SamplingSettings:
    """The gateways' tail-sampling knobs (environment of collector/fleet/gateway.yaml)."""

    percentage: float = 25.0
    latency_threshold_ms: int = 300
    decision_wait: str = "2s"

    def environment(self) -> dict[str, str]:
        return {
            "OTELCOL_TAIL_SAMPLING_PERCENTAGE": str(self.percentage),
            "OTELCOL_TAIL_SAMPLING_LATENCY_THRESHOLD_MS": str(self.latency_threshold_ms),
            "OTELCOL_TAIL_SAMPLING_DECISION_WAIT": self.decision_wait,
        }


@dataclass(frozen=True)
class FleetBinaries:
    """The binaries the fleet runs."""

    collector: Path
    jaeger: Path
    prometheus: Path

    @classmethod
    def find(cls, repo: Path | None = None) -> FleetBinaries:
        """Each from its ``CHENU_OTEL_*_BIN`` variable, the build cache or PATH."""
        return cls(
            find_binary("chenu-otelcol", repo=repo), find_binary("jaeger"),
            find_binary("prometheus"),
        )  # fmt: skip


@dataclass
class FleetApp:
    """One app process of `chenu_otel.stack.fleet_app`."""

    role: str
    process: ManagedProcess
    port: int
    stats_port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stats(self) -> dict[str, Any]:
        """What the app counted itself: requests served and spans ended, by trace id."""
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.stats_port}/", timeout=5) as reply:
            answer: dict[str, Any] = json.loads(reply.read().decode())
        return answer


@dataclass(frozen=True)
class JaegerTrace:
    """One trace as Jaeger's query API returns it: span ids with their service."""

    trace_id: str
    span_services: tuple[tuple[str, str], ...]  # (span id, service name), duplicates kept

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> JaegerTrace:
        processes = {key: value["serviceName"] for key, value in data["processes"].items()}
        spans = tuple((s["spanID"], processes[s["processID"]]) for s in data["spans"])
        return cls(str(data["traceID"]).rjust(32, "0"), spans)

    @property
    def span_count(self) -> int:
        return len({span_id for span_id, _ in self.span_services})

    @property
    def duplicates(self) -> int:
        return len(self.span_services) - self.span_count

    @property
    def services(self) -> set[str]:
        return {service for _, service in self.span_services}


@dataclass
class Fleet:
    """Start/stop the fleet in `work_dir`; drive it; read what reached Jaeger and Prometheus."""

    work_dir: Path
    binaries: FleetBinaries
    files: StackFiles
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    gateway_count: int = 3
    agent_count: int = 2
    slow_seconds: float = 0.5
    processes: list[ManagedProcess] = field(default_factory=list)
    gateways: list[CollectorProcess] = field(default_factory=list)
    agents: list[CollectorProcess] = field(default_factory=list)
    apps: dict[str, FleetApp] = field(default_factory=dict)
    jaeger: JaegerServer = field(init=False)
    prometheus: PrometheusServer = field(init=False)

    def __post_init__(self) -> None:
        self.jaeger = JaegerServer(self.binaries.jaeger, self.files, self.logs_dir)
        self.prometheus = PrometheusServer(
            self.binaries.prometheus, self.files, self.work_dir, self.logs_dir
        )

    @property
    def logs_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    @property
    def jaeger_url(self) -> str:
        return self.jaeger.url

    @property
    def gateway_endpoints(self) -> list[str]:
        """The agents' static resolver list, exactly as the agents are given it."""
        return [f"{LOOPBACK}:{gateway.grpc_port}" for gateway in self.gateways]

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Fleet:
        """Start every process, backends first, and wait until each is ready; on any failure
        stop what started and raise."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.processes.append(self.jaeger.start())
            self.processes.append(self.prometheus.start())
            for index in range(self.gateway_count):
                self.gateways.append(self._collector("gateway", index))
            for gateway in self.gateways:
                gateway.start()
            for index in range(self.agent_count):
                self.agents.append(self._collector("agent", index).start())
            self.prometheus.write_targets(self.prometheus_targets())
            backend = self._start_app("backend", self.agents[-1])
            self._start_app("frontend", self.agents[0], downstream=backend.url)
        except BaseException:
            self.stop()
            raise
        return self

    def prometheus_targets(self) -> dict[str, list[str]]:
        """Prometheus scrapes itself and every collector's own metrics (file_sd)."""
        return {
            "prometheus.yml": [f"{LOOPBACK}:{self.prometheus.port}"],
            "otel-collector.yml": [
                f"{LOOPBACK}:{c.metrics_port}" for c in [*self.agents, *self.gateways]
            ],
            "alertmanager.yml": [],
        }

    def _collector(self, role: str, index: int) -> CollectorProcess:
        environ = {
            "JAEGER_OTLP_ENDPOINT": self.jaeger.otlp_grpc_address,
            "PROMETHEUS_OTLP_ENDPOINT": self.prometheus.otlp_endpoint,
            "DEPLOYMENT_ENVIRONMENT": "fleet",
        }
        if role == "gateway":
            configs = self.files.gateway_configs
            environ.update(self.sampling.environment())
        else:
            configs = self.files.agent_configs
            environ["OTELCOL_GATEWAY_ENDPOINTS"] = ",".join(self.gateway_endpoints)
            environ["OTELCOL_HOST_NAME"] = f"node-{index}"
        return CollectorProcess(
            binary=self.binaries.collector,
            configs=configs,
            log_dir=self.logs_dir,
            storage_dir=self.work_dir / f"{role}-{index}-queue",
            name=f"{role}-{index}",
            env=environ,
        )

    def _start_app(self, role: str, agent: CollectorProcess, downstream: str = "") -> FleetApp:
        port, stats_port = free_port(), free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        environ.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": agent.grpc_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_TRACES_SAMPLER": "always_on",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            }
        )
        argv = [
            sys.executable, "-m", "chenu_otel.stack.fleet_app", role, "--port", str(port),
            "--stats-port", str(stats_port), "--slow-seconds", str(self.slow_seconds),
        ]  # fmt: skip
        if downstream:
            argv += ["--downstream", downstream]
        process = ManagedProcess(
            f"app-{role}", argv, log_dir=self.logs_dir, env=environ, cwd=self.work_dir
        )
        app = FleetApp(role, process, port, stats_port)
        self.processes.append(process.start())
        process.wait_ready(app.stats)
        self.apps[role] = app
        return app

    def stop(self) -> None:
        """Stop in data-flow order so that each stage flushes into the next one."""
        for app in self.apps.values():
            app.process.stop(timeout=20)
        for collector in [*self.agents, *self.gateways]:
            collector.stop()
        for process in reversed(self.processes):
            process.stop()

    # --- faults ------------------------------------------------------------------------------

    def kill_gateway(self, index: int) -> None:
        """SIGKILL one gateway (no flush, no shutdown hooks) and wait until it is gone."""
        process = self.gateways[index].process
        assert process is not None and process.proc is not None
        os.killpg(process.proc.pid, signal.SIGKILL)
        process.proc.wait(timeout=10)

    def restart_gateway(self, index: int) -> None:
        """Start the gateway again: same ports, same disk queue directory."""
        self.gateways[index].start()

    # --- traffic -----------------------------------------------------------------------------

    def drive(
        self, modes: Sequence[str], *, rate_per_s: float, workers: int = 8
    ) -> list[RequestRecord]:
        """Send one frontend request per mode, paced at `rate_per_s`; returns what happened.

        Bounded: exactly len(modes) requests, each with a 30 s timeout."""
        frontend = self.apps["frontend"].url
        started = time.monotonic()
        records: list[RequestRecord] = []
        lock = threading.Lock()

        def send(index: int, mode: str, client: httpx.Client) -> None:
            delay = started + index / rate_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the load, not waiting for a result
            sent = time.monotonic()
            try:
                response = client.get(f"{frontend}/checkout/{mode}")
                record = RequestRecord(
                    mode, response.headers.get("X-Trace-Id", ""), response.status_code,
                    time.monotonic() - sent, sent,
                )  # fmt: skip
            except httpx.HTTPError as exc:
                record = RequestRecord(mode, "", 0, time.monotonic() - sent, sent, repr(exc))
            with lock:
                records.append(record)

        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(workers) as pool:
            for future in [pool.submit(send, i, m, client) for i, m in enumerate(modes)]:
                future.result()
        return sorted(records, key=lambda r: r.started)

    def emitted_spans(self) -> Counter[str]:
        """Spans both apps ended, by trace id (counted inside the apps)."""
        total: Counter[str] = Counter()
        for app in self.apps.values():
            total.update(app.stats()["spans"])
        return total

    def served(self) -> dict[str, int]:
        """Requests each app's route answered, by service name."""
        return {f"fleet-{role}": int(app.stats()["served"]) for role, app in self.apps.items()}

    # --- where the data landed ---------------------------------------------------------------

    def jaeger_traces(self) -> dict[str, JaegerTrace]:
        """Every trace Jaeger holds for either app, by trace id (search by each service)."""
        found: dict[str, JaegerTrace] = {}
        for service in (FRONTEND, BACKEND):
            now_us = int(time.time() * 1e6)
            query = urllib.parse.urlencode(
                {"service": service, "limit": "100000", "start": now_us - 3600 * 10**6,
                 "end": now_us + 60 * 10**6}
            )  # fmt: skip
            for data in (
                http_json(f"{self.jaeger_url}/api/traces?{query}", timeout=30).get("data") or []
            ):
                parsed = JaegerTrace.from_api(data)
                found[parsed.trace_id] = parsed
        return found

    def query_sum(self, expr: str) -> float:
        """The single value of a `sum(...)` query, 0 when there is no series yet."""
        result = self.prometheus.api.query(expr)["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def span_metric_server_calls(self, service: str) -> float:
        """Requests counted by the gateways' span_metrics for `service`, all gateways summed."""
        return self.query_sum(
            f'sum(traces_span_metrics_calls_total{{service_name="{service}",'
            f'span_kind="SPAN_KIND_SERVER"}})'
        )

    def app_metric_requests(self, service: str) -> float:
        """Requests the app's own duration histogram counted (agents -> Prometheus directly)."""
        return self.query_sum(f'sum(http_server_request_duration_seconds_count{{job="{service}"}})')
