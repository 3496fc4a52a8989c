"""Find the binaries the native stack runs: an explicit variable, the build cache, then PATH.

The repository's build scripts cache what they build outside the clone (``$CHENU_OTEL_CACHE``,
default ``~/.cache/chenu-otel``): ``scripts/build-collector`` writes
``collector/<key>/chenu-otelcol`` (the key is the first 16 hex digits of the SHA-256 of
``collector/manifest.yaml``), ``scripts/build-backends`` writes
``backends/<name>-<version>/<binary>``. `find_binary` looks, in order, at the binary's own
``CHENU_OTEL_*_BIN`` variable, that cache, and PATH, and otherwise raises `MissingBinaryError`
saying where it looked and how to get the binary.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from chenu_otel import environment_variables as env

__all__ = [
    "BINARIES",
    "CHENU_OTEL_VICTORIA_LOGS_BIN",
    "Binary",
    "MissingBinaryError",
    "cache_dir",
    "find_binary",
]

#: Explicit path of VictoriaLogs (the native logs backend), like the other ``*_BIN`` variables.
CHENU_OTEL_VICTORIA_LOGS_BIN: Final = "CHENU_OTEL_VICTORIA_LOGS_BIN"


@dataclass(frozen=True)
class Binary:
    """One binary the stack runs and where it comes from."""

    name: str
    #: The variable that names its path explicitly.
    variable: str
    #: Glob below the cache directory where the build scripts put it (None: not built here).
    cache_glob: str | None
    #: How to get it, for the error message.
    hint: str


BINARIES: Final = {
    "chenu-otelcol": Binary(
        "chenu-otelcol", env.CHENU_OTEL_COLLECTOR_BIN, "collector/*/chenu-otelcol",
        "build it with scripts/build-collector (Go >= 1.25 and the Go module proxy; "
        "about 10 minutes cold on 2 cores)",
    ),
    "prometheus": Binary(
        "prometheus", env.CHENU_OTEL_PROMETHEUS_BIN, "backends/prometheus-*/prometheus",
        "build it with scripts/build-backends prometheus (a few minutes cold)",
    ),
    "jaeger": Binary(
        "jaeger", env.CHENU_OTEL_JAEGER_BIN, "backends/jaeger-*/jaeger",
        "build it with scripts/build-backends jaeger (a few minutes cold)",
    ),
    "alertmanager": Binary(
        "alertmanager", env.CHENU_OTEL_ALERTMANAGER_BIN, "backends/alertmanager-*/alertmanager",
        "build it with scripts/build-backends alertmanager (about a minute cold)",
    ),
    "victoria-logs": Binary(
        "victoria-logs", CHENU_OTEL_VICTORIA_LOGS_BIN, "backends/victorialogs-*/victoria-logs",
        "build it with scripts/build-backends victorialogs (about a minute cold)",
    ),
    "redis-server": Binary(
        "redis-server", env.CHENU_OTEL_REDIS_SERVER_BIN, None,
        "install Debian's redis-server (scripts/install-debian-packages, or "
        "apt-get install redis-server)",
    ),
}  # fmt: skip


class MissingBinaryError(RuntimeError):
    """A binary the stack needs was found nowhere; the message says where it looked and how
    to get it."""


def cache_dir() -> Path:
    """Where the build scripts cache what they build (as ``scripts/common.sh`` decides)."""
    explicit = os.environ.get(env.CHENU_OTEL_CACHE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chenu-otel"


def _collector_key(repo: Path) -> str | None:
    manifest = repo / "collector" / "manifest.yaml"
    if not manifest.exists():
        return None
    return hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]


def find_binary(name: str, *, repo: Path | None = None) -> Path:
    """The path of binary `name` (a key of `BINARIES`). With `repo`, the collector must be the
    build of that checkout's ``collector/manifest.yaml``; otherwise the newest build is used."""
    binary = BINARIES[name]
    looked: list[str] = []
    explicit = os.environ.get(binary.variable)
    if explicit:
        if os.access(explicit, os.X_OK):
            return Path(explicit)
        looked.append(f"${binary.variable}={explicit} (not an executable file)")
    else:
        looked.append(f"${binary.variable} (not set)")
    if binary.cache_glob is not None:
        cache = cache_dir()
        key = _collector_key(repo) if repo is not None and name == "chenu-otelcol" else None
        pattern = binary.cache_glob.replace("*", key, 1) if key else binary.cache_glob
        found = sorted(
            (p for p in cache.glob(pattern) if os.access(p, os.X_OK)),
            key=lambda p: p.stat().st_mtime,
        )
        if found:
            return found[-1]
        looked.append(f"{cache / pattern}" + (" (this manifest's build)" if key else ""))
    on_path = shutil.which(binary.name)
    if on_path is not None:
        return Path(on_path)
    looked.append("PATH")
    raise MissingBinaryError(
        f"{binary.name} not found; looked at {', '.join(looked)}. To get it: {binary.hint}, "
        f"or set {binary.variable} to its path."
    )
