"""The collector fleet on loopback with real binaries: apps -> agents -> gateways -> backends.

    two apps (tests/e2e/fleet_app.py: frontend calls backend, W3C trace context in between)
      frontend -> agent 0 ┐                 ┌ gateway 0 ┐
      backend  -> agent 1 ┴ load_balancing ─┼ gateway 1 ┼─ traces, tail-sampled -> Jaeger v2
                            by trace id     └ gateway 2 ┘─ span_metrics, every span -> Prometheus 3
      agents: app metrics straight to Prometheus (collector/fleet/agent.yaml)

Agents run collector/otelcol.yaml + collector/fleet/agent.yaml with the static resolver listing
the three gateways; gateways run collector/otelcol.yaml + collector/fleet/gateway.yaml. Jaeger
uses deploy/jaeger/config.yaml, Prometheus deploy/prometheus/prometheus.yml with compose's
flags, as the single-collector pipeline does. Every listener is on 127.0.0.1 at a free port.

Run it by hand to see the fleet work (prints where the data landed, example trace URLs):

    python -m tests.e2e.fleet [--requests N] [--rate R] [--keep-running] [--work-dir DIR]

The module also carries two exact replicas of upstream decisions, so a test can say which
gateway a trace must reach and whether the probabilistic policy must keep it:
`HashRing` (loadbalancing exporter v0.161.0, consistent_hashing.go: CRC-32 ring, 200 points per
endpoint, 131071 positions) and `share_keeps` (tail_sampling v0.161.0, probabilistic.go: FNV-1a
64 of salt + trace id against ratio x 2^64).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx

from tests.collector_fixtures import BASE_CONFIG, COLLECTOR_DIR, CollectorProcess, build_collector
from tests.deploy_files import DEPLOY, PROMETHEUS_DIR, backend_binary, load_yaml
from tests.support import LOOPBACK, REPO_ROOT, ManagedProcess, free_port, http_ok

FLEET_DIR = COLLECTOR_DIR / "fleet"
AGENT_CONFIGS = (BASE_CONFIG, FLEET_DIR / "agent.yaml")
GATEWAY_CONFIGS = (BASE_CONFIG, FLEET_DIR / "gateway.yaml")
FRONTEND = "fleet-frontend"
BACKEND = "fleet-backend"


# --- replicas of the upstream routing and sampling decisions --------------------------------

RING_POSITIONS = 131071
RING_POINTS_PER_ENDPOINT = 200
RING_PROBE_LIMIT = 10


class HashRing:
    """The loadbalancing exporter's ring for a list of endpoints (as written in the config)."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        candidates = []
        for endpoint in endpoints:
            for point in range(RING_POINTS_PER_ENDPOINT):
                digest = zlib.crc32(endpoint.encode() + point.to_bytes(4, "little"))
                candidates.append((digest % RING_POSITIONS, digest, endpoint))
        candidates.sort()
        used: set[int] = set()
        items: list[tuple[int, str]] = []
        for position, _digest, endpoint in candidates:
            probed = 0
            while position in used and probed < RING_PROBE_LIMIT:
                position = (position + 1) % RING_POSITIONS
                probed += 1
            if probed >= RING_PROBE_LIMIT:
                continue
            used.add(position)
            items.append((position, endpoint))
        self.items = sorted(items)

    def endpoint_for(self, trace_id: str) -> str:
        """The endpoint whose exporter gets every span of `trace_id` (32 hex digits)."""
        position = zlib.crc32(bytes.fromhex(trace_id)) % RING_POSITIONS
        return _ring_search(position, self.items)


def _ring_search(position: int, items: list[tuple[int, str]]) -> str:
    # Upstream's bsearch: the first item at or after the position, wrapping to the first.
    if position > items[-1][0]:
        return items[0][1]
    low, high = 0, len(items) - 1
    while low < high:
        middle = (low + high) // 2
        if items[middle][0] >= position:
            high = middle
        else:
            low = middle + 1
    return items[low][1]


DEFAULT_HASH_SALT = "default-hash-seed"
FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3


def share_keeps(trace_id: str, percentage: float, salt: str = DEFAULT_HASH_SALT) -> bool:
    """Whether tail_sampling's probabilistic policy keeps `trace_id` at `percentage` %."""
    digest = FNV64_OFFSET
    for byte in salt.encode() + bytes.fromhex(trace_id):
        digest = ((digest ^ byte) * FNV64_PRIME) % 2**64
    threshold = int(Fraction(2**64 - 1) * Fraction(percentage / 100))
    return digest <= threshold


# --- what the apps sent ---------------------------------------------------------------------


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


# --- the fleet ------------------------------------------------------------------------------


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


@dataclass
class FleetApp:
    """One app process of tests/e2e/fleet_app.py."""

    role: str
    process: ManagedProcess
    port: int
    stats_port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.stats_port}/", timeout=5) as reply:
            answer: dict[str, Any] = json.loads(reply.read().decode())
        return answer


@dataclass
class Fleet:
    """Start/stop the fleet in `work_dir`; drive it; read what reached Jaeger and Prometheus."""

    work_dir: Path
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    gateway_count: int = 3
    agent_count: int = 2
    slow_seconds: float = 0.5
    processes: list[ManagedProcess] = field(default_factory=list)
    gateways: list[CollectorProcess] = field(default_factory=list)
    agents: list[CollectorProcess] = field(default_factory=list)
    apps: dict[str, FleetApp] = field(default_factory=dict)
    prometheus_port: int = field(default_factory=free_port)
    jaeger_ports: dict[str, int] = field(
        default_factory=lambda: {
            name: free_port()
            for name in ("OTLP_GRPC", "OTLP_HTTP", "QUERY_HTTP", "QUERY_GRPC", "HEALTH", "METRICS")
        }
    )

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
    def gateway_endpoints(self) -> list[str]:
        """The agents' static resolver list, exactly as the agents are given it."""
        return [f"{LOOPBACK}:{gateway.grpc_port}" for gateway in self.gateways]

    def ring(self) -> HashRing:
        return HashRing(self.gateway_endpoints)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Fleet:
        """Build what is missing, start every process, wait until each is ready."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        collector = build_collector()
        jaeger = backend_binary("jaeger")
        prometheus = backend_binary("prometheus")
        try:
            self._start_jaeger(jaeger)
            self._start_prometheus(prometheus)
            for index in range(self.gateway_count):
                self.gateways.append(self._collector(collector, "gateway", index, GATEWAY_CONFIGS))
            for gateway in self.gateways:
                gateway.start()
            for index in range(self.agent_count):
                agent = self._collector(collector, "agent", index, AGENT_CONFIGS)
                self.agents.append(agent.start())
            self.write_prometheus_targets()
            backend = self._start_app("backend", self.agents[-1])
            self._start_app("frontend", self.agents[0], downstream=backend.url)
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process.start()

    def _start_jaeger(self, binary: Path) -> None:
        env = {"JAEGER_LISTEN_HOST": LOOPBACK}
        env.update({f"JAEGER_{name}_PORT": str(port) for name, port in self.jaeger_ports.items()})
        self._run(
            ManagedProcess(
                "jaeger",
                [binary, "--config", DEPLOY / "jaeger" / "config.yaml"],
                log_dir=self.logs_dir,
                env=env,
            )
        ).wait_ready(lambda: http_ok(f"{self.jaeger_url}/api/services"))

    def _prometheus_config_dir(self) -> Path:
        """deploy/prometheus/prometheus.yml unchanged, the shipped rules, loopback targets (the
        collectors' own metrics ports are added once they are known)."""
        config_dir = self.work_dir / "prometheus"
        config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROMETHEUS_DIR / "prometheus.yml", config_dir / "prometheus.yml")
        rules = config_dir / "rules"
        if not rules.exists():
            rules.symlink_to(PROMETHEUS_DIR / "rules", target_is_directory=True)
        targets = config_dir / "targets"
        targets.mkdir(exist_ok=True)
        for name in (path.name for path in (PROMETHEUS_DIR / "targets").glob("*.yml")):
            addresses = [f"{LOOPBACK}:{self.prometheus_port}"] if name == "prometheus.yml" else []
            (targets / name).write_text(json.dumps([{"targets": addresses}]) + "\n")
        return config_dir

    def _start_prometheus(self, binary: Path) -> None:
        config_dir = self._prometheus_config_dir()
        command = load_yaml(DEPLOY / "compose.yaml")["services"]["prometheus"]["command"]
        flags = []
        for flag in map(str, command):
            if flag.startswith("--config.file="):
                flag = f"--config.file={config_dir / 'prometheus.yml'}"
            elif flag.startswith("--storage.tsdb.path="):
                flag = f"--storage.tsdb.path={self.work_dir / 'prometheus-data'}"
            flags.append(flag)
        flags.append(f"--web.listen-address={LOOPBACK}:{self.prometheus_port}")
        self._run(ManagedProcess("prometheus", [binary, *flags], log_dir=self.logs_dir)).wait_ready(
            lambda: http_ok(f"{self.prometheus_url}/-/ready")
        )

    def _collector(
        self, binary: Path, role: str, index: int, configs: Sequence[Path]
    ) -> CollectorProcess:
        env = {
            "JAEGER_OTLP_ENDPOINT": f"{LOOPBACK}:{self.jaeger_ports['OTLP_GRPC']}",
            "PROMETHEUS_OTLP_ENDPOINT": f"{self.prometheus_url}/api/v1/otlp",
            "DEPLOYMENT_ENVIRONMENT": "fleet-e2e",
        }
        if role == "gateway":
            env.update(self.sampling.environment())
        else:
            env["OTELCOL_GATEWAY_ENDPOINTS"] = ",".join(self.gateway_endpoints)
            env["OTELCOL_HOST_NAME"] = f"node-{index}"
        return CollectorProcess(
            binary=binary,
            configs=list(configs),
            log_dir=self.logs_dir,
            storage_dir=self.work_dir / f"{role}-{index}-queue",
            name=f"{role}-{index}",
            env=env,
        )

    def _start_app(self, role: str, agent: CollectorProcess, downstream: str = "") -> FleetApp:
        port, stats_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": agent.grpc_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_TRACES_SAMPLER": "always_on",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        argv = [
            sys.executable,
            "-m",
            "tests.e2e.fleet_app",
            role,
            "--port",
            str(port),
            "--stats-port",
            str(stats_port),
            "--slow-seconds",
            str(self.slow_seconds),
        ]
        if downstream:
            argv += ["--downstream", downstream]
        process = ManagedProcess(f"app-{role}", argv, log_dir=self.logs_dir, env=env, cwd=REPO_ROOT)
        app = FleetApp(role, process, port, stats_port)
        self._run(process).wait_ready(app.stats)
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

    def write_prometheus_targets(self) -> None:
        """Let Prometheus scrape every collector's own metrics (file_sd picks this up)."""
        targets = self.work_dir / "prometheus" / "targets" / "otel-collector.yml"
        addresses = [f"{LOOPBACK}:{c.metrics_port}" for c in [*self.agents, *self.gateways]]
        targets.write_text(json.dumps([{"targets": addresses}]) + "\n")

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
                    mode,
                    response.headers.get("X-Trace-Id", ""),
                    response.status_code,
                    time.monotonic() - sent,
                    sent,
                )
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
                {
                    "service": service,
                    "limit": "100000",
                    "start": now_us - 3600 * 10**6,
                    "end": now_us + 60 * 10**6,
                }
            )
            for data in http_json(f"{self.jaeger_url}/api/traces?{query}").get("data") or []:
                parsed = JaegerTrace.from_api(data)
                found[parsed.trace_id] = parsed
        return found

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector, raises on an error answer."""
        answer = http_json(f"{self.prometheus_url}/api/v1/query", data={"query": expr})
        if answer.get("status") != "success":
            raise RuntimeError(f"query failed: {expr}: {answer}")
        return list(answer["data"]["result"])

    def query_sum(self, expr: str) -> float:
        """The single value of `sum(...)`-style query, 0 when there is no series yet."""
        result = self.query(expr)
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


def own_metric(collector: CollectorProcess, name: str, **labels: str) -> float:
    """Sum of one of a collector's own metrics (its /metrics), over the series carrying `labels`
    (a counter may be exposed with or without the `_total` suffix)."""
    pattern = re.compile(rf"{re.escape(name)}(_total)?(\{{.*\}})? (\S+)$")
    total = 0.0
    for line in collector.own_metrics().splitlines():
        match = pattern.match(line)
        if match and all(f'{key}="{value}"' in (match[2] or "") for key, value in labels.items()):
            total += float(match[3])
    return total


def accepted_spans(collector: CollectorProcess) -> int:
    """Spans one collector's OTLP receiver accepted since it started."""
    return int(own_metric(collector, "otelcol_receiver_accepted_spans", receiver="otlp"))


def traces_waiting_for_a_verdict(gateway: CollectorProcess) -> int:
    """Traces a gateway's tail_sampling holds in memory, not decided yet."""
    return int(own_metric(gateway, "otelcol_processor_tail_sampling_sampling_traces_on_memory"))


def http_json(url: str, *, data: dict[str, str] | None = None, timeout: float = 30) -> Any:
    """GET (or form POST) `url` and decode its JSON answer."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=timeout) as response:
        return json.loads(response.read().decode())


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


# --- verdicts --------------------------------------------------------------------------------


def expected_keep(record: RequestRecord, sampling: SamplingSettings) -> bool | None:
    """Whether the gateways' policies must keep this request's trace: True (error, slow, or the
    trace id hash falls in the share), False (no policy may), None (an ``ok`` request that took
    about as long as the latency threshold at the client: the latency policy may go either way).
    """
    if record.mode in ("error", "slow") or share_keeps(record.trace_id, sampling.percentage):
        return True
    # The client's time bounds the trace's span from above (give the server a little slack).
    if record.seconds * 1000 > sampling.latency_threshold_ms - 50:
        return None
    return False


def completeness(trace: JaegerTrace | None, emitted: int) -> str:
    """``complete`` (every span the apps emitted, from both services), ``partial`` or
    ``missing``."""
    if trace is None:
        return "missing"
    if trace.span_count == emitted and trace.services == {FRONTEND, BACKEND}:
        return "complete"
    return "partial"


@dataclass
class Observation:
    """What the fleet holds at one moment, and what the apps say they sent."""

    traces: dict[str, JaegerTrace]
    emitted: Counter[str]
    served: dict[str, int]
    span_metric_calls: dict[str, float]
    app_metric_requests: dict[str, float]
    accepted: list[int]  # per gateway, since that gateway process started


def observe(fleet: Fleet) -> Observation:
    services = (FRONTEND, BACKEND)
    return Observation(
        traces=fleet.jaeger_traces(),
        emitted=fleet.emitted_spans(),
        served=fleet.served(),
        span_metric_calls={s: fleet.span_metric_server_calls(s) for s in services},
        app_metric_requests={s: fleet.app_metric_requests(s) for s in services},
        accepted=[accepted_spans(gateway) for gateway in fleet.gateways],
    )


def settle(fleet: Fleet, *, quiet_polls: int = 4, timeout: float = 90) -> Observation:
    """Poll until the gateways hold no undecided trace and what Jaeger and Prometheus hold has
    stopped changing for `quiet_polls` polls in a row (1 s apart); returns the last observation.
    Never raises on timeout: the caller's assertions say what is missing."""
    deadline = time.monotonic() + timeout
    last: tuple[Any, ...] | None = None
    quiet = 0
    observation = observe(fleet)
    while time.monotonic() < deadline:
        observation = observe(fleet)
        undecided = sum(traces_waiting_for_a_verdict(g) for g in fleet.gateways)
        state = (
            sorted((t.trace_id, len(t.span_services)) for t in observation.traces.values()),
            observation.span_metric_calls,
            observation.app_metric_requests,
            observation.accepted,
        )
        quiet = quiet + 1 if state == last and undecided == 0 else 0
        if quiet >= quiet_polls:
            break
        last = state
        time.sleep(1)  # pacing the poll; the loop itself is the wait with a deadline
    return observation


@contextlib.contextmanager
def running_fleet(work_dir: Path, **options: Any) -> Iterator[Fleet]:
    fleet = Fleet(work_dir, **options)
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


def summary(fleet: Fleet, records: Sequence[RequestRecord], seen: Observation) -> str:
    """Where the fleet's data landed, with example trace URLs to open."""
    kept = [r for r in records if r.trace_id in seen.traces]
    lines = [
        f"gateways (static ring): {', '.join(fleet.gateway_endpoints)}; spans accepted "
        f"{seen.accepted}",
        f"agents: {', '.join(a.grpc_endpoint for a in fleet.agents)} "
        f"(frontend -> agent 0, backend -> agent {len(fleet.agents) - 1})",
        f"requests served {seen.served}; span_metrics server calls in Prometheus "
        f"{seen.span_metric_calls}; app request counts (agents -> Prometheus) "
        f"{seen.app_metric_requests}",
        f"Jaeger {fleet.jaeger_url}: kept {len(kept)} of {len(records)} traces "
        f"(errors and slow ones always, {fleet.sampling.percentage:g} % of the rest)",
    ]
    for mode in MODES_SHOWN:
        example = next((r for r in kept if r.mode == mode), None)
        if example is not None:
            lines.append(f"  {mode:5} {fleet.jaeger_url}/api/traces/{example.trace_id}")
    lines.append(
        f"Prometheus {fleet.prometheus_url}: "
        "sum by (service_name, status_code) (traces_span_metrics_calls_total)"
    )
    return "\n".join(lines)


MODES_SHOWN = ("error", "slow", "ok")


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the fleet on loopback, send traffic through it, print where it landed."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(
        prog="python -m tests.e2e.fleet",
        description="apps -> 2 agents -> 3 gateways -> Jaeger + Prometheus, on 127.0.0.1",
    )
    parser.add_argument("--requests", type=int, default=300, help="frontend requests to send")
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second")
    parser.add_argument("--sampling-percentage", type=float, default=25.0)
    parser.add_argument("--keep-running", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument("--work-dir", type=Path, help="keep logs and data here (default: temp)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="chenu-otel-fleet-"))
    print(f"[fleet] building/starting; logs in {work_dir / 'logs'}", flush=True)
    sampling = SamplingSettings(percentage=args.sampling_percentage)
    try:
        with running_fleet(work_dir, sampling=sampling) as fleet:
            modes = mode_mix(args.requests, error_share=0.1, slow_share=0.1, seed=1)
            print(f"[fleet] sending {len(modes)} requests at {args.rate:g}/s", flush=True)
            records = fleet.drive(modes, rate_per_s=args.rate)
            print(summary(fleet, records, settle(fleet)), flush=True)
            if args.keep_running:
                print("[fleet] running; Ctrl-C stops everything", flush=True)
                signal.pause()
    except KeyboardInterrupt:
        print("\n[fleet] stopping", flush=True)
    print("[fleet] stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
