"""Processes on loopback: free ports, managed server processes, polling with a deadline.

Every server the stack starts binds 127.0.0.1 only and writes its output to a log file that is
shown when it fails. Nothing waits with a sleep: `poll_until` retries a probe until a deadline.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar

__all__ = [
    "LOOPBACK",
    "ManagedProcess",
    "free_port",
    "http_ok",
    "poll_until",
    "port_open",
    "require_binary",
]

T = TypeVar("T")

LOOPBACK: Final = "127.0.0.1"


#: Where `free_port` looks: below Linux's default ephemeral range (32768-60999), which the
#: kernel draws from for every outgoing connection, so no client socket can take a port between
#: the check and the server's bind.
PORT_RANGE: Final = range(20000, 32768)
_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, never handed out before by this
    process, taken from `PORT_RANGE` (outside the kernel's ephemeral ports)."""
    with _port_lock:
        start = random.randrange(len(PORT_RANGE))
        for step in range(len(PORT_RANGE)):
            port = PORT_RANGE[(start + step) % len(PORT_RANGE)]
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((LOOPBACK, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free TCP port on {LOOPBACK} in {PORT_RANGE}")


def poll_until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns something truthy (returned) or `timeout` passes (raises
    TimeoutError naming `what` and the probe's last error)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except Exception as exc:  # the probe may fail until the server is up
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what}; last error: {last_error}"
    )


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 2xx."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return 200 <= int(response.status) < 300


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """True when something accepts TCP connections on `host`:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_binary(path: str | Path, hint: str) -> Path:
    """The binary at `path` (or found on PATH by name); RuntimeError with `hint` otherwise."""
    resolved = Path(path) if os.sep in str(path) else shutil.which(str(path))
    if resolved is None or not Path(resolved).exists():
        raise RuntimeError(f"{path} not found: {hint}")
    return Path(resolved)


class ManagedProcess:
    """A server process in its own session; output goes to ``<log_dir>/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_dir / f"{name}.log"
        self._env = {**os.environ, **(env or {})}
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id once started."""
        return self.proc.pid if self.proc is not None else None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,
        )
        log_file.close()
        return self

    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, probe: Callable[[], object], timeout: float = 60.0) -> ManagedProcess:
        """Poll `probe` until it succeeds; fail with the process's output if it exits or times
        out."""

        def check() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-4000:]}"
                )
            return bool(probe())

        try:
            poll_until(check, timeout=timeout, what=f"{self.name} to be ready")
        except TimeoutError as exc:
            output = self.output()[-4000:]
            raise RuntimeError(f"{exc}\n--- {self.name} output ---\n{output}") from exc
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=5)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
