"""The application of the fault suite, run in its own process: real chenu_otel, real OTLP export.

``fault_app.py STOP_FILE RATE MAX_TICKS``

Sets up telemetry as a service does (`chenu_otel.configure` from the OTEL_* variables the test
passes) and runs "requests" at RATE per second until STOP_FILE exists or MAX_TICKS ran. Each
request is one span ``fault-tick`` (attribute ``fault.seq``), one structlog log record inside
it (key ``fault_seq``) and one increment of the counter ``chenu.fault.ticks``; sequence numbers
start at 1, so a backend can say exactly which ones arrived.

It prints ``sent N`` every 25 requests and, last, one JSON line::

    {"sent": N, "errors": E, "max_tick_ms": M, "flushed": F, "pipeline_health": {...}}

`errors` counts exceptions that reached the application from a telemetry call; `max_tick_ms`
is the slowest request (a request blocked on export would show the exporter's timeout here);
`pipeline_health` sums the SDK's own metrics (``otel.sdk.*``: items a batch processor dropped,
items an exporter failed to send, by signal), read from an in-memory reader next to the OTLP
one after the final flush.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import chenu_otel
from chenu_otel.logging import get_logger, setup_logging

PROGRESS_EVERY = 25
#: SDK self-observability metrics summed into the report, by what they say.
HEALTH_METRICS = {
    "otel.sdk.processor.span.processed": "spans",
    "otel.sdk.processor.log.processed": "logs",
    "otel.sdk.exporter.span.exported": "spans",
    "otel.sdk.exporter.log.exported": "logs",
    "otel.sdk.exporter.metric_data_point.exported": "metric_points",
}


def pipeline_health(reader: InMemoryMetricReader) -> dict[str, int]:
    """Items the SDK dropped (processor, error.type set) or failed to export (exporter, error.type
    set) and items it handed to exporters, summed per signal."""
    totals: dict[str, int] = defaultdict(int)
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                signal = HEALTH_METRICS.get(metric.name)
                if signal is None:
                    continue
                stage = "dropped" if ".processor." in metric.name else "export_failed"
                for point in metric.data.data_points:
                    failed = (point.attributes or {}).get("error.type")
                    if failed:
                        totals[f"{signal}_{stage}"] += int(point.value)  # type: ignore[union-attr]
                    elif stage == "export_failed":
                        totals[f"{signal}_exported"] += int(point.value)  # type: ignore[union-attr]
    return dict(totals)


def run(stop_file: Path, rate: float, max_ticks: int) -> dict[str, Any]:
    health_reader = InMemoryMetricReader()
    pipeline = chenu_otel.configure(service_name=None, metric_readers=[health_reader])
    setup_logging(level="INFO", format="json", stream=sys.stderr)
    tracer = trace.get_tracer("chenu.fault")
    ticks = metrics.get_meter("chenu.fault").create_counter(
        "chenu.fault.ticks", unit="{request}", description="Requests run by the fault-suite app"
    )
    log = get_logger("chenu.fault")
    errors = 0
    max_tick = 0.0
    pace = threading.Event()
    started = time.monotonic()
    sent = 0
    while sent < max_ticks and not stop_file.exists():
        seq = sent + 1
        tick_started = time.perf_counter()
        try:
            with tracer.start_as_current_span("fault-tick", attributes={"fault.seq": seq}):
                ticks.add(1)
                log.info("fault tick", fault_seq=seq)
        except Exception:  # counted, never re-raised: the test asserts there are none
            errors += 1
        max_tick = max(max_tick, time.perf_counter() - tick_started)
        sent = seq
        if sent % PROGRESS_EVERY == 0:
            print(f"sent {sent}", flush=True)
        # Pacing of the load against an absolute schedule, not synchronisation with anything.
        pace.wait(max(0.0, started + sent / rate - time.monotonic()))
    flushed = pipeline.force_flush(30_000)
    health = pipeline_health(health_reader)
    chenu_otel.shutdown(10_000)
    return {
        "sent": sent,
        "errors": errors,
        "max_tick_ms": round(max_tick * 1000, 2),
        "flushed": flushed,
        "pipeline_health": health,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    summary = run(Path(argv[0]), float(argv[1]), int(argv[2]))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
