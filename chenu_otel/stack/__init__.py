"""The native stack: the whole pipeline on loopback with real binaries, no containers.

The demo app (`chenu_otel.demo`) → OTLP → our collector (chenu-otelcol) → Prometheus, Jaeger,
VictoriaLogs (or a Loki stand-in) and Alertmanager, with the config files of ``collector/`` and
``deploy/``; or the collector fleet (apps → agents → gateways → Jaeger and Prometheus).
``chenu-otel stack run|up|status|down`` (`chenu_otel.stack.commands`) is the command;
``scripts/pipeline`` calls it. The parts:

* `chenu_otel.stack.runner` — `NativeStack`: start, stop, ask the backends what landed;
* `chenu_otel.stack.fleet`, `chenu_otel.stack.fleet_report`, `chenu_otel.stack.fleet_app` —
  the agent → gateway fleet, what it holds, and its two-service app;
* `chenu_otel.stack.files`, `chenu_otel.stack.binaries` — the checkout's config files; where
  each binary comes from, and what to do when it is missing;
* `chenu_otel.stack.servers` — Jaeger, Prometheus and VictoriaLogs as processes on loopback;
* `chenu_otel.stack.collector` — a collector (or a stand-in for a backend) on loopback;
* `chenu_otel.stack.backends` — the Prometheus, Jaeger and VictoriaLogs query APIs;
* `chenu_otel.stack.otlp_json` — reading back what a collector's file exporter wrote;
* `chenu_otel.stack.processes`, `chenu_otel.stack.redis_server` — processes on loopback.
"""

from chenu_otel.stack.binaries import MissingBinaryError, find_binary
from chenu_otel.stack.files import StackBinaries, StackFiles, find_repo
from chenu_otel.stack.runner import NativeStack

__all__ = [
    "MissingBinaryError",
    "NativeStack",
    "StackBinaries",
    "StackFiles",
    "find_binary",
    "find_repo",
]
