"""The native pipeline: the deploy/ stack on loopback with real binaries, no Docker.

    scripts/pipeline                 # start, drive the demo, print where data landed, stop
    scripts/pipeline --keep-running  # ... then stay up until Ctrl-C

What runs, each with the same config file as deploy/compose.yaml, endpoints given through the
environment (every listener on 127.0.0.1, free ports):

- the demo app (chenu_otel.demo) sending OTLP to
- our collector (chenu-otelcol from scripts/build-collector, collector/otelcol.yaml), exporting
  metrics to Prometheus' native OTLP receiver, traces to Jaeger, logs to a Loki stand-in;
- Prometheus 3 (scripts/build-backends) with the flags of compose's `prometheus` service and
  deploy/prometheus/prometheus.yml copied byte for byte next to the shipped rules; only the
  file_sd target files (targets/*.yml) are generated with loopback addresses;
- Jaeger v2 with deploy/jaeger/config.yaml; Alertmanager with deploy/alertmanager rendered by its
  render-config.sh (no receivers configured: alerts are only kept);
- for Loki (AGPL, never built here): a second real collector listening on Loki's OTLP route
  /otlp/v1/logs and writing what it receives to a JSON-lines file;
- redis-server from Debian (scripts/install-debian-packages).

The e2e tests (tests/e2e/test_pipeline_*.py) drive the same class.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from tests.collector_fixtures import (
    BASE_CONFIG,
    CollectorProcess,
    DownstreamCollector,
    OtlpData,
    build_collector,
)
from tests.deploy_files import DEPLOY, PROMETHEUS_DIR, backend_binary, load_yaml
from tests.support import (
    LOOPBACK,
    REPO_ROOT,
    ManagedProcess,
    free_port,
    http_ok,
    poll_until,
    port_open,
)

SERVICE_NAME = "chenu-backend"
SERVICE_NAMESPACE = "chenu"
JOB = f"{SERVICE_NAMESPACE}/{SERVICE_NAME}"
LOKI_LOGS_PATH = "/otlp/v1/logs"


def http_json(url: str, *, data: dict[str, str] | None = None, timeout: float = 10) -> Any:
    """GET (or form POST) `url` and decode its JSON answer."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=timeout) as response:
        return json.loads(response.read().decode())


def redis_server() -> Path:
    """redis-server on PATH; scripts/install-debian-packages installs it when missing."""
    found = shutil.which("redis-server")
    if found is None:
        result = subprocess.run(
            [str(REPO_ROOT / "scripts" / "install-debian-packages")],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError(
                f"redis-server unavailable; scripts/install-debian-packages: {result.stderr}"
            )
    return Path(found)


def prometheus_flags() -> list[str]:
    """The flags compose gives its Prometheus (one source for both runs)."""
    command = load_yaml(DEPLOY / "compose.yaml")["services"]["prometheus"]["command"]
    return [str(flag) for flag in command]


@dataclass
class NativePipeline:
    """Start/stop the whole native pipeline in `work_dir`; query where the data landed."""

    work_dir: Path
    with_alertmanager: bool = True
    processes: list[ManagedProcess] = field(default_factory=list)
    collector: CollectorProcess | None = None
    loki: DownstreamCollector | None = None
    prometheus_port: int = field(default_factory=free_port)
    alertmanager_port: int = field(default_factory=free_port)
    jaeger_ports: dict[str, int] = field(
        default_factory=lambda: {
            name: free_port()
            for name in ("OTLP_GRPC", "OTLP_HTTP", "QUERY_HTTP", "QUERY_GRPC", "HEALTH", "METRICS")
        }
    )
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

    # --- lifecycle ---------------------------------------------------------------------------

    def _run(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process.start()

    def start(self) -> NativePipeline:
        """Build what is missing, then start every process and wait until each is ready."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        collector_binary = build_collector()
        prometheus = backend_binary("prometheus")
        jaeger = backend_binary("jaeger")
        redis = redis_server()
        try:
            self._start_jaeger(jaeger)
            self._start_loki_standin(collector_binary)
            self._start_collector(collector_binary)
            if self.with_alertmanager:
                self._start_alertmanager(backend_binary("alertmanager"))
            self._start_prometheus(prometheus)
            self._start_redis(redis)
            self._start_demo()
        except BaseException:
            self.stop()
            raise
        return self

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

    def _start_loki_standin(self, binary: Path) -> None:
        self.loki = DownstreamCollector(
            binary,
            self.logs_dir,
            self.work_dir / "loki-standin",
            name="loki-standin",
            logs_path=LOKI_LOGS_PATH,
        ).start()

    def _start_collector(self, binary: Path) -> None:
        assert self.loki is not None
        self.collector = CollectorProcess(
            binary=binary,
            configs=[BASE_CONFIG],
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

    def _start_alertmanager(self, binary: Path) -> None:
        rendered = self.work_dir / "alertmanager" / "alertmanager.yml"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY"}
        }
        env["ALERTMANAGER_TEMPLATE"] = str(DEPLOY / "alertmanager" / "alertmanager.yml")
        env["ALERTMANAGER_RENDERED"] = str(rendered)
        subprocess.run(
            ["sh", str(DEPLOY / "alertmanager" / "render-config.sh")],
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )
        self._run(
            ManagedProcess(
                "alertmanager",
                [
                    binary,
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
        config_dir = self.work_dir / "prometheus"
        config_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROMETHEUS_DIR / "prometheus.yml", config_dir / "prometheus.yml")
        rules = config_dir / "rules"
        if not rules.exists():
            rules.symlink_to(PROMETHEUS_DIR / "rules", target_is_directory=True)
        targets = config_dir / "targets"
        targets.mkdir(exist_ok=True)
        loopback = {
            "otel-collector.yml": [f"{LOOPBACK}:{self.collector.metrics_port}"],
            "prometheus.yml": [f"{LOOPBACK}:{self.prometheus_port}"],
            "alertmanager.yml": [f"{LOOPBACK}:{self.alertmanager_port}"]
            if self.with_alertmanager
            else [],
        }
        shipped = {path.name for path in (PROMETHEUS_DIR / "targets").glob("*.yml")}
        if shipped != set(loopback):
            raise RuntimeError(f"deploy/prometheus/targets holds {sorted(shipped)}: update me")
        for name, addresses in loopback.items():
            # JSON is YAML: one static group per file, like the shipped compose addresses.
            (targets / name).write_text(json.dumps([{"targets": addresses}]) + "\n")
        return config_dir

    def _start_prometheus(self, binary: Path) -> None:
        config_dir = self.prometheus_config_dir()
        flags = []
        for flag in prometheus_flags():
            if flag.startswith("--config.file="):
                flag = f"--config.file={config_dir / 'prometheus.yml'}"
            elif flag.startswith("--storage.tsdb.path="):
                flag = f"--storage.tsdb.path={self.work_dir / 'prometheus-data'}"
            flags.append(flag)
        flags.append(f"--web.listen-address={LOOPBACK}:{self.prometheus_port}")
        self._run(ManagedProcess("prometheus", [binary, *flags], log_dir=self.logs_dir)).wait_ready(
            lambda: http_ok(f"{self.prometheus_url}/-/ready")
        )

    def _start_redis(self, binary: Path) -> None:
        self._run(
            ManagedProcess(
                "redis",
                [
                    binary,
                    "--port",
                    str(self.redis_port),
                    "--bind",
                    LOOPBACK,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                log_dir=self.logs_dir,
            )
        ).wait_ready(lambda: port_open(self.redis_port))

    def demo_env(self) -> dict[str, str]:
        assert self.collector is not None
        return {
            "OTEL_SERVICE_NAME": SERVICE_NAME,
            "OTEL_RESOURCE_ATTRIBUTES": f"service.namespace={SERVICE_NAMESPACE},"
            "service.version=1.0.0,deployment.environment=native",
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
        self._run(
            ManagedProcess(
                "demo",
                [
                    sys.executable,
                    "-m",
                    "chenu_otel.demo",
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(self.demo_port),
                ],
                log_dir=self.logs_dir,
                env=self.demo_env(),
                cwd=self.work_dir,
            )
        ).wait_ready(lambda: http_ok(f"{self.demo_url}/health"))

    def run_load(self, requests: int = 300, seed: int = 7) -> str:
        """Drive the demo with its load generator; returns the generator's summary."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "chenu_otel.demo.load",
                "--base-url",
                self.demo_url,
                "--requests",
                str(requests),
                "--seed",
                str(seed),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"load generator failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def exercise_demo(self, cycles: int = 40) -> dict[str, int]:
        """Deterministic traffic for the e2e assertions: every route the tests rely on, each
        cycle = create a thread, post two messages (SQLite + Redis), read it three times
        (Redis, then SQLite on a miss), one /flaky call (a 500 every fifth) and one unmatched
        path. A dropped keep-alive connection (the server closes it after a 500) is retried
        once on a fresh connection. Returns request counts by status code."""
        import httpx

        counts: dict[str, int] = {}
        with httpx.Client(base_url=self.demo_url, timeout=10) as client:

            def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                try:
                    response = client.request(method, path, **kwargs)
                except httpx.TransportError:
                    response = client.request(method, path, **kwargs)
                counts[str(response.status_code)] = counts.get(str(response.status_code), 0) + 1
                return response

            for cycle in range(cycles):
                headers = {"X-User-ID": f"user-{cycle % 17}"}
                created = call("POST", "/threads", json={"title": f"e2e {cycle}"}, headers=headers)
                thread_id = created.json()["id"]
                for turn in range(2):
                    call(
                        "POST",
                        f"/threads/{thread_id}/messages",
                        json={"content": f"question {cycle}.{turn}"},
                        headers=headers,
                    )
                for _ in range(3):
                    call("GET", f"/threads/{thread_id}", headers=headers)
                call("GET", "/flaky", headers=headers)
                call("GET", f"/no/such/path/{cycle}", headers=headers)
        return counts

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

    def query(self, expr: str) -> dict[str, Any]:
        """Instant query; returns Prometheus' `data` object, raises on an error answer."""
        answer = http_json(f"{self.prometheus_url}/api/v1/query", data={"query": expr})
        if answer.get("status") != "success":
            raise RuntimeError(f"query failed: {expr}: {answer}")
        return dict(answer["data"])

    def series_names(self) -> set[str]:
        answer = http_json(f"{self.prometheus_url}/api/v1/label/__name__/values")
        return set(answer["data"])

    def exemplars(self, expr: str, window_s: float = 3600) -> list[dict[str, Any]]:
        now = time.time()
        answer = http_json(
            f"{self.prometheus_url}/api/v1/query_exemplars",
            data={"query": expr, "start": str(now - window_s), "end": str(now + 60)},
        )
        return list(answer["data"])

    def exemplar_trace_ids(self, expr: str) -> list[str]:
        ids: list[str] = []
        for series in self.exemplars(expr):
            for exemplar in series["exemplars"]:
                trace_id = exemplar["labels"].get("trace_id")
                if trace_id and trace_id not in ids:
                    ids.append(trace_id)
        return ids

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """Jaeger's /api/traces/{id} answer for one trace, or None when Jaeger does not know it."""
        try:
            answer = http_json(f"{self.jaeger_url}/api/traces/{trace_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        data = answer.get("data") or []
        return dict(data[0]) if data else None

    def log_records(self) -> OtlpData:
        assert self.loki is not None
        return self.loki.received()

    def summary(self, example_count: int = 3) -> str:
        """What landed where, with example trace ids and the Jaeger API URL to open."""
        names = self.series_names()
        ours = sorted(n for n in names if n.startswith(("http_", "db_", "chenu_", "gen_ai_")))
        collector = sorted(n for n in names if n.startswith("otelcol_"))
        trace_ids = self.exemplar_trace_ids("http_server_request_duration_seconds_bucket")
        logs = self.log_records().logs
        services = http_json(f"{self.jaeger_url}/api/services").get("data") or []
        alerts = http_json(f"{self.prometheus_url}/api/v1/alerts")["data"]["alerts"]
        lines = [
            f"Prometheus  {self.prometheus_url}  {len(ours)} app series names, "
            f"{len(collector)} collector series names",
            f"  exemplars on http_server_request_duration_seconds: {len(trace_ids)} trace ids",
            f"Jaeger      {self.jaeger_url}  services: {', '.join(sorted(services))}",
            f"Loki stand-in (OTLP {LOKI_LOGS_PATH})  {len(logs)} log records, "
            f"{sum(1 for r in logs if r.trace_id)} with a trace id -> {self.loki_output()}",
            f"Alertmanager {self.alertmanager_url}  alerts in Prometheus now: "
            + (", ".join(f"{a['labels']['alertname']} ({a['state']})" for a in alerts) or "none"),
            "Example traces (exemplar → Jaeger):",
        ]
        lines += [f"  {self.jaeger_url}/api/traces/{t}" for t in trace_ids[:example_count]]
        return "\n".join(lines)

    def loki_output(self) -> str:
        assert self.loki is not None
        return ", ".join(str(path) for path in self.loki.outputs())


@contextlib.contextmanager
def running_pipeline(work_dir: Path, **options: Any) -> Iterator[NativePipeline]:
    pipeline = NativePipeline(work_dir, **options)
    pipeline.start()
    try:
        yield pipeline
    finally:
        pipeline.stop()


def wait_for_data(pipeline: NativePipeline, timeout: float = 90) -> None:
    """Poll until HTTP series with exemplars are in Prometheus and traces are in Jaeger."""

    def landed() -> bool:
        services = http_json(f"{pipeline.jaeger_url}/api/services").get("data") or []
        return bool(
            pipeline.query("http_server_request_duration_seconds_count")["result"]
            and pipeline.exemplar_trace_ids("http_server_request_duration_seconds_bucket")
            and SERVICE_NAME in services
        )

    poll_until(landed, timeout=timeout, interval=0.5, what="HTTP series, exemplars and traces")


def wait_for_collector_scrape(pipeline: NativePipeline, timeout: float = 45) -> None:
    """Poll until Prometheus scraped the collector's own metrics (scrape interval 15 s)."""

    def scraped() -> bool:
        return bool(pipeline.query('up{job="otel-collector"} == 1')["result"]) and any(
            name.startswith("otelcol_") for name in pipeline.series_names()
        )

    poll_until(scraped, timeout=timeout, interval=0.5, what="the collector's metrics scraped")


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/pipeline", description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="load generator requests")
    parser.add_argument("--keep-running", action="store_true", help="stay up until Ctrl-C")
    parser.add_argument("--work-dir", type=Path, help="keep logs and data here (default: temp)")
    args = parser.parse_args(argv)
    # Also SIGINT explicitly: a shell starting us in the background leaves it ignored.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="chenu-otel-pipeline-"))
    print(f"[pipeline] building/starting; logs in {work_dir / 'logs'}", flush=True)
    failed = False
    try:
        with running_pipeline(work_dir) as pipeline:
            print(
                f"[pipeline] demo app {pipeline.demo_url}; sending {args.requests} requests",
                flush=True,
            )
            try:
                print(pipeline.run_load(args.requests), flush=True)
            except RuntimeError as exc:  # what was sent before the failure still shows below
                failed = True
                last = "\n".join(str(exc).strip().splitlines()[-3:])
                print(
                    f"[pipeline] LOAD GENERATOR FAILED (data sent so far follows):\n{last}",
                    flush=True,
                )
            wait_for_data(pipeline)
            wait_for_collector_scrape(pipeline)
            print(pipeline.summary(), flush=True)
            if args.keep_running:
                print("[pipeline] running; Ctrl-C stops everything", flush=True)
                signal.pause()
    except KeyboardInterrupt:
        print("\n[pipeline] stopping", flush=True)
    print("[pipeline] stopped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
