"""Collector throughput: how many spans, log records and metric points per second chenu-otelcol
takes with 0 refused, shipped configs against a bare pipeline on the same binary, same run.

    .venv/bin/python bench/collector_throughput.py [--repeat 3] [--items 64] [--profile-dir DIR]

Set-up (loopback only, 2 cores):
  core 1  the collector under test, pinned with `taskset -c 1` (for the fleet: all four of its
          collectors together)
  core 0  the load generator (bench/loadgen, Go, pre-serialised OTLP/gRPC requests of --items
          items, 500 by default, one-span traces with fresh trace ids in every request so a
          gateway holds each for decision_wait, --streams requests in flight) and its sink
          mode standing in for every backend (OTLP gRPC and HTTP answered with success without
          decoding, so the backend side costs little and the collector under test is what
          runs out of CPU)

Configs:
  bare     bench/collector/bare.yaml: OTLP in, no processor, the base config's exporter per
           signal with batching in an in-memory sending queue (the batch processor is no longer
           in the distribution); the floor every ratio is taken against
  base     collector/otelcol.yaml as shipped (disk queues in a fresh directory under the cache
           directory, on disk rather than tmpfs, fsync as configured), backends at the sink
  gateway  collector/otelcol.yaml + collector/fleet/gateway.yaml (skipped if that file is absent)
  fleet    traces only: one agent (collector/otelcol.yaml + collector/fleet/agent.yaml) that the
           load generator sends to, routing by trace id through its load_balancing exporter
           (static resolver) to three gateways (as `gateway`, each its own process, ports and
           storage directory). The four processes share core 1, the same CPU budget as every
           other config, so its CPU per 10k spans against the gateway's is what the extra hop
           costs; it shows no scale-out: on 2 cores a fleet cannot, across machines each gateway
           brings its own core. Its spans/s can still beat one gateway's: a gateway is bound by
           the traces it holds for decision_wait (memory, num_traces), and three hold three times
           as many.
           Its logs and metrics would be the agent alone (they go straight to the backends
           through the base config's disk queues, the gateways carry traces only), i.e. the
           base config plus one resource processor, so they are not run.
           Skipped if collector/fleet/agent.yaml or gateway.yaml is absent.
  and, on request (--configs), diagnostics that split the shipped configs' cost:
  bare-disk        bare + bench/collector/bare-disk.yaml: the base config's disk queue alone
  bare-gzip        bare + bench/collector/bare-gzip.yaml: traces compressed with the exporter's
                   default gzip, as an out-of-the-box collector would (the sink accepts gzip,
                   zstd and snappy)
  base-nofsync     the base config with OTELCOL_STORAGE_FSYNC=false
  base-memqueue    the base config + bench/collector/memory-queue.yaml: queues in memory
  base-gogc400     the base config with GOGC=400 and GOMEMLIMIT=300MiB: less GC CPU for more
                   heap (RSS about 2x, memory_limiter headroom about 100 MiB less)
  gateway-nofsync  the gateway config with OTELCOL_STORAGE_FSYNC=false
  gateway-unbatched  the gateway + bench/collector/gateway-unbatched.yaml: without batch/kept,
                   each kept trace is its own disk-queue write
  gateway-k8s-memory  the gateway with the memory deploy/kubernetes gives it
                   (OTELCOL_MEMORY_LIMIT_MIB=1600, GOMEMLIMIT=1600MiB)

Method, per signal and config, each run with a fresh collector (or fleet):
  1. probe: the load generator sends as fast as answers come back (closed loop, --streams
     requests in flight) for --probe-seconds: the most the receiver takes in.
  2. paced: a fixed offered load, first 90 % of the probe's rate, for --seconds (with
     4 x --streams, so a latency spike does not hold back the offered load). It counts when
     nothing was refused (to the load generator, nor by a gateway to the agent) and no trace
     was evicted from tail_sampling before its verdict (num_traces full: lost), the offered
     load was met (at least 97 % of it accepted, at most 2 % of requests waited for a free
     stream) and no exporter's queue grew by more than 5 % of what came into that process (a
     growing queue means data is taken in faster than it is sent on: refusals once it is full;
     growth is the rise of the queue's floor, its smallest size over the first and over the
     last 3 one-second samples, so a batch waiting for its flush is not counted as backlog).
     The agent's load_balancing queues report no size, so for them the growth is what the
     agent handed to them minus what the gateways' receivers accepted. Otherwise the next offer
     is 70 % of this one after refusals, else 95 % of what was sent on, within 50-85 % of this
     offer; at most --attempts times. If the probe itself was refused anything, it overshot a
     limit that builds up over time; with tail sampling (gateway and fleet traces) the probe
     is shorter than decision_wait and cannot see its limits at all (held traces against the
     memory_limiter and num_traces; in a fleet the agent's in-memory queues also hide the
     gateways' limit): the search then starts at half the probe's accepted rate (at least 1,000/s),
     doubles the offer while it is sustained, then tries once halfway (geometrically) between
     the last sustained offer and the first that was not; it may take twice --attempts runs.
     The table shows the highest sustained paced run (or the last one, marked NOT sustained).
  With tail sampling (gateway and fleet traces) the paced warm-up lasts decision_wait + 2 s, so
  held traces, memory and the sampled export are in their steady state when the window opens.

Figures of the paced window: accepted items/s and the ratio to bare, refused items, the
collector's CPU time per 10k items and what that makes per CPU-second (the rate one busy core
would reach if CPU were the only limit, which a disk queue's waits make optimistic), its RSS
at the end and at peak (VmHWM), the largest heap seen (otelcol_process_runtime_heap_alloc_bytes,
sampled every second) and the memory_limiter headroom: its soft limit (limit_mib -
spike_limit_mib, where it starts refusing) minus that heap. For the fleet, CPU time and RSS
(and the peaks, each process's own) are the sum over its four processes; heap and headroom
are the process with the least headroom (each has its own memory_limiter, so the first to
refuse is what limits the fleet); --profile-dir profiles the agent. --repeat N runs everything
N times and adds the median and the spread. A benchmark, not a test: it never asserts.
Absolute figures drift with the machine and whatever else runs on it; the ratios are what it
is for.

Run time: each probe and paced run starts fresh collectors, warms up and measures; with the
defaults a paced run of gateway or fleet traces lasts ~25 s (decision_wait 10 s + 2 s warm-up,
8 s window, starting and stopping the collectors). The fleet row adds about 1.5-2 minutes per
--repeat: a probe and usually 3-4 paced runs (its search climbs from below).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from chenu_otel.stack.processes import LOOPBACK, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench" / "collector"
BASE_CONFIG = REPO_ROOT / "collector" / "otelcol.yaml"
GATEWAY_OVERLAY = REPO_ROOT / "collector" / "fleet" / "gateway.yaml"
AGENT_OVERLAY = REPO_ROOT / "collector" / "fleet" / "agent.yaml"
FLEET_GATEWAYS = 3
COLLECTOR_CORE, DRIVER_CORE = "1", "0"
SIGNALS = ("traces", "logs", "metrics")
#: Prometheus names of the receiver's accepted/refused counters and the exporter's sent counter.
ITEM_METRIC = {"traces": "spans", "logs": "log_records", "metrics": "metric_points"}
MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def built(script: Path) -> Path:
    """Path printed by one of the project's build scripts (they cache outside the clone)."""
    result = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{script} failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


# --- processes -------------------------------------------------------------------------------


def config_args(configs: Sequence[Path]) -> list[str]:
    return [arg for config in configs for arg in ("--config", str(config))]


class PinnedProcess:
    """A server (a collector, or the sink) pinned to one core, stopped with SIGTERM when done."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], core: str, log: Path) -> None:
        self.argv = ["taskset", "-c", core, *argv]
        self.env = {**os.environ, **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, health_url: str) -> PinnedProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.argv[3]} exited ({self.proc.returncode}):\n{self.output()}")
            try:
                with urllib.request.urlopen(health_url, timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"{self.argv[3]} not healthy at {health_url} within 60 s:\n{self.output()}")

    @property
    def pid(self) -> int:  # taskset execs the server, so this is the server's own pid
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def scrape(port: int) -> dict[str, float]:
    """The collector's own metrics as {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def total(samples: dict[str, float], name: str, *label_parts: str) -> float:
    return sum(
        value
        for key, value in samples.items()
        if (key == name or key.startswith(name + "{")) and all(p in key for p in label_parts)
    )


# --- configs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    grpc: int = field(default_factory=free_port)
    http: int = field(default_factory=free_port)
    health: int = field(default_factory=free_port)
    metrics: int = field(default_factory=free_port)
    pprof: int = field(default_factory=free_port)


@dataclass(frozen=True)
class Sink:
    grpc: int
    http: int


@dataclass(frozen=True)
class Variant:
    """A config under test: its files, how to point its listeners and backends, extra env.

    With `gateways`, a fleet: `configs` is the agent the load generator sends to, and its traces
    go to that many gateway processes (the gateway config, with the same extra env)."""

    name: str
    configs: tuple[Path, ...]
    extra_env: tuple[tuple[str, str], ...] = ()
    gateways: int = 0
    signals: tuple[str, ...] = SIGNALS

    @property
    def files(self) -> tuple[Path, ...]:
        """Every config file it needs, the gateways' included."""
        return self.configs + (GATEWAY_CONFIGS if self.gateways else ())

    def gateway(self) -> Variant:
        return Variant(f"{self.name}-gateway", GATEWAY_CONFIGS, self.extra_env)

    def environment(self, ports: Ports, sink: Sink, storage: Path) -> dict[str, str]:
        if self.configs[0].parent == BENCH_DIR:
            env = {
                "BENCH_LISTEN_PORT": str(ports.grpc),
                "BENCH_HEALTH_PORT": str(ports.health),
                "BENCH_METRICS_PORT": str(ports.metrics),
                "BENCH_PPROF_PORT": str(ports.pprof),
                "BENCH_STORAGE_DIR": str(storage),
                "BENCH_SINK_GRPC": f"{LOOPBACK}:{sink.grpc}",
                "BENCH_SINK_HTTP": f"http://{LOOPBACK}:{sink.http}",
            }
        else:
            env = {
                "OTELCOL_LISTEN_HOST": LOOPBACK,
                "OTELCOL_OTLP_GRPC_PORT": str(ports.grpc),
                "OTELCOL_OTLP_HTTP_PORT": str(ports.http),
                "OTELCOL_HEALTH_PORT": str(ports.health),
                "OTELCOL_METRICS_PORT": str(ports.metrics),
                "OTELCOL_PPROF_PORT": str(ports.pprof),
                "OTELCOL_STORAGE_DIR": str(storage),
                "JAEGER_OTLP_ENDPOINT": f"{LOOPBACK}:{sink.grpc}",
                "PROMETHEUS_OTLP_ENDPOINT": f"http://{LOOPBACK}:{sink.http}",
                "LOKI_OTLP_ENDPOINT": f"http://{LOOPBACK}:{sink.http}",
            }
        return env | dict(self.extra_env)


GATEWAY_CONFIGS = (BASE_CONFIG, GATEWAY_OVERLAY)
VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("bare", (BENCH_DIR / "bare.yaml",)),
        Variant("base", (BASE_CONFIG,)),
        Variant("gateway", GATEWAY_CONFIGS),
        Variant(
            "fleet", (BASE_CONFIG, AGENT_OVERLAY), gateways=FLEET_GATEWAYS, signals=("traces",)
        ),
        # Diagnostics, not run by default: where the base config's cost comes from.
        Variant("bare-disk", (BENCH_DIR / "bare.yaml", BENCH_DIR / "bare-disk.yaml")),
        Variant("bare-gzip", (BENCH_DIR / "bare.yaml", BENCH_DIR / "bare-gzip.yaml")),
        Variant("base-nofsync", (BASE_CONFIG,), (("OTELCOL_STORAGE_FSYNC", "false"),)),
        Variant("base-memqueue", (BASE_CONFIG, BENCH_DIR / "memory-queue.yaml")),
        # Memory for CPU: the Go GC at GOGC=400 (heap up to 5x the live data before a cycle),
        # GOMEMLIMIT under the memory_limiter's soft limit (320 MiB) so the runtime collects
        # harder before the limiter would refuse.
        Variant("base-gogc400", (BASE_CONFIG,), (("GOGC", "400"), ("GOMEMLIMIT", "300MiB"))),
        Variant("gateway-nofsync", GATEWAY_CONFIGS, (("OTELCOL_STORAGE_FSYNC", "false"),)),
        Variant("gateway-unbatched", (*GATEWAY_CONFIGS, BENCH_DIR / "gateway-unbatched.yaml")),
        # The gateway's memory as deploy/kubernetes sets it (its buffer of held traces grows
        # with decision_wait x spans/s, so the default 400 MiB caps a gateway first).
        Variant(
            "gateway-k8s-memory",
            GATEWAY_CONFIGS,
            (("OTELCOL_MEMORY_LIMIT_MIB", "1600"), ("GOMEMLIMIT", "1600MiB")),
        ),
    )
}


@dataclass(frozen=True)
class Settings:
    """What the resolved config says about limits, queues and tail sampling."""

    soft_limit_mib: float | None
    queue_sizer: dict[str, str]  # exporter name -> requests | items | bytes
    decision_wait_s: float | None


def resolved_settings(binary: Path, variant: Variant, env: dict[str, str]) -> Settings:
    result = subprocess.run(
        [str(binary), "print-config", "--format", "json", *config_args(variant.configs)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"print-config failed for {variant.name}:\n{result.stderr[-3000:]}")
    config: dict[str, Any] = json.loads(result.stdout)
    processors: dict[str, Any] = config.get("processors") or {}
    limiter = processors.get("memory_limiter")
    soft = None if limiter is None else limiter["limit_mib"] - limiter["spike_limit_mib"]
    # print-config shows a queue's sizer as {}, so it is read from the files themselves.
    merged: dict[str, Any] = {}
    for path in variant.configs:
        merged = deep_merge(merged, yaml.safe_load(path.read_text()) or {})
    sizers = {
        name: str(((exporter or {}).get("sending_queue") or {}).get("sizer") or "requests")
        for name, exporter in (merged.get("exporters") or {}).items()
    }
    sampling = processors.get("tail_sampling")
    wait = None if sampling is None else sampling["decision_wait"] / 1e9
    return Settings(soft, sizers, wait)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The collector's merge of several --config files: maps merge, everything else replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- one measured window ---------------------------------------------------------------------


@dataclass
class Window:
    """What one load-generator run measured, with the collectors' side of the same window."""

    offered_per_s: float
    accepted_per_s: float
    accepted: int
    refused: int
    missed_requests: int
    requests: int
    seconds: float
    p99_ms: float
    cpu_ms_per_10k: float  # summed over the processes of a fleet, as are the RSS figures
    rss_mib: float
    peak_rss_mib: float
    max_heap_mib: float  # of the process with the least headroom (largest if none has a limit)
    headroom_mib: float | None
    queue_growth: float  # largest rise of a queue's floor, as a share of the process's intake
    send_failed: float
    dropped_too_early: float
    # A fleet's inside: what the gateways refused the agent (it retries), its failed hand-offs
    # (calls, not items) and what each process's receiver accepted per second.
    refused_inside: int = 0
    handoff_failed: float = 0.0
    intake_per_s: dict[str, float] = field(default_factory=dict)

    def sustained(self) -> bool:
        # The offer was met: hardly a request waited for a free stream, and what was accepted
        # is the offer (requests can also pile up waiting for answers without being missed).
        met = self.missed_requests <= max(1, self.requests // 50)
        met = met and self.accepted_per_s >= 0.97 * self.offered_per_s
        # Traces tail_sampling evicted before their verdict (num_traces full) are lost silently.
        refused = self.refused + self.refused_inside
        lost = self.dropped_too_early > 0
        return refused == 0 and not lost and met and self.queue_growth <= 0.05


@dataclass(frozen=True)
class Member:
    """One collector process of the config under test; the first of a list takes the load."""

    name: str
    process: PinnedProcess
    ports: Ports
    settings: Settings
    storage: Path


def queue_units(samples: dict[str, float], signal_name: str) -> dict[str, float]:
    prefix = "otelcol_exporter_queue_size{"
    return {
        key: value
        for key, value in samples.items()
        if key.startswith(prefix) and f'data_type="{signal_name}"' in key
    }


def exporter_of(key: str) -> str:
    return key.split('exporter="', 1)[1].split('"', 1)[0]


#: Queue samples (about a second apart) at each end of a window whose smallest is the queue's
#: floor there.
FLOOR_SAMPLES = 3


def queue_growth(
    settings: Settings, series: Sequence[dict[str, float]], intake: dict[str, float]
) -> float:
    """The largest growth of one process's exporter queues over a window, as a share of what
    came in, in each queue sizer's unit. Growth is the rise of a queue's floor, its smallest
    size over the first and over the last FLOOR_SAMPLES samples: a backlog raises it, a batch
    waiting for its flush does not (a gateway's tail_sampling releases its kept traces once a
    second, so a single sample at the end could catch up to two seconds of them queued)."""
    head, tail = series[:FLOOR_SAMPLES], series[-FLOOR_SAMPLES:]

    def floor(part: Sequence[dict[str, float]], key: str) -> float:
        return min(sample.get(key, 0.0) for sample in part)

    keys = {key for sample in series for key in sample}
    return max(
        (
            (floor(tail, key) - floor(head, key))
            / max(1.0, intake[settings.queue_sizer.get(exporter_of(key), "requests")])
            for key in keys
        ),
        default=0.0,
    )


def measure(
    loadgen: Path,
    members: Sequence[Member],
    signal_name: str,
    *,
    streams: int,
    items: int,
    rate: float,
    warmup: float,
    seconds: float,
    profile_to: Path | None = None,
) -> Window:
    entry = members[0]
    argv = ["taskset", "-c", DRIVER_CORE, str(loadgen)]
    argv += ["-endpoint", f"{LOOPBACK}:{entry.ports.grpc}", "-signal", signal_name]
    argv += ["-streams", str(streams), "-items", str(items)]
    argv += ["-rate", str(rate), "-warmup", f"{warmup}s", "-duration", f"{seconds}s"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if '"measure_start"' not in first:
        proc.wait()
        sys.exit(f"load generator failed: {first}{proc.stderr.read() if proc.stderr else ''}")
    opened = time.monotonic()
    pids = [member.process.pid for member in members]
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    before = [scrape(member.ports.metrics) for member in members]
    profiler = None
    if profile_to is not None:
        profiler = threading.Thread(
            target=fetch_profile, args=(entry.ports.pprof, max(1, int(seconds) - 1), profile_to)
        )
        profiler.start()
    heaps = [0.0] * len(members)
    queued = [[queue_units(samples, signal_name)] for samples in before]  # per process
    while (left := opened + seconds - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        for index, member in enumerate(members):
            samples = scrape(member.ports.metrics)
            heap = total(samples, "otelcol_process_runtime_heap_alloc_bytes")
            heaps[index] = max(heaps[index], heap / MIB)
            queued[index].append(queue_units(samples, signal_name))
    cpu1 = sum(cpu_seconds(pid) for pid in pids)
    after = [scrape(member.ports.metrics) for member in members]
    for series, samples in zip(queued, after, strict=True):
        series.append(queue_units(samples, signal_name))
    memory = [memory_mib(pid) for pid in pids]
    summary = json.loads(proc.stdout.read().strip().splitlines()[-1])
    proc.wait()
    if profiler is not None:
        profiler.join()

    item = ITEM_METRIC[signal_name]

    def delta(index: int, name: str, *label_parts: str) -> float:
        return total(after[index], name, *label_parts) - total(before[index], name, *label_parts)

    accepted = int(summary["accepted_items"])
    bytes_per_item = summary["request_bytes"] / items
    # What came into each process: the load generator's figure for the first one, their
    # receivers' for the gateways behind it.
    came_in = [float(accepted)]
    came_in += [delta(i, f"otelcol_receiver_accepted_{item}") for i in range(1, len(members))]
    growth = 0.0
    for index, member in enumerate(members):
        intake = {  # in each queue sizer's unit; a gateway's requests are the agent's batches
            "requests": came_in[index] / items,
            "items": came_in[index],
            "bytes": came_in[index] * bytes_per_item,
        }
        growth = max(growth, queue_growth(member.settings, queued[index], intake))
    if len(members) > 1:
        # The load_balancing exporter's per-gateway queues report no size: their growth is what
        # the agent handed to them minus what reached the gateways' receivers.
        handed = delta(0, f"otelcol_exporter_sent_{item}", 'exporter="load_balancing"')
        growth = max(growth, (handed - sum(came_in[1:])) / max(1.0, handed))
    headrooms = [
        (member.settings.soft_limit_mib - heap, heap)
        for member, heap in zip(members, heaps, strict=True)
        if member.settings.soft_limit_mib is not None
    ]
    headroom: float | None = None
    max_heap = max(heaps)
    if headrooms:
        headroom, max_heap = min(headrooms)
    return Window(
        offered_per_s=rate,
        accepted_per_s=float(summary["accepted_items_per_s"]),
        accepted=accepted,
        refused=int(summary["refused_items"]),
        missed_requests=int(summary["missed_requests"]),
        requests=int(summary["requests"]),
        seconds=float(summary["seconds"]),
        p99_ms=float(summary["latency_p99_ms"]),
        cpu_ms_per_10k=(cpu1 - cpu0) * 1000 / max(1, accepted) * 10_000,
        rss_mib=sum(m.get("VmRSS", 0.0) for m in memory),
        peak_rss_mib=sum(m.get("VmHWM", 0.0) for m in memory),
        max_heap_mib=max_heap,
        headroom_mib=headroom,
        queue_growth=growth,
        send_failed=sum(
            delta(i, f"otelcol_exporter_send_failed_{item}") for i in range(len(members))
        ),
        dropped_too_early=sum(
            delta(i, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early")
            for i in range(len(members))
        ),
        refused_inside=int(
            sum(delta(i, f"otelcol_receiver_refused_{item}") for i in range(1, len(members)))
        ),
        handoff_failed=delta(0, "otelcol_loadbalancer_backend_outcome", 'success="false"'),
        intake_per_s={
            member.name: delta(index, f"otelcol_receiver_accepted_{item}") / seconds
            for index, member in enumerate(members)
        },
    )


def fetch_profile(port: int, seconds: int, path: Path) -> None:
    url = f"http://{LOOPBACK}:{port}/debug/pprof/profile?seconds={seconds}"
    with urllib.request.urlopen(url, timeout=seconds + 30) as response:
        path.write_bytes(response.read())


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Result:
    signal: str
    variant: str
    probe: Window
    paced: Window
    attempts: int


def start_member(
    binary: Path,
    variant: Variant,
    name: str,
    sink: Sink,
    work: Path,
    stem: str,
    extra_env: dict[str, str] | None = None,
) -> Member:
    """One collector of `variant` on core 1 with its own ports and storage directory (`stem`
    names it and the log in `work`), healthy."""
    ports = Ports()
    storage = work / f"storage-{stem}"
    storage.mkdir()
    env = variant.environment(ports, sink, storage) | (extra_env or {})
    settings = resolved_settings(binary, variant, env)
    argv = [str(binary), *config_args(variant.configs)]
    process = PinnedProcess(argv, env, COLLECTOR_CORE, work / f"{stem}.log")
    process.start(f"http://{LOOPBACK}:{ports.health}/")
    return Member(name, process, ports, settings, storage)


@contextmanager
def running(
    binary: Path, variant: Variant, sink: Sink, work: Path, tag: str
) -> Iterator[list[Member]]:
    """The config's collectors, the one the load generator sends to first: a single collector,
    or a fleet's agent followed by its gateways (started first, stopped last, so the agent's
    ring finds them up and its queues drain into them on shutdown)."""
    gateways: list[Member] = []
    members: list[Member] = []
    try:
        for index in range(variant.gateways):
            name = f"gateway-{index}"
            gateways.append(
                start_member(binary, variant.gateway(), name, sink, work, f"{tag}-{name}")
            )
        if gateways:
            endpoints = ",".join(f"{LOOPBACK}:{gateway.ports.grpc}" for gateway in gateways)
            extra = {"OTELCOL_GATEWAY_ENDPOINTS": endpoints}
            agent = start_member(binary, variant, "agent", sink, work, f"{tag}-agent", extra)
        else:
            agent = start_member(binary, variant, variant.name, sink, work, tag)
        members = [agent, *gateways]
        yield members
    finally:
        for member in members or gateways:
            member.process.stop()
            shutil.rmtree(member.storage, ignore_errors=True)


def run_one(
    binary: Path,
    loadgen: Path,
    variant: Variant,
    signal_name: str,
    sink: Sink,
    work: Path,
    args: argparse.Namespace,
    tag: str,
) -> Result:
    with running(binary, variant, sink, work, tag) as members:
        sampling = signal_name == "traces" and any(m.settings.decision_wait_s for m in members)
        probe = measure(
            loadgen,
            members,
            signal_name,
            rate=0,
            warmup=2,
            seconds=args.probe_seconds,
            streams=args.streams,
            items=args.items,
        )
    # A probe that was refused anything (memory_limiter, full queue) overshot a limit that
    # builds up over time, e.g. tail sampling's held traces: search upwards from well below.
    # Nor can a probe shorter than decision_wait see tail_sampling's limits (memory, num_traces),
    # and a fleet's agent's in-memory queues (32 MiB per gateway) take in far more than the
    # gateways sustain before anything is refused: with tail sampling, always climb.
    climbing = probe.refused > 0 or probe.refused_inside > 0 or sampling
    rate = (0.5 if climbing else 0.9) * probe.accepted_per_s
    rate = max(rate, 1000.0)  # a rate of 0 would mean unpaced
    profile = None
    if args.profile_dir is not None:
        profile = Path(args.profile_dir) / f"{variant.name}-{signal_name}.pb.gz"
    best: Window | None = None
    ceiling: float | None = None  # climbing: the lowest offer that was not sustained
    for attempt in range(1, args.attempts * (2 if climbing else 1) + 1):
        # A fresh collector each time: no backlog, held traces or memory pressure carried over.
        with running(binary, variant, sink, work, f"{tag}-paced{attempt}") as members:
            warmup = 2.0
            waits = [m.settings.decision_wait_s or 0.0 for m in members]
            if signal_name == "traces":
                warmup += max(waits)  # tail sampling's memory at steady state
            paced = measure(
                loadgen,
                members,
                signal_name,
                rate=rate,
                warmup=warmup,
                seconds=args.seconds,
                profile_to=profile if attempt == 1 else None,
                # Spare streams: a latency spike must not turn into a missed request.
                streams=4 * args.streams,
                items=args.items,
            )
        inside = ""
        if len(paced.intake_per_s) > 1:
            shares = list(paced.intake_per_s.values())[1:]
            inside = ", gateways took " + "/".join(
                f"{share / max(1.0, sum(shares)):.0%}" for share in shares
            )
            inside += f" ({paced.refused_inside} refused)"
        print(
            f"    paced {rate:10,.0f}/s offered: {paced.accepted_per_s:10,.0f}/s accepted, "
            f"{paced.refused} refused, {paced.missed_requests} missed, queue "
            f"{paced.queue_growth:+.0%} of intake{inside}",
            flush=True,
        )
        if paced.sustained():
            best = paced
            if not climbing or ceiling is not None:
                break
            rate *= 2
        elif best is not None:  # climbing, and this step was too far: once between the two
            if ceiling is not None:
                break
            ceiling = rate
            rate = math.sqrt(best.offered_per_s * ceiling)
        elif paced.refused or paced.refused_inside:
            rate *= 0.7
        else:  # below what was taken and what left the queue, 50-85 % of this offer
            drained = paced.accepted_per_s * (1 - min(1.0, max(0.0, paced.queue_growth)))
            rate = max(0.5 * rate, min(0.85 * rate, 0.95 * drained))
    chosen = best if best is not None else paced
    return Result(signal_name, variant.name, probe, chosen, attempt)


def items_per_cpu_second(window: Window) -> float:
    """What one fully busy core would take if CPU were the only limit (not I/O, not locks)."""
    return 10_000 / (window.cpu_ms_per_10k / 1000) if window.cpu_ms_per_10k else float("nan")


def table(results: Sequence[Result]) -> str:
    bare = {r.signal: r.paced for r in results if r.variant == "bare"}
    head = (
        f"{'signal':8} {'config':15} {'accepted/s':>11} {'x bare':>6} {'refused':>7} "
        f"{'CPU ms/10k':>10} {'per CPU-s':>10} {'x bare':>6} {'RSS MiB':>7} {'peak RSS':>8} "
        f"{'heap MiB':>8} {'headroom':>8} {'probe/s':>9} {'p99 ms':>7} {'tries':>5} note"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        w, floor = r.paced, bare.get(r.signal)
        ratio = w.accepted_per_s / floor.accepted_per_s if floor else float("nan")
        capacity = items_per_cpu_second(w)
        cpu_ratio = capacity / items_per_cpu_second(floor) if floor else float("nan")
        headroom = "-" if w.headroom_mib is None else f"{w.headroom_mib:.0f}"
        notes = []
        if not w.sustained():
            notes.append(f"NOT sustained (queue {w.queue_growth:+.0%}, missed {w.missed_requests})")
        if w.send_failed:
            notes.append(f"send failed {w.send_failed:.0f}")
        if w.dropped_too_early:
            notes.append(f"tail_sampling dropped too early {w.dropped_too_early:.0f} traces")
        if w.refused_inside:
            notes.append(f"gateways refused the agent {w.refused_inside}")
        if w.handoff_failed:
            notes.append(f"{w.handoff_failed:.0f} failed calls to gateways")
        idle = [name for name, rate in list(w.intake_per_s.items())[1:] if not rate]
        if idle:
            notes.append(f"nothing reached {', '.join(idle)}")
        lines.append(
            f"{r.signal:8} {r.variant:15} {w.accepted_per_s:11,.0f} {ratio:6.2f} {w.refused:7d} "
            f"{w.cpu_ms_per_10k:10.1f} {capacity:10,.0f} {cpu_ratio:6.2f} {w.rss_mib:7.0f} "
            f"{w.peak_rss_mib:8.0f} {w.max_heap_mib:8.0f} {headroom:>8} "
            f"{r.probe.accepted_per_s:9,.0f} {w.p99_ms:7.1f} {r.attempts:5d} {'; '.join(notes)}"
        )
    fleets = {r.variant for r in results if len(r.paced.intake_per_s) > 1}
    for name in sorted(fleets):
        lines.append(
            f"{name}: agent + {VARIANTS[name].gateways} gateways sharing core {COLLECTOR_CORE}; "
            "CPU, per CPU-s, RSS and peak RSS summed over the processes, heap and headroom "
            "of the process with the least headroom"
        )
    return "\n".join(lines)


def spread(runs: Sequence[Sequence[Result]]) -> str:
    """Median and min-max over the runs: accepted/s, its ratio to bare, CPU per 10k items."""
    lines = [
        f"{'signal':8} {'config':15} {'median/s':>10} {'min-max/s':>19} {'x bare':>6} "
        f"{'min-max':>11} {'CPU ms/10k':>10} {'min-max':>13}"
    ]
    for signal_name, variant in [(r.signal, r.variant) for r in runs[0]]:
        rates, ratios, cpu = [], [], []
        for run in runs:
            by = {(r.signal, r.variant): r.paced for r in run}
            window = by[(signal_name, variant)]
            rates.append(window.accepted_per_s)
            cpu.append(window.cpu_ms_per_10k)
            if (signal_name, "bare") in by:
                ratios.append(window.accepted_per_s / by[(signal_name, "bare")].accepted_per_s)
        ratio = (
            f"{statistics.median(ratios):6.2f} {min(ratios):5.2f}-{max(ratios):<5.2f}"
            if ratios
            else f"{'-':>6} {'-':>11}"
        )
        lines.append(
            f"{signal_name:8} {variant:15} {statistics.median(rates):10,.0f} "
            f"{min(rates):9,.0f}-{max(rates):<9,.0f} {ratio} {statistics.median(cpu):10.1f} "
            f"{min(cpu):6.1f}-{max(cpu):<6.1f}"
        )
    return "\n".join(lines)


def print_profile_tops(directory: Path) -> None:
    go = shutil.which("go")
    for profile in sorted(directory.glob("*.pb.gz")):
        print(f"\n--- CPU profile {profile.name} (go tool pprof -top) ---")
        if go is None:
            print("go not on PATH: open it with `go tool pprof -top`")
            continue
        top = subprocess.run(
            [go, "tool", "pprof", "-top", "-nodecount=15", str(profile)],
            capture_output=True,
            text=True,
            check=False,
        )
        print("\n".join(top.stdout.splitlines()[:22]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", default=",".join(SIGNALS))
    parser.add_argument(
        "--configs", default="bare,base,gateway,fleet", help=f"any of {', '.join(VARIANTS)}"
    )
    parser.add_argument(
        "--items", type=int, default=500, help="items per request (the Python SDK sends 64)"
    )
    parser.add_argument("--streams", type=int, default=8, help="requests in flight")
    parser.add_argument("--probe-seconds", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=8, help="paced window")
    parser.add_argument("--attempts", type=int, default=4, help="paced runs at most")
    parser.add_argument("--repeat", type=int, default=1, help="whole runs, for the spread")
    parser.add_argument("--profile-dir", help="keep a CPU profile of each first paced window")
    parser.add_argument("--json", help="write every window's figures here")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs 2 cores: the collector on one, the load generator and sink on the other")
    os.sched_setaffinity(0, {int(DRIVER_CORE)})  # this script's own polling stays off core 1

    binary = built(REPO_ROOT / "scripts" / "build-collector")
    loadgen = built(REPO_ROOT / "bench" / "loadgen" / "build")
    chosen = [VARIANTS[name] for name in args.configs.split(",")]
    for variant in list(chosen):
        missing = [path for path in variant.files if not path.exists()]
        if missing:
            print(f"{missing[0].relative_to(REPO_ROOT)} not found: {variant.name} left out")
            chosen.remove(variant)
    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    signals = args.signals.split(",")
    for variant in chosen:
        if skipped := [name for name in signals if name not in variant.signals]:
            print(f"{variant.name} runs {', '.join(variant.signals)} only: no {', '.join(skipped)}")

    runs: list[list[Result]] = []
    xdg_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache = Path(os.environ.get("CHENU_OTEL_CACHE", xdg_cache / "chenu-otel"))
    cache.mkdir(parents=True, exist_ok=True)
    # Under the cache directory, a real disk (not tmpfs), so the disk queues' fsync is real.
    with tempfile.TemporaryDirectory(prefix="collector-throughput-", dir=cache) as tmp:
        work = Path(tmp)
        sink = Sink(free_port(), free_port())
        sink_argv = [str(loadgen), "sink", "-grpc-port", str(sink.grpc)]
        sink_argv += ["-http-port", str(sink.http)]
        sink_proc = PinnedProcess(sink_argv, {}, DRIVER_CORE, work / "sink.log")
        sink_proc.start(f"http://{LOOPBACK}:{sink.http}/healthz")
        try:
            for run in range(1, args.repeat + 1):
                results = []
                for signal_name in signals:
                    for variant in [v for v in chosen if signal_name in v.signals]:
                        tag = f"r{run}-{signal_name}-{variant.name}"
                        result = run_one(
                            binary, loadgen, variant, signal_name, sink, work, args, tag
                        )
                        print(
                            f"  run {run} {signal_name:7} {variant.name:15} "
                            f"{result.paced.accepted_per_s:10,.0f}/s "
                            f"(probe {result.probe.accepted_per_s:,.0f}/s, its queue grew by "
                            f"{result.probe.queue_growth:.0%} of its intake)",
                            flush=True,
                        )
                        results.append(result)
                runs.append(results)
                print(
                    f"\nrun {run} of {args.repeat}, collector pinned to core {COLLECTOR_CORE}, "
                    f"{args.streams} streams, {args.items} items per request"
                )
                print(table(results), flush=True)
        finally:
            sink_proc.stop()
    if len(runs) > 1:
        print(f"\nspread over {len(runs)} runs (paced accepted/s, 0 refused)")
        print(spread(runs))
    if args.profile_dir:
        print_profile_tops(Path(args.profile_dir))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [[asdict(r) for r in run] for run in runs],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
