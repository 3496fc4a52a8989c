"""Data the collector accepted survives a backend outage plus a collector restart (disk queue).

Sequence, with the app sending all along:
1. backend up, collector up: data flows;
2. backend down: the collector keeps accepting and queues on disk (file_storage);
3. collector stopped (the app keeps sending and must not notice), then restarted on the same
   storage directory while the backend is still down: its memory is gone, only the disk remains;
4. backend up again: what the first collector process accepted but never delivered arrives.

The collector also writes everything it accepted to files (debug-file overlay), so "accepted but
not delivered before the restart" is an exact set of spans, not a guess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    SENDER,
    CollectorProcess,
    DownstreamCollector,
    read_otlp,
    sender_env,
)
from tests.support import REPO_ROOT, poll_until, port_open

pytestmark = pytest.mark.slow


def last_tick(output: Path) -> int:
    ticks = [line for line in output.read_text().splitlines() if line.startswith("tick ")]
    return int(ticks[-1].split()[1]) if ticks else 0


def test_queued_data_is_delivered_after_collector_restart(
    collector_binary: Path, tmp_path: Path
) -> None:
    """Spans accepted while the backend was down are delivered by the restarted collector."""
    logs = tmp_path / "logs"
    backend = DownstreamCollector(collector_binary, logs, tmp_path / "backend", name="backend")
    collector = CollectorProcess(
        collector_binary,
        [BASE_CONFIG, OVERLAY_DIR / "debug-file.yaml"],
        log_dir=logs,
        storage_dir=tmp_path / "storage",
        env=backend.backend_env(),
    )
    accepted_dirs = [tmp_path / "accepted-1", tmp_path / "accepted-2"]
    for directory in accepted_dirs:
        directory.mkdir()

    def accepted(run: int) -> set[tuple[str, str]]:
        return read_otlp(accepted_dirs[run - 1] / "traces.json").span_ids("tick")

    stop_file = tmp_path / "stop-sending"
    sender_out = tmp_path / "sender.out"
    try:
        backend.start()
        collector.env["OTELCOL_DEBUG_DIR"] = str(accepted_dirs[0])
        collector.start()
    except BaseException:
        collector.stop()
        backend.stop()
        raise
    with sender_out.open("w") as out:
        sender = subprocess.Popen(
            [sys.executable, str(SENDER), "stream", str(stop_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=sender_env(collector.grpc_endpoint, "grpc"),
            cwd=REPO_ROOT,
        )
    try:
        # 1. flowing end to end
        poll_until(
            lambda: len(backend.received().span_ids("tick")) >= 3,
            timeout=30,
            what="ticks at the backend",
        )
        # 2. backend down; the collector keeps accepting
        backend.stop()
        delivered_before = backend.received().span_ids("tick")
        poll_until(
            lambda: len(accepted(1) - delivered_before) >= 10,
            timeout=30,
            what="ticks accepted by the collector while the backend is down",
        )
        # 3. collector down while the app keeps sending, then up again on the same disk queue
        collector.stop()
        assert not port_open(collector.grpc_port), "the collector still listens after stopping"
        queued = accepted(1) - delivered_before
        print(f"delivered before the outage: {len(delivered_before)}, queued: {len(queued)}")
        tick_at_stop = last_tick(sender_out)
        poll_until(
            lambda: last_tick(sender_out) >= tick_at_stop + 10,
            timeout=30,
            what="the app to keep sending while the collector is down",
        )
        collector.env["OTELCOL_DEBUG_DIR"] = str(accepted_dirs[1])
        collector.start()
        # 4. backend back: the restarted collector delivers what the first one queued on disk
        backend.start()
        poll_until(
            lambda: queued <= backend.received().span_ids("tick"),
            timeout=60,
            what=f"{len(queued)} queued spans to reach the backend after the restart",
        )
        # and new data flows again
        poll_until(
            lambda: len(accepted(2) & backend.received().span_ids("tick")) >= 3,
            timeout=30,
            what="fresh ticks after the restart",
        )
    finally:
        stop_file.touch()
        try:
            sender.wait(timeout=60)
        finally:
            if sender.poll() is None:
                sender.kill()
            collector.stop()
            backend.stop()
            print(f"--- collector ---\n{collector.output()[-3000:]}")

    assert sender.returncode == 0, sender_out.read_text()[-4000:]
    summary = json.loads(sender_out.read_text().strip().splitlines()[-1])
    assert summary["errors"] == 0, f"a telemetry call raised into the app: {summary}"
    assert summary["ticks"] > tick_at_stop + 10
    # Delivered after the restart, yet never received by the second process: they came off disk.
    assert not (queued & accepted(2)), "queued spans reached the collector a second time"
