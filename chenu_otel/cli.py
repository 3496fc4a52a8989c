"""The ``chenu-otel`` command.

``chenu-otel metrics`` lists the metric catalogue: OTel name, type, unit and the Prometheus name
the standard OTLP translation produces (what dashboards and alerts query)::

    chenu-otel metrics                      # aligned table
    chenu-otel metrics --format markdown    # the reference in chenu_otel/METRICS.md
    chenu-otel metrics --format json        # for scripts (one object per metric)
    chenu-otel metrics --write PATH         # write the markdown reference to PATH

``chenu-otel stack`` runs the native stack (`chenu_otel.stack.commands`)::

    chenu-otel stack run [--requests N] [--keep-running] [--work-dir DIR]
                         [--logs victorialogs|loki-standin] [--fleet]
    chenu-otel stack up | status | down [--work-dir DIR]

``chenu-otel doctor`` checks that telemetry gets through (`chenu_otel.doctor`)::

    chenu-otel doctor [--jaeger URL] [--prometheus URL] [--logs URL] [--timeout S] [--wait S]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chenu_otel.catalogue import CATALOGUE, metrics_markdown
from chenu_otel.doctor import add_doctor_parser, run_doctor_command
from chenu_otel.stack.commands import add_stack_parser, run_stack_command

__all__ = ["main"]


def _table() -> str:
    rows = [("OTEL NAME", "TYPE", "UNIT", "PROMETHEUS NAME", "LABELS")]
    for s in CATALOGUE:
        labels = ",".join(a.replace(".", "_") for a in s.attributes) or "-"
        rows.append((s.name, s.kind.prometheus_type, s.unit, s.prometheus_name, labels))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows)


def _json() -> str:
    return json.dumps(
        [
            {
                "name": s.name,
                "instrument": s.kind.value,
                "type": s.kind.prometheus_type,
                "unit": s.unit,
                "prometheus_name": s.prometheus_name,
                "prometheus_series": list(s.prometheus_series),
                "attributes": list(s.attributes),
                "labels": [a.replace(".", "_") for a in s.attributes],
                "buckets": list(s.buckets) if s.buckets else None,
                "group": s.group,
                "semconv": s.semconv,
                "emitted_by": s.emitted_by,
                "seed_name": s.seed_name,
                "description": s.description,
            }
            for s in CATALOGUE
        ],
        indent=2,
    )


def _add_metrics_parser(commands: Any) -> None:
    metrics = commands.add_parser("metrics", help="list the metric catalogue with Prometheus names")
    metrics.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    metrics.add_argument("--write", type=Path, help="write the markdown reference to this file")


def _run_metrics(args: argparse.Namespace) -> int:
    if args.write is not None:
        args.write.write_text(metrics_markdown(), encoding="utf-8")
        print(f"wrote {len(CATALOGUE)} metrics to {args.write}")
        return 0
    text = {"table": _table, "markdown": metrics_markdown, "json": _json}[args.format]()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chenu-otel`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="chenu-otel", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_metrics_parser(commands)
    add_stack_parser(commands)
    add_doctor_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "metrics":
        return _run_metrics(args)
    if args.command == "doctor":
        return run_doctor_command(args)
    return run_stack_command(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
