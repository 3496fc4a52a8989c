"""The native stack: the whole pipeline on loopback with real binaries, no containers.

The demo app (`chenu_otel.demo`) → OTLP → our collector (chenu-otelcol) → Prometheus, Jaeger,
a Loki stand-in and Alertmanager, with the config files of ``collector/`` and ``deploy/``.
``chenu-otel stack run|up|status|down`` (`chenu_otel.stack.commands`) is the command;
``scripts/pipeline`` calls it. The parts:

* `chenu_otel.stack.runner` — `NativeStack`: start, stop, ask the backends what landed;
* `chenu_otel.stack.binaries` — where each binary comes from, and what to do when it is missing;
* `chenu_otel.stack.collector` — a collector (or a stand-in for a backend) on loopback;
* `chenu_otel.stack.backends` — the Prometheus and Jaeger query APIs;
* `chenu_otel.stack.otlp_json` — reading back what a collector's file exporter wrote;
* `chenu_otel.stack.processes`, `chenu_otel.stack.redis_server` — processes on loopback.
"""

from chenu_otel.stack.binaries import MissingBinaryError, find_binary
from chenu_otel.stack.runner import NativeStack, StackBinaries, StackFiles, find_repo

__all__ = [
    "MissingBinaryError",
    "NativeStack",
    "StackBinaries",
    "StackFiles",
    "find_binary",
    "find_repo",
]
