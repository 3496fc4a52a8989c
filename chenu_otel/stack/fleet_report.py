"""What the fleet (`chenu_otel.stack.fleet`) holds, and ``chenu-otel stack run --fleet``.

`observe` reads one moment: traces in Jaeger, what the apps say they emitted and served, the
span-derived and app request counts in Prometheus, spans each gateway accepted. `settle` polls
until that stops changing; `summary` says where the traces landed; `run_fleet` is the command.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chenu_otel.stack.collector import CollectorProcess
from chenu_otel.stack.files import StackFiles
from chenu_otel.stack.fleet import (
    BACKEND,
    FRONTEND,
    Fleet,
    FleetBinaries,
    JaegerTrace,
    RequestRecord,
    mode_mix,
)

__all__ = [
    "Observation",
    "accepted_spans",
    "observe",
    "own_metric",
    "run_fleet",
    "running_fleet",
    "settle",
    "summary",
    "traces_waiting_for_a_verdict",
]


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
    """Read everything once."""
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
    Never raises on timeout: the caller says what is missing."""
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
def running_fleet(
    work_dir: Path, binaries: FleetBinaries, files: StackFiles, **options: Any
) -> Iterator[Fleet]:
    """A started fleet, stopped on exit."""
    fleet = Fleet(work_dir, binaries, files, **options)
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


MODES_SHOWN = ("error", "slow", "ok")


def summary(fleet: Fleet, records: Sequence[RequestRecord], seen: Observation) -> str:
    """Where the fleet's traces landed: spans per gateway, the share Jaeger kept, the
    span-derived request counts, and URLs of traces that cross both services."""
    kept = [r for r in records if r.trace_id in seen.traces]
    share = len(kept) / len(records) if records else 0.0
    per_gateway = ", ".join(
        f"{endpoint}={spans}"
        for endpoint, spans in zip(fleet.gateway_endpoints, seen.accepted, strict=True)
    )
    lines = [
        f"Gateways (static ring, by trace id): spans accepted {per_gateway} "
        f"(total {sum(seen.accepted)}; the apps emitted {sum(seen.emitted.values())})",
        f"Agents: {', '.join(a.grpc_endpoint for a in fleet.agents)} "
        f"(frontend -> agent 0, backend -> agent {len(fleet.agents) - 1})",
        f"Requests served {seen.served}",
        "  span_metrics server calls in Prometheus (every request, before sampling) "
        f"{ {k: round(v) for k, v in seen.span_metric_calls.items()} }",
        f"  app request counts (agents -> Prometheus) "
        f"{ {k: round(v) for k, v in seen.app_metric_requests.items()} }",
        f"Jaeger {fleet.jaeger_url}: kept {len(kept)} of {len(records)} traces = {share:.1%} "
        f"(every error and slow trace, {fleet.sampling.percentage:g} % of the rest)",
        "Traces across both services (fleet-frontend → fleet-backend):",
    ]
    for mode in MODES_SHOWN:
        example = next(
            (r for r in kept
             if r.mode == mode and seen.traces[r.trace_id].services == {FRONTEND, BACKEND}),
            None,
        )  # fmt: skip
        if example is not None:
            spans = seen.traces[example.trace_id].span_count
            lines.append(
                f"  {mode:5} {fleet.jaeger_url}/api/traces/{example.trace_id} ({spans} spans)"
            )
    lines.append(
        f"Prometheus {fleet.prometheus_url}: "
        "sum by (service_name, status_code) (traces_span_metrics_calls_total)"
    )
    return "\n".join(lines)


def run_fleet(
    work_dir: Path, binaries: FleetBinaries, files: StackFiles, *, requests: int,
    rate_per_s: float = 25.0, wait: Callable[[Fleet], object] | None = None,
) -> int:  # fmt: skip
    """Start the fleet, send `requests` frontend requests (10 % errors, 10 % slow), let the
    gateways decide and print the summary; `wait(fleet)` runs before it stops. Returns how
    many requests failed at the apps."""
    with running_fleet(work_dir, binaries, files) as fleet:
        modes = mode_mix(requests, error_share=0.1, slow_share=0.1, seed=1)
        print(f"[stack] fleet up; sending {len(modes)} requests at {rate_per_s:g}/s", flush=True)
        records = fleet.drive(modes, rate_per_s=rate_per_s)
        failed = [r for r in records if r.error or not r.trace_id]
        text = summary(fleet, records, settle(fleet))
        if failed:
            text += f"\n{len(failed)} requests failed at the apps, e.g. {failed[0]}"
        print(text, flush=True)
        if wait is not None:
            wait(fleet)
        return len(failed)
