#!/usr/bin/env python3
"""Generate the Grafana dashboards in deploy/grafana/dashboards/ (JSON, provisioned by file).

The dashboards are code so that every panel has the same shape, datasource uids are fixed
(`prometheus`, `loki`, `jaeger`) and every query uses the Prometheus names the OTLP translation
gives the metric catalogue (chenu_otel/METRICS.md). Edit this file, then run:

    python3 scripts/grafana_dashboards.py           # rewrite the JSON files
    python3 scripts/grafana_dashboards.py --check   # exit 1 if the JSON files are stale

Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"

PROM = {"type": "prometheus", "uid": "prometheus"}
LOKI = {"type": "loki", "uid": "loki"}

# Dashboard variable: the service (resource attribute service.name, promoted to a label).
SVC = 'service_name=~"$service"'
RATE = "$__rate_interval"


@dataclass
class Query:
    expr: str
    legend: str = ""
    exemplar: bool = False


@dataclass
class Panel:
    title: str
    queries: list[Query]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | stat | logs
    width: int = 12
    height: int = 8
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel | str]  # a str starts a new row with that title
    tags: list[str] = field(default_factory=list)


def q(expr: str, legend: str = "", exemplar: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, exemplar)


def p95(metric: str, by: str = "", selector: str = SVC, quantile: float = 0.95) -> str:
    """PromQL for a quantile of a classic histogram, summed over everything but `by`."""
    group = f"le, {by}" if by else "le"
    return (
        f"histogram_quantile({quantile}, sum by ({group}) "
        f"(rate({metric}_bucket{{{selector}}}[{RATE}])))"
    )


def rate_by(metric: str, by: str, selector: str = SVC) -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}[{RATE}]))"


def service_variable() -> dict[str, Any]:
    return {
        "name": "service",
        "label": "Service",
        "type": "query",
        "datasource": PROM,
        "query": {
            "query": "label_values(http_server_request_duration_seconds_count, service_name)",
            "refId": "service",
        },
        "definition": "label_values(http_server_request_duration_seconds_count, service_name)",
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def render_panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    datasource = LOKI if panel.kind == "logs" else PROM
    targets: list[dict[str, Any]] = []
    for index, query in enumerate(panel.queries):
        target: dict[str, Any] = {
            "datasource": datasource,
            "refId": chr(ord("A") + index),
            "expr": query.expr,
        }
        if panel.kind != "logs":
            target["legendFormat"] = query.legend or "__auto"
            target["exemplar"] = query.exemplar
            target["range"] = True
        targets.append(target)
    rendered: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "targets": targets,
    }
    if panel.kind == "logs":
        rendered["options"] = {
            "showTime": True,
            "wrapLogMessage": True,
            "enableLogDetails": True,
            "sortOrder": "Descending",
        }
    else:
        rendered["fieldConfig"] = {"defaults": {"unit": panel.unit}, "overrides": []}
        rendered["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    rendered.update(panel.extra)
    return rendered


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = 0
    row_height = 0
    panel_id = 1
    for item in dashboard.panels:
        if isinstance(item, str):
            y += row_height
            x, row_height = 0, 0
            panels.append(
                {
                    "id": panel_id,
                    "type": "row",
                    "title": item,
                    "collapsed": False,
                    "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                    "panels": [],
                }
            )
            panel_id += 1
            y += 1
            continue
        if x + item.width > 24:
            y += row_height
            x, row_height = 0, 0
        panels.append(render_panel(item, panel_id, x, y))
        panel_id += 1
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["chenu-otel", *dashboard.tags],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [service_variable()]},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["chenu-otel"],
                "asDropdown": True,
                "title": "CHE·NU dashboards",
            }
        ],
        "panels": panels,
    }


def service_red() -> Dashboard:
    http = "http_server_request_duration_seconds"
    errors_5xx = f'{SVC}, http_response_status_code=~"5.."'
    return Dashboard(
        uid="chenu-service-red",
        title="CHE·NU / Service RED",
        description="Rate, errors and duration of HTTP requests; exemplars link to Jaeger traces.",
        tags=["http"],
        panels=[
            "Requests",
            Panel("Request rate by route", [q(rate_by(f"{http}_count", "http_route"))],
                  unit="reqps"),
            Panel("5xx ratio", [q(f"sum(rate({http}_count{{{errors_5xx}}}[{RATE}])) / "
                                  f"sum(rate({http}_count{{{SVC}}}[{RATE}]))", "5xx ratio")],
                  unit="percentunit",
                  description="Alert ChenuHTTPServerErrorRateHigh fires above 5% for 5 minutes."),
            Panel("Latency p50 / p95 / p99 (exemplars → Jaeger)", [
                q(p95(http, quantile=0.5), "p50", exemplar=True),
                q(p95(http), "p95", exemplar=True),
                q(p95(http, quantile=0.99), "p99", exemplar=True),
            ], unit="s", width=24, height=9,
                  description="Click an exemplar diamond to open its trace in Jaeger."),
            Panel("p95 latency by route", [q(p95(http, "http_route"), "{{http_route}}",
                                             exemplar=True)], unit="s"),
            Panel("Requests by status code", [q(rate_by(f"{http}_count",
                                                        "http_response_status_code"))],
                  unit="reqps"),
            "Errors and load",
            Panel("Errors by type and layer", [q(rate_by("chenu_errors_total",
                                                         "error_type, chenu_error_source"))],
                  unit="ops"),
            Panel("Active requests", [q(f"sum(http_server_active_requests{{{SVC}}})",
                                        "active")]),
            "Logs",
            Panel("Service logs (trace_id opens the trace)",
                  [q('{service_name=~"$service"}')], kind="logs", width=24, height=10),
        ],
    )


def agents_llm() -> Dashboard:
    return Dashboard(
        uid="chenu-agents-llm",
        title="CHE·NU / Agents & LLM",
        description="Agent runs, LLM calls, tokens, cost and thread token budgets.",
        tags=["agents", "genai"],
        panels=[
            "Agent runs",
            Panel("Agent runs by outcome", [q(rate_by("chenu_agent_executions_total",
                                                      "gen_ai_agent_name, chenu_outcome"))],
                  unit="ops"),
            Panel("Agent failure ratio", [q(
                'sum by (gen_ai_agent_name) (rate(chenu_agent_executions_total'
                f'{{{SVC}, chenu_outcome!="success"}}[{RATE}])) / sum by (gen_ai_agent_name) '
                f"(rate(chenu_agent_executions_total{{{SVC}}}[{RATE}]))",
                "{{gen_ai_agent_name}}")], unit="percentunit",
                  description="Alert ChenuAgentFailureRateHigh fires above 10% for 10 minutes."),
            Panel("Agent run p95 duration", [q(p95("chenu_agent_execution_duration_seconds",
                                                   "gen_ai_agent_name"),
                                               "{{gen_ai_agent_name}}", exemplar=True)],
                  unit="s"),
            Panel("Tool calls by tool and outcome", [q(rate_by(
                "chenu_agent_tool_calls_total", "gen_ai_tool_name, chenu_outcome"))], unit="ops"),
            "Cost",
            Panel("Agent cost over the last hour", [q(
                f"sum by (gen_ai_agent_name) (increase(chenu_agent_cost_usd_total{{{SVC}}}[1h]))",
                "{{gen_ai_agent_name}}")], unit="currencyUSD",
                  description="Alert ChenuAgentCostHigh fires above $10 per hour."),
            Panel("LLM cost rate by model ($/h)", [q(
                f"sum by (gen_ai_request_model) (rate(chenu_llm_cost_usd_total{{{SVC}}}[{RATE}]))"
                " * 3600", "{{gen_ai_request_model}}")], unit="currencyUSD"),
            "LLM calls and tokens",
            Panel("Tokens per second by type", [q(rate_by("gen_ai_client_token_usage_sum",
                                                          "gen_ai_token_type"))], unit="short"),
            Panel("LLM call p95 duration by model", [q(
                p95("gen_ai_client_operation_duration_seconds", "gen_ai_request_model"),
                "{{gen_ai_request_model}}", exemplar=True)], unit="s"),
            Panel("Agent tokens by agent and type", [q(rate_by(
                "chenu_agent_tokens_total", "gen_ai_agent_name, gen_ai_token_type"))],
                  unit="short"),
            "Thread token budgets",
            Panel("Budget utilisation p95 after a charge", [q(
                p95("chenu_thread_token_budget_utilization", "gen_ai_agent_name"),
                "{{gen_ai_agent_name}}")], unit="percentunit"),
            Panel("Budget exhaustions", [q(rate_by("chenu_thread_token_budget_exhausted_total",
                                                   "gen_ai_agent_name"))], unit="ops"),
            Panel("Tokens charged to budgets", [q(rate_by(
                "chenu_thread_token_budget_used_total", "gen_ai_agent_name"))], unit="short"),
            Panel("Budget remaining p50", [q(
                p95("chenu_thread_token_budget_remaining", "gen_ai_agent_name", quantile=0.5),
                "{{gen_ai_agent_name}}")], unit="short"),
        ],
    )


def threads_websocket() -> Dashboard:
    return Dashboard(
        uid="chenu-threads-websocket",
        title="CHE·NU / Threads & WebSocket",
        description="Conversation threads, messages and WebSocket connections.",
        tags=["threads", "websocket"],
        panels=[
            "Threads",
            Panel("Active threads", [q(f"sum(chenu_thread_active{{{SVC}}})", "active")]),
            Panel("Threads created / closed", [
                q(f"sum(rate(chenu_thread_created_total{{{SVC}}}[{RATE}]))", "created"),
                q(rate_by("chenu_thread_closed_total", "chenu_thread_close_reason"),
                  "closed: {{chenu_thread_close_reason}}"),
            ], unit="ops"),
            Panel("Messages by role", [q(rate_by("chenu_thread_messages_total",
                                                 "chenu_message_role"))], unit="ops"),
            Panel("Tokens per message p95", [q(p95("chenu_thread_message_tokens",
                                                   "chenu_message_role"),
                                               "{{chenu_message_role}}")]),
            Panel("Thread events by type", [q(rate_by("chenu_thread_events_total",
                                                      "chenu_thread_event"))], unit="ops",
                  width=24),
            "WebSocket",
            Panel("Open connections", [q(
                f"sum by (http_route) (chenu_websocket_connections_active{{{SVC}}})")]),
            Panel("Connections accepted", [q(rate_by("chenu_websocket_connections_total",
                                                     "http_route"))], unit="ops"),
            Panel("Messages in / out", [
                q(f"sum(rate(chenu_websocket_messages_received_total{{{SVC}}}[{RATE}]))", "in"),
                q(f"sum(rate(chenu_websocket_messages_sent_total{{{SVC}}}[{RATE}]))", "out"),
            ], unit="ops"),
            Panel("Connection lifetime p95", [q(p95("chenu_websocket_connection_duration_seconds",
                                                    "http_route"))], unit="s"),
        ],
    )


def database_cache() -> Dashboard:
    db = "db_client_operation_duration_seconds"
    cache = "chenu_cache_operations_total"
    return Dashboard(
        uid="chenu-database-cache",
        title="CHE·NU / Database & Cache",
        description="SQL operations and connection pool; Redis cache operations and hit ratio.",
        tags=["database", "cache"],
        panels=[
            "Database",
            Panel("DB operation p95 by operation (exemplars → Jaeger)", [q(
                p95(db, "db_operation_name"), "{{db_operation_name}}", exemplar=True)], unit="s",
                  description="Alert ChenuDBQueryLatencyP95High fires above 500 ms for 5 minutes."),
            Panel("DB operations by operation and table", [q(rate_by(
                f"{db}_count", "db_operation_name, db_collection_name"))], unit="ops"),
            Panel("DB errors by type", [q(
                f'sum by (error_type) (rate({db}_count{{{SVC}, error_type!=""}}[{RATE}]))')],
                  unit="ops"),
            Panel("Pool connections by state", [q(
                f"sum by (db_client_connection_state) (db_client_connections_usage{{{SVC}}})")]),
            Panel("Connection use time p95", [q(p95("db_client_connection_use_time_seconds",
                                                    "db_client_connection_pool_name"))],
                  unit="s"),
            Panel("Rows returned p95", [q(p95("db_client_response_returned_rows",
                                              "db_operation_name"))]),
            "Cache",
            Panel("Cache hit ratio", [q(
                f'sum(rate({cache}{{{SVC}, chenu_cache_result="hit"}}[{RATE}])) / '
                f'sum(rate({cache}{{{SVC}, chenu_cache_result=~"hit|miss"}}[{RATE}]))',
                "hit ratio")], unit="percentunit",
                  description="Alert ChenuCacheHitRateLow fires below 50% for 10 minutes."),
            Panel("Cache operations by operation and result", [q(rate_by(
                cache, "chenu_cache_operation, chenu_cache_result"))], unit="ops"),
            Panel("Cache operation p95", [q(p95("chenu_cache_operation_duration_seconds",
                                                "chenu_cache_operation"))], unit="s"),
        ],
    )


def collector_health() -> Dashboard:
    # The collector's own metrics come from the otel-collector scrape job, not from the app.
    col = 'job="otel-collector"'

    def per_signal(kind: str, by: str) -> list[Query]:
        # One query per signal: rate() drops __name__, so a regex over the three names would
        # give duplicate label sets for a component that handles several signals.
        return [
            q(f"sum by ({by}) (rate(otelcol_{kind}_{signal}{{{col}}}[{RATE}]))",
              f"{{{{{by}}}}} {signal}")
            for signal in ("spans", "metric_points", "log_records")
        ]

    return Dashboard(
        uid="chenu-collector-health",
        title="CHE·NU / Collector pipeline health",
        description="Is telemetry flowing, queued or lost inside the OpenTelemetry Collector?",
        tags=["collector"],
        panels=[
            "Flow",
            Panel("Accepted by receiver", per_signal("receiver_accepted", "receiver"),
                  unit="short"),
            Panel("Sent by exporter", per_signal("exporter_sent", "exporter"), unit="short"),
            "Loss and backpressure",
            Panel("Send failures by exporter", per_signal("exporter_send_failed", "exporter"),
                  unit="short"),
            Panel("Enqueue failures by exporter (queue full: dropped)",
                  per_signal("exporter_enqueue_failed", "exporter"), unit="short"),
            Panel("Queue fill by exporter", [q(
                f"max by (exporter) (otelcol_exporter_queue_size{{{col}}}) / "
                f"max by (exporter) (otelcol_exporter_queue_capacity{{{col}}})")],
                  unit="percentunit",
                  description="Alert OtelCollectorExporterQueueNearlyFull fires above 80%."),
            Panel("Refused by receiver", per_signal("receiver_refused", "receiver"),
                  unit="short"),
            "Process",
            Panel("Collector memory (RSS)", [q(f"otelcol_process_memory_rss{{{col}}}",
                                               "{{instance}}")], unit="bytes"),
            Panel("Collector CPU", [q(f"rate(otelcol_process_cpu_seconds{{{col}}}"
                                      f"[{RATE}])", "{{instance}}")], unit="percentunit"),
            Panel("Scrape health", [q('up{job=~"otel-collector|prometheus"}', "{{job}}")]),
            Panel("Prometheus OTLP series in head", [q("prometheus_tsdb_head_series",
                                                       "head series")]),
        ],
    )


DASHBOARDS = (service_red, agents_llm, threads_websocket, database_cache, collector_health)


def generate() -> dict[str, str]:
    """Return {file name: JSON text} for every dashboard."""
    files: dict[str, str] = {}
    for build in DASHBOARDS:
        dashboard = build()
        files[f"{dashboard.uid}.json"] = json.dumps(render(dashboard), indent=2,
                                                    ensure_ascii=False) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the JSON files are stale")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        stale = [name for name, text in files.items()
                 if not (args.out / name).exists() or (args.out / name).read_text() != text]
        extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in files)
        if stale or extra:
            print(f"stale dashboards: {stale}; unexpected: {extra}; "
                  "run python3 scripts/grafana_dashboards.py", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
