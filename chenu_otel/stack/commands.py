"""``chenu-otel stack run|up|status|down``: the main job as a command.

``run`` starts the native stack, drives the demo with load, prints where the data landed and
stops everything (``--keep-running`` waits for Ctrl-C first) — what ``scripts/pipeline`` does.
Logs go to VictoriaLogs (``--logs loki-standin``: to a stand-in on Loki's OTLP route instead).
``run --fleet`` runs the collector fleet instead (`chenu_otel.stack.fleet`: two apps, two
agents, three tail-sampling gateways, Jaeger and Prometheus) and prints where the traces landed.
``up`` starts the stack and leaves it running in the background, writing its addresses and
process ids to ``<work-dir>/stack.json``; ``status`` reads that file and probes each part;
``down`` stops it (SIGTERM to each process group, data-flow order, SIGKILL after a deadline).
A missing binary is reported with where it was looked for and how to get it (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any, Final

from chenu_otel.stack.binaries import MissingBinaryError, cache_dir
from chenu_otel.stack.files import StackBinaries, StackFiles, find_repo
from chenu_otel.stack.fleet import FleetBinaries
from chenu_otel.stack.fleet_report import run_fleet
from chenu_otel.stack.processes import http_ok
from chenu_otel.stack.runner import (
    LOGS_BACKENDS,
    NativeStack,
    wait_for_collector_scrape,
    wait_for_data,
)

__all__ = ["add_stack_parser", "run_stack_command"]

STATE_FILE: Final = "stack.json"
# Data-flow order: the app first, so each stage flushes into the next before it stops.
_STOP_ORDER: Final = (
    "demo", "collector", "loki-standin", "victorialogs", "redis", "prometheus", "alertmanager",
)  # fmt: skip


def default_work_dir() -> Path:
    """Where ``up``/``status``/``down`` keep the stack: ``<build cache>/stack``."""
    return cache_dir() / "stack"


def add_stack_parser(commands: Any) -> None:
    """Add the ``stack`` sub-command to the ``chenu-otel`` parser."""
    stack = commands.add_parser("stack", help="run the native stack (demo → collector → backends)")
    actions = stack.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="start, send load, print where data landed, stop")
    run.add_argument("--requests", type=int, default=400, help="load generator requests")
    run.add_argument("--keep-running", action="store_true", help="stay up until Ctrl-C")
    run.add_argument("--work-dir", type=Path, help="keep logs and data here (default: temp)")
    run.add_argument("--logs", choices=LOGS_BACKENDS, default=LOGS_BACKENDS[0],
                     help="logs backend (default: %(default)s)")  # fmt: skip
    run.add_argument(
        "--fleet", action="store_true",
        help="run the agent → gateway fleet and its two-service app instead",
    )  # fmt: skip
    for name, text in (
        ("up", "start the stack in the background"),
        ("status", "show whether each part of a started stack answers"),
        ("down", "stop a stack started with up"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--work-dir", type=Path, default=None,
                            help=f"the stack's folder (default: {default_work_dir()})")  # fmt: skip


def run_stack_command(args: argparse.Namespace) -> int:
    """Run ``chenu-otel stack <action>``; returns the exit status."""
    try:
        if args.action == "run" and args.fleet:
            return _run_fleet(args.requests, args.keep_running, args.work_dir)
        if args.action == "run":
            return _run(args.requests, args.keep_running, args.work_dir, args.logs)
        work_dir: Path = args.work_dir or default_work_dir()
        if args.action == "up":
            return _up(work_dir)
        if args.action == "status":
            return _status(work_dir)
        return _down(work_dir)
    except (MissingBinaryError, FileNotFoundError) as exc:
        print(f"[stack] {exc}", flush=True)
        return 2


def _stack(work_dir: Path, logs: str = LOGS_BACKENDS[0]) -> NativeStack:
    repo = find_repo()
    binaries = StackBinaries.find(repo, victoria_logs=logs == "victorialogs")
    return NativeStack(work_dir, binaries, StackFiles(repo), logs=logs)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    # Also SIGINT explicitly: a shell starting us in the background leaves it ignored.
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _pause_if(keep_running: bool) -> None:
    if keep_running:
        print("[stack] running; Ctrl-C stops everything", flush=True)
        signal.pause()


def _run_fleet(requests: int, keep_running: bool, work_dir: Path | None) -> int:
    _stop_on_signals()
    repo = find_repo()
    binaries = FleetBinaries.find(repo)
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="chenu-otel-fleet-"))
    print(f"[stack] starting the fleet; logs in {work_dir / 'logs'}", flush=True)
    failed = 0
    try:
        failed = run_fleet(
            work_dir, binaries, StackFiles(repo), requests=requests,
            wait=lambda _fleet: _pause_if(keep_running),
        )  # fmt: skip
    except KeyboardInterrupt:
        print("\n[stack] stopping", flush=True)
    print("[stack] stopped", flush=True)
    return 1 if failed else 0


def _run(requests: int, keep_running: bool, work_dir: Path | None, logs: str) -> int:
    _stop_on_signals()
    stack = _stack(work_dir or Path(tempfile.mkdtemp(prefix="chenu-otel-stack-")), logs)
    print(f"[stack] starting; logs in {stack.logs_dir}", flush=True)
    failed = False
    try:
        stack.start()
        try:
            print(f"[stack] demo app {stack.demo_url}; sending {requests} requests", flush=True)
            try:
                print(stack.run_load(requests), flush=True)
            except RuntimeError as exc:  # what was sent before the failure still shows below
                failed = True
                last = "\n".join(str(exc).strip().splitlines()[-3:])
                print(f"[stack] LOAD GENERATOR FAILED (data sent so far follows):\n{last}")
            wait_for_data(stack)
            wait_for_collector_scrape(stack)
            print(stack.summary(), flush=True)
            _pause_if(keep_running)
        finally:
            stack.stop()
    except KeyboardInterrupt:
        print("\n[stack] stopping", flush=True)
    print("[stack] stopped", flush=True)
    return 1 if failed else 0


def _read_state(work_dir: Path) -> dict[str, Any] | None:
    path = work_dir / STATE_FILE
    return dict(json.loads(path.read_text())) if path.exists() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _up(work_dir: Path) -> int:
    state = _read_state(work_dir)
    if state is not None and any(_alive(pid) for pid in state["processes"].values()):
        print(f"[stack] already up (see `chenu-otel stack status --work-dir {work_dir}`)")
        return 1
    stack = _stack(work_dir)
    print(f"[stack] starting in {work_dir}; logs in {stack.logs_dir}", flush=True)
    stack.start()
    described = stack.describe()
    (work_dir / STATE_FILE).write_text(json.dumps(described, indent=2) + "\n")
    for name, url in described["health"].items():
        print(f"[stack] {name:12} {url}")
    print("[stack] up; `chenu-otel stack down` stops it", flush=True)
    return 0


def _status(work_dir: Path) -> int:
    state = _read_state(work_dir)
    if state is None:
        print(f"[stack] not started in {work_dir} (no {STATE_FILE})")
        return 1
    healthy = True
    for name, pid in state["processes"].items():
        alive = _alive(pid)
        healthy &= alive
        print(f"[stack] {name:12} pid {pid:>7}  {'running' if alive else 'NOT RUNNING'}")
    for name, url in state["health"].items():
        try:
            answers = http_ok(url)
        except OSError:
            answers = False
        healthy &= answers
        print(f"[stack] {name:12} {url}  {'answers' if answers else 'DOES NOT ANSWER'}")
    return 0 if healthy else 1


def _down(work_dir: Path, timeout: float = 30.0) -> int:
    state = _read_state(work_dir)
    if state is None:
        print(f"[stack] not started in {work_dir} (no {STATE_FILE})")
        return 1
    processes: dict[str, int] = state["processes"]
    ordered = sorted(processes, key=lambda n: _STOP_ORDER.index(n) if n in _STOP_ORDER else 99)
    for name in ordered:
        pid = processes[name]
        if _alive(pid):
            os.killpg(pid, signal.SIGTERM)  # each part runs in its own session
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)  # polling the process table with a deadline
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        print(f"[stack] {name} stopped")
    (work_dir / STATE_FILE).unlink()
    return 0
