#!/usr/bin/env python3
"""Generate the Grafana dashboards in deploy/grafana/dashboards/ with grafana-foundation-sdk.

The dashboards are code so that every panel has the same shape, datasource uids are fixed
(`prometheus`, `loki`, `jaeger`, as provisioning/datasources/datasources.yaml names them) and
every query uses the Prometheus names the OTLP translation gives the metric catalogue
(chenu_otel/METRICS.md). Edit this file, never the JSON, then run (the SDK is a dev dependency):

    .venv/bin/python deploy/grafana/dashboards.py           # rewrite the JSON files
    .venv/bin/python deploy/grafana/dashboards.py --check   # exit 1 if the JSON files are stale

Metric → exemplar → trace → logs: the Prometheus datasource turns each exemplar into two links,
one opening the trace in Jaeger and one opening this dashboard's "Trace and its logs" row with
the `trace_id` variable set, where a Jaeger traces panel and a Loki logs panel show that trace
and its log lines. Nobody types an id.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import logs, loki, prometheus, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.dashboard import (
    Panel as DashboardPanel,
)

OUT_DIR = Path(__file__).resolve().parent / "dashboards"

PROM = DataSourceRef(type_val="prometheus", uid="prometheus")
LOKI = DataSourceRef(type_val="loki", uid="loki")
JAEGER = DataSourceRef(type_val="jaeger", uid="jaeger")

# Dashboard variable: the service (resource attribute service.name, promoted to a label).
SVC = 'service_name=~"$service"'
RATE = "$__rate_interval"
#: The dashboard variable the exemplar link of the Prometheus datasource sets.
TRACE_ID_VARIABLE = "trace_id"
#: The dashboard that holds the "Trace and its logs" row (the exemplar link opens it).
TRACE_DASHBOARD_UID = "chenu-service-red"


@dataclass
class Query:
    """One panel query: PromQL or LogQL (`expr`), or a Jaeger trace id lookup (`trace_id`)."""

    expr: str = ""
    legend: str = ""
    exemplar: bool = False
    trace_id: str = ""


@dataclass
class Panel:
    title: str
    queries: list[Query]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries (Prometheus) | logs (Loki) | traces (Jaeger)
    width: int = 12
    height: int = 8
    description: str = ""


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel | str]  # a str starts a new row with that title
    tags: list[str] = field(default_factory=list)
    trace_variable: bool = False  # adds the trace_id text box the exemplar link fills in


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


class JaegerTraceQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """Jaeger datasource query by trace id; the SDK has no Jaeger builder, so this is the
    datasource's own query model (`query` = trace id, no `queryType` = lookup by id)."""

    def __init__(self, ref_id: str, trace_id: str) -> None:
        self._data: dict[str, Any] = {"refId": ref_id, "datasource": JAEGER, "query": trace_id}

    def build(self) -> cogvariants.Dataquery:
        return UnknownDataquery(self._data)


def service_variable() -> dash.QueryVariable:
    query = "label_values(http_server_request_duration_seconds_count, service_name)"
    return (
        dash.QueryVariable("service")
        .label("Service")
        .datasource(PROM)
        .query({"query": query, "refId": "service"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".+")
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def trace_variable() -> dash.TextBoxVariable:
    return (
        dash.TextBoxVariable(TRACE_ID_VARIABLE)
        .label("Trace id")
        .description("Set by an exemplar's 'Trace and its logs' link: that trace and its logs.")
        .default_value("")
    )


def ref_id(index: int) -> str:
    return chr(ord("A") + index)


def timeseries_panel(panel: Panel) -> timeseries.Panel:
    built = (
        timeseries.Panel()
        .datasource(PROM)
        .unit(panel.unit)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    for index, query in enumerate(panel.queries):
        built = built.with_target(
            prometheus.Dataquery()
            .ref_id(ref_id(index))
            .datasource(PROM)
            .expr(query.expr)
            .legend_format(query.legend or "__auto")
            .exemplar(query.exemplar)
            .range()
        )
    return built


def logs_panel(panel: Panel) -> logs.Panel:
    built = (
        logs.Panel()
        .datasource(LOKI)
        .show_time(True)
        .wrap_log_message(True)
        .enable_log_details(True)
        .sort_order(common.LogsSortOrder.DESCENDING)
    )
    for index, query in enumerate(panel.queries):
        built = built.with_target(
            loki.Dataquery().ref_id(ref_id(index)).datasource(LOKI).expr(query.expr)
        )
    return built


def traces_panel(panel: Panel) -> dash.Panel:
    built = dash.Panel().type("traces").datasource(JAEGER)
    for index, query in enumerate(panel.queries):
        built = built.with_target(JaegerTraceQuery(ref_id(index), query.trace_id))
    return built


# The SDK's panel builders share these setters without a common base class.
PanelBuilder = TypeVar("PanelBuilder", timeseries.Panel, logs.Panel, dash.Panel)


def framed(built: PanelBuilder, panel: Panel, panel_id: int) -> PanelBuilder:
    return (
        built.id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .span(panel.width)
        .height(panel.height)
    )


def build_panel(panel: Panel, panel_id: int) -> cogbuilder.Builder[DashboardPanel]:
    if panel.kind == "timeseries":
        return framed(timeseries_panel(panel), panel, panel_id)
    if panel.kind == "logs":
        return framed(logs_panel(panel), panel, panel_id)
    if panel.kind == "traces":
        return framed(traces_panel(panel), panel, panel_id)
    raise ValueError(f"panel {panel.title!r}: unknown kind {panel.kind!r}")


def build(dashboard: Dashboard) -> dash.Dashboard:
    """The SDK dashboard: rows and panels in order, ids from 1, laid out left to right."""
    built = (
        dash.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .tags(["chenu-otel", *dashboard.tags])
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .version(1)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .with_variable(service_variable())
        .link(
            dash.DashboardLink("CHE·NU dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["chenu-otel"])
            .as_dropdown(True)
        )
    )
    if dashboard.trace_variable:
        built = built.with_variable(trace_variable())
    for panel_id, item in enumerate(dashboard.panels, start=1):
        if isinstance(item, str):
            built = built.with_row(dash.Row(item).id(panel_id))
        else:
            built = built.with_panel(build_panel(item, panel_id))
    return built


def service_red() -> Dashboard:
    http = "http_server_request_duration_seconds"
    errors_5xx = f'{SVC}, http_response_status_code=~"5.."'
    trace = f"${TRACE_ID_VARIABLE}"
    return Dashboard(
        uid=TRACE_DASHBOARD_UID,
        title="CHE·NU / Service RED",
        description="Rate, errors and duration of HTTP requests; exemplars link to Jaeger traces "
        "and to this dashboard's trace and logs panels.",
        tags=["http"],
        trace_variable=True,
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
                  description="Click an exemplar diamond: 'Trace and its logs' fills the row "
                  "below, the Jaeger link opens the trace in Explore."),
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
            "Trace and its logs (click an exemplar above)",
            Panel(f"Trace {trace}", [Query(trace_id=trace)], kind="traces", width=24, height=12,
                  description="The trace the exemplar points at; a span's log icon opens its "
                  "logs in Loki (tracesToLogsV2)."),
            # trace_id != "" first: while no exemplar was picked, show nothing rather than
            # every line without a trace id.
            Panel(f"Logs of trace {trace}", [q(
                f'{{{SVC}}} | trace_id!="" | trace_id="{trace}"')], kind="logs", width=24,
                  height=10, description="Log records whose trace_id (Loki structured metadata) "
                  "is the selected trace: the request's own log lines, with their span ids."),
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
    """Return {file name: JSON text} for every dashboard, exactly as committed."""
    files: dict[str, str] = {}
    for define in DASHBOARDS:
        dashboard = define()
        text = json.dumps(build(dashboard).build(), cls=JSONEncoder, indent=2, ensure_ascii=False)
        files[f"{dashboard.uid}.json"] = text + "\n"
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
                  "run .venv/bin/python deploy/grafana/dashboards.py", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text)
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
