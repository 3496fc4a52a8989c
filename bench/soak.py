"""Soak: the same app served for minutes with the collector up and with it unreachable.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 100] [--sequential]

Two copies of one FastAPI app instrumented with chenu-otel (server span, HTTP metrics, one
child span, one structlog log record and one counter increment per request), each served by
uvicorn on 127.0.0.1 and driven at --rate requests/s (open loop, keep-alive connections) for
--minutes:

  collector up    OTLP/gRPC to a real chenu-otelcol (collector/otelcol.yaml; its backends are
                  absent, so it queues on disk in a temporary directory, as it would during a
                  backend outage: from the app's side the collector accepts everything)
  unreachable     OTLP/gRPC to a loopback port where nothing listens: the SDK's exporters retry,
                  give up, and the batch queues fill and drop

Both run at the same time by default (same machine load for both; --sequential runs them one
after the other). Printed per variant: requests, errors, p50/p99 latency, RSS after warm-up and
at the end (read from /proc), RSS growth and its trail minute by minute (bounded or leaking),
and what the SDK says it dropped or failed to export
(its own ``otel.sdk.*`` counters, read inside the app); then the ratios unreachable / up.
A benchmark, not a test: it never asserts. Everything listens on loopback and every loop is
bounded by --minutes and the request count it implies.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chenu_otel.stack.processes import LOOPBACK, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
WARM_UP_SECONDS = 30.0
CONNECTIONS = 4
STATS_PATH = "/soak/stats"


# --- the app (runs in its own process: `soak.py --serve PORT`) -------------------------------


def serve(port: int) -> None:
    """The soak app: chenu-otel configured from OTEL_* and a route doing typical work."""
    import uvicorn
    from fastapi import FastAPI
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    import chenu_otel
    from chenu_otel.instrumentation import instrument_app
    from chenu_otel.logging import get_logger, setup_logging

    health_reader = InMemoryMetricReader()
    setup_logging(level="INFO", format="json", stream=open(os.devnull, "w"))  # noqa: SIM115
    chenu_otel.configure(metric_readers=[health_reader])
    app = FastAPI(
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    )
    tracer = trace.get_tracer("chenu.soak")
    handled = metrics.get_meter("chenu.soak").create_counter(
        "chenu.soak.items", unit="{item}", description="Items handled by the soak app"
    )
    log = get_logger("chenu.soak")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        with tracer.start_as_current_span("load item"):
            handled.add(1)
            log.info("item loaded", item_id=item_id)
        return {"item": item_id}

    @app.get(STATS_PATH)
    async def stats() -> dict[str, int]:
        return sdk_losses(health_reader)

    instrument_app(app)
    uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)


def sdk_losses(reader: Any) -> dict[str, int]:
    """Items the SDK dropped or failed to export so far, by signal (its otel.sdk.* counters)."""
    from chenu_otel.pipeline_health import DROPPED_OR_FAILED

    totals: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name not in DROPPED_OR_FAILED:
                    continue
                for point in metric.data.data_points:
                    if (point.attributes or {}).get("error.type"):
                        key = metric.name.removeprefix("otel.sdk.")
                        totals[key] = totals.get(key, 0) + int(point.value)
    return totals


# --- the driver -------------------------------------------------------------------------------


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)  # readiness poll of a server we just started
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Variant:
    name: str
    otlp_endpoint: str
    port: int = field(default_factory=free_port)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    rss: list[tuple[float, float]] = field(default_factory=list)
    losses: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, log_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            {
                "OTEL_SERVICE_NAME": f"soak-{self.name.replace(' ', '-')}",
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_METRIC_EXPORT_INTERVAL": "10000",
                "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        with (log_dir / f"app-{self.port}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
            )
        wait_http(f"http://{LOOPBACK}:{self.port}{STATS_PATH}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def drive(self, seconds: float, rate: float) -> None:
        """Open-loop load at `rate` requests/s over CONNECTIONS keep-alive connections."""
        lock = threading.Lock()
        started = time.monotonic()
        per_connection = rate / CONNECTIONS
        total = int(seconds * per_connection)

        def connection() -> None:
            conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
            pace = threading.Event()
            for n in range(total):
                pace.wait(max(0.0, started + n / per_connection - time.monotonic()))
                sent = time.perf_counter()
                try:
                    conn.request("GET", f"/items/{n}")
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
                elapsed = time.perf_counter() - sent
                with lock:
                    self.latencies.append(elapsed)
                    self.errors += 0 if ok else 1
            conn.close()

        def sample_rss() -> None:
            assert self.proc is not None
            while time.monotonic() - started < seconds:
                self.rss.append((time.monotonic() - started, rss_mib(self.proc.pid)))
                stop.wait(5.0)

        stop = threading.Event()
        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        workers = [threading.Thread(target=connection) for _ in range(CONNECTIONS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stop.set()
        sampler.join()
        assert self.proc is not None
        self.rss.append((time.monotonic() - started, rss_mib(self.proc.pid)))
        url = f"http://{LOOPBACK}:{self.port}{STATS_PATH}"
        with urllib.request.urlopen(url, timeout=10) as response:
            self.losses = json.loads(response.read())

    def figures(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        after_warm_up = [mib for t, mib in self.rss if t >= WARM_UP_SECONDS] or [self.rss[-1][1]]
        return {
            "requests": len(ordered),
            "errors": self.errors,
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
            "rss_start_mib": after_warm_up[0],
            "rss_end_mib": self.rss[-1][1],
            "rss_growth_mib": self.rss[-1][1] - after_warm_up[0],
            "rss_max_mib": max(mib for _, mib in self.rss),
        }


def start_collector(work_dir: Path, log_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-collector")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    grpc_port, health_port = free_port(), free_port()
    dead = f"{LOOPBACK}:{free_port()}"
    env = {
        **os.environ,
        "OTELCOL_LISTEN_HOST": LOOPBACK,
        "OTELCOL_OTLP_GRPC_PORT": str(grpc_port),
        "OTELCOL_OTLP_HTTP_PORT": str(free_port()),
        "OTELCOL_HEALTH_PORT": str(health_port),
        "OTELCOL_METRICS_PORT": str(free_port()),
        "OTELCOL_PPROF_PORT": str(free_port()),
        "OTELCOL_STORAGE_DIR": str(work_dir / "storage"),
        "JAEGER_OTLP_ENDPOINT": dead,
        "PROMETHEUS_OTLP_ENDPOINT": f"http://{dead}/api/v1/otlp",
        "LOKI_OTLP_ENDPOINT": f"http://{dead}/otlp",
    }
    with (log_dir / "collector.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, "--config", str(REPO_ROOT / "collector" / "otelcol.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    wait_http(f"http://{LOOPBACK}:{health_port}/")
    return proc, grpc_port


def print_table(variants: list[Variant]) -> None:
    rows = {v.name: v.figures() for v in variants}
    header = (
        f"{'variant':14} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'RSS start':>9} {'RSS end':>8} {'growth':>7} {'RSS max':>8}  SDK dropped/failed"
    )
    print(header)
    for variant in variants:
        f = rows[variant.name]
        print(
            f"{variant.name:14} {f['requests']:8.0f} {f['errors']:6.0f} {f['p50_ms']:7.2f} "
            f"{f['p99_ms']:7.2f} {f['rss_start_mib']:8.1f}M {f['rss_end_mib']:7.1f}M "
            f"{f['rss_growth_mib']:6.1f}M {f['rss_max_mib']:7.1f}M  {variant.losses or 'none'}"
        )
    for variant in variants:
        per_minute = [f"{mib:.0f}" for t, mib in variant.rss if int(t) % 60 < 5]
        print(f"{variant.name:14} RSS MiB by minute: {' '.join(per_minute)}")
    up, down = rows["collector up"], rows["unreachable"]
    print(
        f"unreachable / up: p99 {down['p99_ms'] / up['p99_ms']:.2f}x, "
        f"p50 {down['p50_ms'] / up['p50_ms']:.2f}x, "
        f"RSS end {down['rss_end_mib'] / up['rss_end_mib']:.2f}x, "
        f"RSS growth {down['rss_growth_mib']:+.1f} MiB vs {up['rss_growth_mib']:+.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s per variant")
    parser.add_argument("--sequential", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="chenu-soak-") as tmp:
        work_dir = Path(tmp)
        collector, grpc_port = start_collector(work_dir, work_dir)
        variants = [
            Variant("collector up", f"http://{LOOPBACK}:{grpc_port}"),
            Variant("unreachable", f"http://{LOOPBACK}:{free_port()}"),
        ]
        try:
            for variant in variants:
                variant.start(work_dir)
            print(
                f"soak: {args.minutes:g} min at {args.rate:g} req/s per variant, "
                f"{'one after the other' if args.sequential else 'both at once'}",
                flush=True,
            )
            if args.sequential:
                for variant in variants:
                    variant.drive(seconds, args.rate)
            else:
                drivers = [
                    threading.Thread(target=v.drive, args=(seconds, args.rate)) for v in variants
                ]
                for driver in drivers:
                    driver.start()
                for driver in drivers:
                    driver.join()
        finally:
            for variant in variants:
                variant.stop()
            collector.terminate()
            collector.wait(timeout=60)
        print_table(variants)


if __name__ == "__main__":
    main()
