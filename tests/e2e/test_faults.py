"""Nothing the collector acknowledged is lost: the fault suite, with figures.

Real chenu-otelcol (collector/otelcol.yaml, plus the vendor overlay where the backend is the
controllable OTLP/HTTP server), the real app (tests/e2e/fault_app.py: chenu_otel with OTLP/gRPC
export; a span, a structlog log record and a counter increment per request) and real receiving
backends on loopback. Each case prints one line::

    FAULT <case>: sent S spans / S logs; delivered D / D; duplicates U / U; lost L / L;
    app errors E; counter app S backend C

and the collector's memory against its memory_limiter bound. Duplicates are allowed
(at-least-once: a request being sent when the collector died is sent again after the restart).

The backend-outage case needs more than 60 s of outage; it runs in a background thread started
by the first case that asks for it, so its waiting overlaps the other cases.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.collector_fixtures import OVERLAY_DIR, CollectorProcess
from tests.e2e.fault_harness import (
    MEMORY_LIMIT_MIB,
    CollectorWatch,
    ControlledOtlpBackend,
    Delivery,
    FaultApp,
    Figures,
    FileBackend,
    collector_config,
    kill_seed,
    sigkill,
    wait_for_delivery,
)
from tests.support import poll_until

pytestmark = pytest.mark.slow

KILLS = 5
#: How long the collector stays dead after each SIGKILL (the app keeps sending meanwhile).
DOWN_SECONDS = 1.0
#: Up-time before each kill is drawn from this range. The app's exporter gives up a batch after
#: OTEL_EXPORTER_OTLP_TIMEOUT (10 s, ~4 attempts at 1, 2, 4 s back-off); with kills closer
#: than this every attempt can land on a dead collector, and the app drops (and counts) it.
UP_SECONDS = (3.0, 5.0)
OUTAGE_SECONDS = 62.0
#: The app's OTLP export timeout in the overload case: a blocked request would last this long.
OVERLOAD_EXPORT_TIMEOUT_MS = 3000


def fault_schedule(seconds: float) -> None:
    """Wait as part of the fault schedule (when to kill, how long to stay down), not to
    synchronise with anything: what the test then checks is polled with a deadline."""
    threading.Event().wait(seconds)


@pytest.fixture(scope="module")
def fault_binary(collector_binary: Path) -> Path:
    return Path(os.environ.get("CHENU_FAULT_COLLECTOR_BINARY", str(collector_binary)))


def make_collector(
    binary: Path, work_dir: Path, configs: list[Path], env: dict[str, str]
) -> CollectorProcess:
    return CollectorProcess(
        binary,
        configs,
        log_dir=work_dir / "logs",
        storage_dir=work_dir / "storage",
        env={"OTELCOL_MEMORY_LIMIT_MIB": str(MEMORY_LIMIT_MIB), **env},
    )


class Backend(Protocol):
    def stop(self) -> None: ...

    def delivery(self, service: str) -> Delivery: ...


@contextlib.contextmanager
def flowing(
    collector: CollectorProcess, backend: Backend, app: FaultApp
) -> Iterator[CollectorWatch]:
    """Collector up and watched, app sending, data seen at the backend; everything stopped after,
    whatever happened."""
    try:
        collector.start()
        with CollectorWatch(collector) as watch:
            app.start()
            poll_until(
                lambda: app.sent_so_far() and len(backend.delivery(app.service).spans) >= 10,
                timeout=60,
                what="data flowing to the backend before the fault",
            )
            yield watch
    finally:
        app.kill()
        collector.stop()
        backend.stop()


def report(figures: Figures, watch: CollectorWatch, extra: str = "") -> None:
    print(f"\n{figures.line()}{extra}\n  {watch.memory_line()}")


def assert_nothing_lost(figures: Figures, collector: CollectorProcess) -> None:
    assert figures.app_errors == 0, f"telemetry raised into the app: {figures.line()}"
    assert figures.complete, (
        f"{figures.line()}\n--- collector (tail) ---\n{collector.output()[-3000:]}"
    )


# --- backend outage of 60 s+ with a SIGKILL inside, in the background -----------------------


class OutageRun:
    """Backend down for OUTAGE_SECONDS; the collector is SIGKILLed halfway through and restarted
    on the same storage; the backend comes back; everything sent must arrive."""

    def __init__(self, binary: Path, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.backend = FileBackend(binary, work_dir, name="outage-backend")
        self.collector = make_collector(
            binary, work_dir, [collector_config()], self.backend.collector_env()
        )
        self.collector.name = "outage-collector"
        self.app = FaultApp(work_dir, "fault-outage", self.collector.grpc_endpoint)
        self.watch = CollectorWatch(self.collector)
        self.cancelled = threading.Event()
        self.figures: Figures | None = None
        self.error: BaseException | None = None
        self.timeline: list[str] = []
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> OutageRun:
        self._thread.start()
        return self

    def note(self, what: str) -> None:
        self.timeline.append(f"{time.monotonic() - self._started:6.1f}s {what}")

    def wait(self, seconds: float) -> None:
        if self.cancelled.wait(seconds):
            raise RuntimeError("outage case cancelled")

    def _run(self) -> None:
        try:
            self.backend.start()
            self.collector.start()
            with self.watch:
                self.app.start()
                poll_until(
                    lambda: (
                        self.app.sent_so_far()
                        and len(self.backend.delivery(self.app.service).spans) >= 25
                    ),
                    timeout=60,
                    what="data flowing to the backend before the outage",
                )
                self.backend.stop()
                self.note(f"backend down (app sent {self.app.sent_so_far()})")
                outage_started = time.monotonic()
                self.wait(OUTAGE_SECONDS / 2)
                sigkill(self.collector)
                self.note(f"collector SIGKILLed (app sent {self.app.sent_so_far()})")
                self.wait(DOWN_SECONDS)
                self.collector.start()
                self.note("collector restarted on the same storage")
                self.wait(max(0.0, outage_started + OUTAGE_SECONDS - time.monotonic()))
                self.backend.start()
                self.note(f"backend up after {time.monotonic() - outage_started:.0f}s")
                self.app.wait_sent(self.app.sent_so_far() + 50)
                summary = self.app.stop()
                self.note(f"app stopped: {summary}")
                self.figures = wait_for_delivery(
                    f"backend outage {OUTAGE_SECONDS:.0f}s + SIGKILL",
                    summary,
                    lambda: self.backend.delivery(self.app.service),
                    timeout=90,
                )
                self.note("delivery checked")
        except BaseException as exc:
            self.error = exc
        finally:
            self.app.kill()
            self.collector.stop()
            self.backend.stop()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the outage case did not finish in time"

    def cancel(self) -> None:
        """Stop the case wherever it is; its processes never outlive the test module."""
        self.cancelled.set()
        self._thread.join(30)
        if self._thread.is_alive():  # stuck in a poll: stop its processes from here
            for stop in (self.app.kill, self.collector.stop, self.backend.stop):
                with contextlib.suppress(OSError):  # already gone
                    stop()
            self._thread.join(30)


@pytest.fixture(scope="module")
def outage_in_background(
    fault_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OutageRun]:
    """Starts the long outage case in a thread; its own test (last in the file) checks it."""
    run = OutageRun(fault_binary, tmp_path_factory.mktemp("outage")).start()
    yield run
    run.cancel()


# --- repeated SIGKILL ------------------------------------------------------------------------


def test_repeated_sigkill_of_the_collector_loses_nothing(
    fault_binary: Path, tmp_path: Path, outage_in_background: OutageRun
) -> None:
    """Five SIGKILLs at seeded random moments while the app sends, each followed by a restart
    on the same storage: every span and log record arrives, and the counter's last value at the
    backend equals what the app counted."""
    backend = FileBackend(fault_binary, tmp_path).start()
    collector = make_collector(
        fault_binary, tmp_path, [collector_config()], backend.collector_env()
    )
    app = FaultApp(tmp_path, "fault-sigkill", collector.grpc_endpoint)
    rng = random.Random(kill_seed())
    schedule: list[str] = []
    with flowing(collector, backend, app) as watch:
        for kill in range(1, KILLS + 1):
            fault_schedule(rng.uniform(*UP_SECONDS))
            sigkill(collector)
            schedule.append(f"kill {kill} after request {app.sent_so_far()}")
            fault_schedule(DOWN_SECONDS)
            collector.start()
        app.wait_sent(app.sent_so_far() + 50)
        summary = app.stop()
        figures = wait_for_delivery(
            f"SIGKILL x{KILLS} (seed {kill_seed()})",
            summary,
            lambda: backend.delivery(app.service),
        )
        report(figures, watch, f"; {', '.join(schedule)}")
    assert_nothing_lost(figures, collector)
    watch.assert_under_limit()


# --- backends that refuse or hang ------------------------------------------------------------

REFUSALS = {
    "unavailable": ("503 with Retry-After", "503"),
    "throttle": ("429 with Retry-After", "429"),
    "hang": ("accepts, never answers", "hung"),
}


@pytest.mark.parametrize("mode", list(REFUSALS))
def test_refusing_or_hanging_backend_data_is_held_and_retried(
    fault_binary: Path, tmp_path: Path, mode: str, outage_in_background: OutageRun
) -> None:
    """While the backend answers 503/429 (Retry-After: 1) or never answers, the collector holds
    the data and retries (attempts seen at the backend); once it accepts, nothing is missing."""
    label, outcome = REFUSALS[mode]
    backend = ControlledOtlpBackend(retry_after_seconds=1).start()
    collector = make_collector(
        fault_binary,
        tmp_path,
        [collector_config(), OVERLAY_DIR / "vendor.yaml"],
        # A short attempt timeout lets the hung case show retries within seconds.
        {**backend.collector_env(), "OTELCOL_EXPORT_TIMEOUT": "2s"},
    )
    app = FaultApp(tmp_path, f"fault-{mode}", collector.grpc_endpoint)
    with flowing(collector, backend, app) as watch:
        backend.set_mode(mode)

        def retried() -> bool:
            seen = backend.attempts_by(outcome)
            return all(seen[path] >= 3 for path in ("/v1/traces", "/v1/logs", "/v1/metrics"))

        poll_until(retried, timeout=60, what=f"three {label} attempts per signal")
        attempts = dict(backend.attempts_by(outcome))
        backend.set_mode("accept")
        app.wait_sent(app.sent_so_far() + 25)
        summary = app.stop()
        figures = wait_for_delivery(
            f"backend {label}", summary, lambda: backend.delivery(app.service)
        )
        report(figures, watch, f"; attempts answered {outcome}: {attempts}")
    assert_nothing_lost(figures, collector)
    watch.assert_under_limit()


# --- overload ---------------------------------------------------------------------------------


def test_overload_is_refused_and_counted_never_silent(
    fault_binary: Path, tmp_path: Path, outage_in_background: OutageRun
) -> None:
    """The app sends while the backend accepts nothing until the collector's disk queue is full:
    the collector refuses with a retryable status (counted in otelcol_receiver_refused_*), the
    app never errors or blocks a request, and every span or log record that never arrived is
    counted by the app's own pipeline-health metrics (dropped or failed export)."""
    backend = ControlledOtlpBackend(retry_after_seconds=1).start()
    collector = make_collector(
        fault_binary,
        tmp_path,
        [collector_config(), OVERLAY_DIR / "vendor.yaml"],
        {**backend.collector_env(), "OTELCOL_QUEUE_SIZE_BYTES": "65536"},
    )
    app = FaultApp(
        tmp_path,
        "fault-overload",
        collector.grpc_endpoint,
        rate=200,
        extra_env={"OTEL_EXPORTER_OTLP_TIMEOUT": str(OVERLOAD_EXPORT_TIMEOUT_MS)},
    )
    with flowing(collector, backend, app) as watch:
        backend.set_mode("unavailable")

        def refusing() -> bool:
            watch.sample()
            return (
                watch.last["otelcol_receiver_refused_spans"] > 0
                and watch.last["otelcol_receiver_refused_log_records"] > 0
            )

        poll_until(refusing, timeout=60, what="the collector to refuse (queue full)")
        # Stay overloaded long enough for the app's exports to give up and its queue to fill.
        app.wait_sent(app.sent_so_far() + 2000)
        watch.sample()
        refused = dict(watch.last)
        backend.set_mode("accept")
        app.wait_sent(app.sent_so_far() + 100)
        summary = app.stop()
        health: dict[str, int] = summary["pipeline_health"]
        counted_spans = health.get("spans_dropped", 0) + health.get("spans_export_failed", 0)
        counted_logs = health.get("logs_dropped", 0) + health.get("logs_export_failed", 0)
        figures = wait_for_delivery(
            "overload (backend accepts nothing, queue 64 KiB)",
            summary,
            lambda: backend.delivery(app.service),
            allowed_lost=(counted_spans, counted_logs),
        )
        report(
            figures,
            watch,
            f"; app max request {summary['max_tick_ms']} ms; app pipeline health {health};"
            f" collector {refused}",
        )
    assert figures.app_errors == 0, figures.line()
    # A request blocked on export would last the exporter's timeout.
    assert summary["max_tick_ms"] < OVERLOAD_EXPORT_TIMEOUT_MS, summary
    assert refused["otelcol_receiver_refused_spans"] > 0, refused
    assert refused["otelcol_exporter_enqueue_failed_spans"] > 0, refused
    # Nothing silent: every missing item is one the app counted as dropped or failed.
    assert figures.lost_spans <= counted_spans, (figures.line(), health)
    assert figures.lost_logs <= counted_logs, (figures.line(), health)
    assert counted_spans > 0 and counted_logs > 0, health
    assert figures.delivery.last_counter_value() == figures.sent, figures.line()
    watch.assert_under_limit()


# --- the outage case's verdict ----------------------------------------------------------------


def test_backend_outage_with_sigkill_inside_loses_nothing(
    outage_in_background: OutageRun,
) -> None:
    """Backend down for over 60 s, collector SIGKILLed and restarted inside the outage, backend
    back: every span and log record sent arrives, and the counter's last value matches."""
    run = outage_in_background
    run.join(timeout=280)
    print("\n" + "\n".join(f"  {line}" for line in run.timeline))
    if run.error is not None:
        raise run.error
    assert run.figures is not None
    report(run.figures, run.watch)
    assert_nothing_lost(run.figures, run.collector)
    run.watch.assert_under_limit()
