"""The application side of the collector e2e tests, run in its own process for clean globals.

It sets up telemetry exactly as a service does (`chenu_otel.configure` from the OTEL_* variables
the test passes) and emits correlated traces, metrics and logs:

``burst MARKER SERVICE CANARY``
    one span, a histogram measurement and a log record inside it, each carrying a canary secret;
    flushes and prints ``{"trace_id": ..., "span_id": ..., "errors": 0}`` as its last line.
``stream STOP_FILE``
    one "tick" span + log record + counter increment every 100 ms until STOP_FILE exists,
    printing ``tick N`` per tick; then flushes and prints ``{"ticks": N, "errors": E}``.

`errors` counts exceptions that reached the application from a telemetry call: always 0 when
telemetry never raises into the request path, whatever the collector is doing.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

import chenu_otel
from chenu_otel.logging import get_logger, setup_logging

TICK_SECONDS = 0.1


def guarded(errors: list[BaseException], call: Callable[[], object]) -> None:
    try:
        call()
    except Exception as exc:  # counted, never re-raised: the test asserts there are none
        errors.append(exc)


def burst(marker: str, service: str, canary: str) -> dict[str, object]:
    chenu_otel.configure(service_name=service)
    setup_logging(level="INFO", format="json", stream=sys.stderr)
    tracer = trace.get_tracer("chenu.e2e")
    duration = metrics.get_meter("chenu.e2e").create_histogram(
        "chenu.e2e.work.duration", unit="s", description="Work done by the e2e sender"
    )
    log = get_logger("chenu.e2e")
    errors: list[BaseException] = []
    with tracer.start_as_current_span(f"e2e-work {marker}", kind=SpanKind.SERVER) as span:
        span.set_attribute("e2e.marker", marker)
        span.set_attribute("user.password", canary)
        span.set_attribute("note", f"Bearer {canary}")
        # Metric attributes are not scrubbed in the app (the catalogue's allow-lists do that):
        # this canary reaches the collector and must die there.
        guarded(
            errors,
            lambda: duration.record(0.042, {"e2e.marker": marker, "session_token": canary}),
        )
        guarded(
            errors,
            lambda: log.info("e2e work done", e2e_marker=marker, api_key=canary),
        )
        context = span.get_span_context()
    flushed = chenu_otel.shutdown(10_000)
    return {
        "trace_id": format_trace_id(context.trace_id),
        "span_id": format_span_id(context.span_id),
        "errors": len(errors),
        "flushed": flushed,
    }


def stream(stop_file: Path) -> dict[str, object]:
    chenu_otel.configure(service_name="chenu-e2e-stream")
    setup_logging(level="INFO", format="json", stream=sys.stderr)
    tracer = trace.get_tracer("chenu.e2e")
    ticks_counter = metrics.get_meter("chenu.e2e").create_counter("chenu.e2e.ticks")
    log = get_logger("chenu.e2e")
    errors: list[BaseException] = []
    pace = threading.Event()
    ticks = 0

    def tick(seq: int) -> None:
        with tracer.start_as_current_span("tick", attributes={"e2e.seq": seq}):
            ticks_counter.add(1)
            log.info("tick", e2e_seq=seq)

    while not stop_file.exists():
        ticks += 1
        guarded(errors, functools.partial(tick, ticks))
        print(f"tick {ticks}", flush=True)
        pace.wait(TICK_SECONDS)  # pacing of the load, not synchronisation with anything
    chenu_otel.shutdown(10_000)
    return {"ticks": ticks, "errors": len(errors)}


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "burst":
        summary = burst(argv[1], argv[2], argv[3])
    elif len(argv) == 2 and argv[0] == "stream":
        summary = stream(Path(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
