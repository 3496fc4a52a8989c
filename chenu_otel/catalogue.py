"""The metric catalogue: every instrument chenu-otel records, declared once.

Each :class:`MetricSpec` carries the OTel name, kind, unit, description, bucket advice and the
attribute keys a measurement may keep. Everything else derives from it:

* the recorders (`chenu_otel.recorders`) create their instruments from these specs;
* :func:`views` turns the allow-lists into SDK ``View`` objects, the one place where metric
  cardinality is enforced (``chenu_otel.configure()`` passes them to the ``MeterProvider``).
  Identifiers (user, thread, agent run, request) are never in an allow-list;
* :func:`prometheus_name` gives the name the standard OTLP → Prometheus translation produces
  (``http.server.request.duration`` in ``s`` → ``http_server_request_duration_seconds``); the
  CLI (``chenu-otel metrics``) and ``chenu_otel/METRICS.md`` (:func:`metrics_markdown`) print it,
  and dashboards and alerts use it.

This module imports nothing from the rest of the package, so anything may import it.

>>> prometheus_name("http.server.request.duration", "s", InstrumentKind.HISTOGRAM)
'http_server_request_duration_seconds'
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from opentelemetry.sdk.metrics.view import View

__all__ = [
    "CATALOGUE",
    "GROUPS",
    "IDENTIFIER_KEYS",
    "InstrumentKind",
    "MetricSpec",
    "metrics_markdown",
    "prometheus_name",
    "spec",
    "views",
]

#: The instrumentation scope of every catalogue instrument.
METER_NAME: Final = "chenu_otel"


class InstrumentKind(enum.Enum):
    """OTel synchronous instrument kinds used by the catalogue."""

    COUNTER = "counter"
    UP_DOWN_COUNTER = "updowncounter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"

    @property
    def prometheus_type(self) -> str:
        """The Prometheus metric type this kind becomes after OTLP translation."""
        return _PROMETHEUS_TYPES[self]


_PROMETHEUS_TYPES: Final = {
    InstrumentKind.COUNTER: "counter",
    InstrumentKind.UP_DOWN_COUNTER: "gauge",
    InstrumentKind.HISTOGRAM: "histogram",
    InstrumentKind.GAUGE: "gauge",
}


COUNTER: Final = InstrumentKind.COUNTER
UP_DOWN_COUNTER: Final = InstrumentKind.UP_DOWN_COUNTER
HISTOGRAM: Final = InstrumentKind.HISTOGRAM

# --- Bucket advice --------------------------------------------------------------------------
# From the semantic conventions where they define one; ours are spelled out with a reason.
HTTP_DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
DB_DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
ROW_BUCKETS: Final = (0.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 10000.0)
GENAI_TOKEN_BUCKETS: Final = (
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
    4194304.0, 16777216.0, 67108864.0,
)  # fmt: skip
GENAI_DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
# Bodies and cache entries: 100 B .. 10 MB in decades (semconv gives no advice for sizes).
SIZE_BUCKETS: Final = (100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)
# Cache round trips on loopback/LAN are sub-millisecond; the tail matters up to a second.
CACHE_DURATION_BUCKETS: Final = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
# Agent runs chain several LLM calls and tools: 50 ms .. 5 min.
AGENT_DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# A websocket session lives from seconds to hours.
SESSION_DURATION_BUCKETS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
RATIO_BUCKETS: Final = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
STEP_BUCKETS: Final = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0)

#: Attribute keys that identify one user, thread, run or request: never on a metric.
IDENTIFIER_KEYS: Final = frozenset(
    {
        "user.id", "enduser.id", "user_id", "gen_ai.conversation.id", "thread_id",
        "chenu.thread.id", "chenu.request.id", "request_id", "gen_ai.agent.id", "agent_id",
        "chenu.agent.run.id", "gen_ai.tool.call.id", "gen_ai.response.id", "url.path",
        "url.full", "url.query", "session.id",
    }
)  # fmt: skip


@dataclass(frozen=True)
class MetricSpec:
    """One instrument of the catalogue: the single place its name, unit and attributes live."""

    name: str
    kind: InstrumentKind
    unit: str
    description: str
    group: str
    attributes: tuple[str, ...]
    buckets: tuple[float, ...] | None = None
    semconv: bool = False
    #: Which part of chenu-otel records it (documentation only).
    emitted_by: str = "helper"
    #: The earlier module's metric this one replaces, if any.
    seed_name: str | None = None

    @property
    def prometheus_name(self) -> str:
        """The metric family name after the standard OTLP → Prometheus translation."""
        return prometheus_name(self.name, self.unit, self.kind)

    @property
    def prometheus_series(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this metric."""
        base = self.prometheus_name
        if self.kind is InstrumentKind.HISTOGRAM:
            return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
        return (base,)


GROUPS: Final = {
    "http": "HTTP server",
    "http_client": "HTTP client",
    "db": "Database client",
    "cache": "Cache",
    "genai": "GenAI client (semantic conventions)",
    "agent": "Agents, tools and LLM cost",
    "thread": "Conversation threads and token budgets",
    "websocket": "WebSocket",
    "errors": "Errors",
}

_HTTP_ATTRS: Final = (
    "http.request.method", "http.route", "http.response.status_code", "url.scheme",
    "error.type", "network.protocol.version",
)  # fmt: skip
_DB_ATTRS: Final = (
    "db.system.name", "db.operation.name", "db.collection.name", "db.namespace", "error.type",
)  # fmt: skip
_POOL_ATTRS: Final = ("db.client.connection.pool.name",)
_CACHE_ATTRS: Final = ("db.system.name", "chenu.cache.name", "chenu.cache.operation")
_GENAI_ATTRS: Final = (
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
    "gen_ai.response.model",
)  # fmt: skip
_AGENT: Final = "gen_ai.agent.name"
_WS_ATTRS: Final = ("http.route",)

_BY_MIDDLEWARE: Final = "MonitoringMiddleware"
_BY_SQLALCHEMY: Final = "instrument_app(engine=...) (SQLAlchemy events)"
_BY_POOL: Final = "instrument_app(engine=...) (SQLAlchemy pool events)"
_BY_REDIS: Final = "instrument_app(redis=...) (Redis response hook)"
_BY_GENAI: Final = "chenu_otel.genai"
# Declared with its semconv shape; chenu-otel has no event to record it from (yet). Code that
# can measure it records it through chenu_otel.recorders.RECORDERS.
_NOT_RECORDED: Final = "declared only (record via chenu_otel.recorders)"

# fmt: off
# --- HTTP server ------------------------------------------------------------------------------
HTTP_SERVER_REQUEST_DURATION: Final = MetricSpec(
    "http.server.request.duration", HISTOGRAM, "s", "Duration of HTTP server requests.", "http",
    _HTTP_ATTRS, HTTP_DURATION_BUCKETS, semconv=True, emitted_by=_BY_MIDDLEWARE,
    seed_name="http_request_duration_seconds")
HTTP_SERVER_ACTIVE_REQUESTS: Final = MetricSpec(
    "http.server.active_requests", UP_DOWN_COUNTER, "{request}",
    "Number of active HTTP server requests.", "http", ("http.request.method", "url.scheme"),
    semconv=True, emitted_by=_BY_MIDDLEWARE)
HTTP_SERVER_REQUEST_BODY_SIZE: Final = MetricSpec(
    "http.server.request.body.size", HISTOGRAM, "By", "Size of HTTP server request bodies.",
    "http", _HTTP_ATTRS, SIZE_BUCKETS, semconv=True,
    emitted_by="MonitoringMiddleware(record_body_sizes=True)")
HTTP_SERVER_RESPONSE_BODY_SIZE: Final = MetricSpec(
    "http.server.response.body.size", HISTOGRAM, "By", "Size of HTTP server response bodies.",
    "http", _HTTP_ATTRS, SIZE_BUCKETS, semconv=True,
    emitted_by="MonitoringMiddleware(record_body_sizes=True)")

# --- HTTP client (the contrib httpx instrumentation records it; the view bounds its labels) ---
HTTP_CLIENT_REQUEST_DURATION: Final = MetricSpec(
    "http.client.request.duration", HISTOGRAM, "s", "Duration of HTTP client requests.",
    "http_client", ("http.request.method", "server.address", "http.response.status_code",
    "error.type"), HTTP_DURATION_BUCKETS, semconv=True,
    emitted_by="instrument_app() / the distro (contrib httpx instrumentation)")

# --- Database client --------------------------------------------------------------------------
DB_CLIENT_OPERATION_DURATION: Final = MetricSpec(
    "db.client.operation.duration", HISTOGRAM, "s", "Duration of database client operations.",
    "db", _DB_ATTRS, DB_DURATION_BUCKETS, semconv=True, emitted_by=_BY_SQLALCHEMY,
    seed_name="db_query_duration_seconds")
DB_CLIENT_RESPONSE_RETURNED_ROWS: Final = MetricSpec(
    "db.client.response.returned_rows", HISTOGRAM, "{row}",
    "Number of rows returned by the operation.", "db", _DB_ATTRS, ROW_BUCKETS, semconv=True,
    emitted_by=_NOT_RECORDED)
# Semconv's db.client.connection.count would translate to db_client_connection_count, which
# promtool rejects (a gauge ending in _count): keep the earlier semconv name.
DB_CLIENT_CONNECTIONS_USAGE: Final = MetricSpec(
    "db.client.connections.usage", UP_DOWN_COUNTER, "{connection}",
    "Connections in each state (idle, used); the earlier semconv name of "
    "db.client.connection.count.", "db", ("db.client.connection.state", *_POOL_ATTRS),
    emitted_by=_BY_POOL)
DB_CLIENT_CONNECTION_IDLE_MAX: Final = MetricSpec(
    "db.client.connection.idle.max", UP_DOWN_COUNTER, "{connection}",
    "The maximum number of idle open connections allowed.", "db", _POOL_ATTRS, semconv=True,
    emitted_by=_BY_POOL)
DB_CLIENT_CONNECTION_IDLE_MIN: Final = MetricSpec(
    "db.client.connection.idle.min", UP_DOWN_COUNTER, "{connection}",
    "The minimum number of idle open connections allowed.", "db", _POOL_ATTRS, semconv=True,
    emitted_by=_NOT_RECORDED)
DB_CLIENT_CONNECTION_MAX: Final = MetricSpec(
    "db.client.connection.max", UP_DOWN_COUNTER, "{connection}",
    "The maximum number of open connections allowed.", "db", _POOL_ATTRS, semconv=True,
    emitted_by=_BY_POOL)
DB_CLIENT_CONNECTION_PENDING_REQUESTS: Final = MetricSpec(
    "db.client.connection.pending_requests", UP_DOWN_COUNTER, "{request}",
    "Number of current pending requests for an open connection.", "db", _POOL_ATTRS,
    semconv=True, emitted_by=_NOT_RECORDED)
DB_CLIENT_CONNECTION_TIMEOUTS: Final = MetricSpec(
    "db.client.connection.timeouts", COUNTER, "{timeout}",
    "Number of connection timeouts that have occurred trying to obtain a connection from the "
    "pool.", "db", _POOL_ATTRS, semconv=True, emitted_by=_NOT_RECORDED)
DB_CLIENT_CONNECTION_CREATE_TIME: Final = MetricSpec(
    "db.client.connection.create_time", HISTOGRAM, "s",
    "The time it took to create a new connection.", "db", _POOL_ATTRS, DB_DURATION_BUCKETS,
    semconv=True, emitted_by=_BY_POOL)
DB_CLIENT_CONNECTION_WAIT_TIME: Final = MetricSpec(
    "db.client.connection.wait_time", HISTOGRAM, "s",
    "The time it took to obtain an open connection from the pool.", "db", _POOL_ATTRS,
    DB_DURATION_BUCKETS, semconv=True, emitted_by=_NOT_RECORDED)
DB_CLIENT_CONNECTION_USE_TIME: Final = MetricSpec(
    "db.client.connection.use_time", HISTOGRAM, "s",
    "The time between borrowing a connection and returning it to the pool.", "db", _POOL_ATTRS,
    DB_DURATION_BUCKETS, semconv=True, emitted_by=_BY_POOL)

# --- Cache ------------------------------------------------------------------------------------
CACHE_OPERATIONS: Final = MetricSpec(
    "chenu.cache.operations", COUNTER, "{operation}",
    "Cache operations by result; hit ratio = result=hit / (hit + miss).", "cache",
    (*_CACHE_ATTRS, "chenu.cache.result"), emitted_by=f"{_BY_REDIS}, helper",
    seed_name="cache_hits_total / cache_misses_total")
CACHE_OPERATION_DURATION: Final = MetricSpec(
    "chenu.cache.operation.duration", HISTOGRAM, "s", "Duration of cache operations.", "cache",
    (*_CACHE_ATTRS, "error.type"), CACHE_DURATION_BUCKETS)
CACHE_ENTRY_SIZE: Final = MetricSpec(
    "chenu.cache.entry.size", HISTOGRAM, "By", "Size of values written to the cache.", "cache",
    ("db.system.name", "chenu.cache.name"), SIZE_BUCKETS, emitted_by=_NOT_RECORDED)

# --- GenAI client (semantic conventions) ------------------------------------------------------
GENAI_CLIENT_TOKEN_USAGE: Final = MetricSpec(
    "gen_ai.client.token.usage", HISTOGRAM, "{token}", "Number of input and output tokens used.",
    "genai", (*_GENAI_ATTRS, "gen_ai.token.type"), GENAI_TOKEN_BUCKETS, semconv=True,
    emitted_by=_BY_GENAI)
GENAI_CLIENT_OPERATION_DURATION: Final = MetricSpec(
    "gen_ai.client.operation.duration", HISTOGRAM, "s", "GenAI operation duration.", "genai",
    (*_GENAI_ATTRS, "error.type"), GENAI_DURATION_BUCKETS, semconv=True, emitted_by=_BY_GENAI)

# --- Agents, tools and LLM cost ---------------------------------------------------------------
AGENT_EXECUTIONS: Final = MetricSpec(
    "chenu.agent.executions", COUNTER, "{execution}", "Agent runs by outcome.", "agent",
    (_AGENT, "chenu.outcome"), emitted_by=_BY_GENAI, seed_name="agent_executions_total")
AGENT_EXECUTION_DURATION: Final = MetricSpec(
    "chenu.agent.execution.duration", HISTOGRAM, "s", "Duration of agent runs.", "agent",
    (_AGENT, "chenu.outcome"), AGENT_DURATION_BUCKETS, emitted_by=_BY_GENAI)
AGENT_ACTIVE_RUNS: Final = MetricSpec(
    "chenu.agent.active_runs", UP_DOWN_COUNTER, "{run}", "Agent runs in progress.", "agent",
    (_AGENT,), emitted_by=_BY_GENAI)
AGENT_TOKENS: Final = MetricSpec(
    "chenu.agent.tokens", COUNTER, "{token}",
    "Tokens consumed by agent runs, by gen_ai.token.type (input, output; total when the "
    "caller did not split them).", "agent", (_AGENT, "gen_ai.token.type"),
    emitted_by=_BY_GENAI, seed_name="agent_tokens_used")
AGENT_COST: Final = MetricSpec(
    "chenu.agent.cost.usd", COUNTER, "{USD}", "Cost of agent runs in US dollars.", "agent",
    (_AGENT,), emitted_by=_BY_GENAI, seed_name="agent_cost_usd_total")
AGENT_STEPS: Final = MetricSpec(
    "chenu.agent.steps", HISTOGRAM, "{step}", "LLM calls and tool calls per agent run.",
    "agent", (_AGENT, "chenu.outcome"), STEP_BUCKETS, emitted_by=_BY_GENAI)
AGENT_TOOL_CALLS: Final = MetricSpec(
    "chenu.agent.tool.calls", COUNTER, "{call}", "Tool calls by tool and outcome.", "agent",
    (_AGENT, "gen_ai.tool.name", "chenu.outcome"), emitted_by=_BY_GENAI)
AGENT_TOOL_DURATION: Final = MetricSpec(
    "chenu.agent.tool.duration", HISTOGRAM, "s", "Duration of tool calls.", "agent",
    (_AGENT, "gen_ai.tool.name", "chenu.outcome"), GENAI_DURATION_BUCKETS, emitted_by=_BY_GENAI)
LLM_COST: Final = MetricSpec(
    "chenu.llm.cost.usd", COUNTER, "{USD}", "Cost of LLM calls in US dollars.", "agent",
    (*_GENAI_ATTRS, _AGENT), emitted_by=_BY_GENAI)

# --- Conversation threads and token budgets ---------------------------------------------------
THREAD_CREATED: Final = MetricSpec(
    "chenu.thread.created", COUNTER, "{thread}", "Conversation threads created.", "thread", (),
    seed_name="threads_total")
THREAD_CLOSED: Final = MetricSpec(
    "chenu.thread.closed", COUNTER, "{thread}", "Conversation threads closed or archived.",
    "thread", ("chenu.thread.close_reason",))
THREAD_ACTIVE: Final = MetricSpec(
    "chenu.thread.active", UP_DOWN_COUNTER, "{thread}", "Conversation threads currently open.",
    "thread", ())
THREAD_MESSAGES: Final = MetricSpec(
    "chenu.thread.messages", COUNTER, "{message}", "Messages added to threads, by role.",
    "thread", ("chenu.message.role",))
THREAD_MESSAGE_TOKENS: Final = MetricSpec(
    "chenu.thread.message.tokens", HISTOGRAM, "{token}", "Tokens per thread message.", "thread",
    ("chenu.message.role",), GENAI_TOKEN_BUCKETS)
TOKEN_BUDGET_USED: Final = MetricSpec(
    "chenu.thread.token_budget.used", COUNTER, "{token}",
    "Tokens charged against thread token budgets.", "thread", (_AGENT,), emitted_by=_BY_GENAI)
TOKEN_BUDGET_REMAINING: Final = MetricSpec(
    "chenu.thread.token_budget.remaining", HISTOGRAM, "{token}",
    "Tokens left in the thread budget after each charge (distribution over threads).", "thread",
    (_AGENT,), GENAI_TOKEN_BUCKETS, emitted_by=_BY_GENAI)
TOKEN_BUDGET_UTILIZATION: Final = MetricSpec(
    "chenu.thread.token_budget.utilization", HISTOGRAM, "1",
    "Fraction of the thread budget used after each charge.", "thread", (_AGENT,), RATIO_BUCKETS,
    emitted_by=_BY_GENAI)
TOKEN_BUDGET_EXHAUSTED: Final = MetricSpec(
    "chenu.thread.token_budget.exhausted", COUNTER, "{event}",
    "Charges that left a thread budget exhausted.", "thread", (_AGENT,), emitted_by=_BY_GENAI)
THREAD_EVENTS: Final = MetricSpec(
    "chenu.thread.events", COUNTER, "{event}", "Thread lifecycle events by type.", "thread",
    ("chenu.thread.event",))

# --- WebSocket --------------------------------------------------------------------------------
WEBSOCKET_CONNECTIONS_ACTIVE: Final = MetricSpec(
    "chenu.websocket.connections.active", UP_DOWN_COUNTER, "{connection}",
    "Open WebSocket connections.", "websocket", _WS_ATTRS, emitted_by=_BY_MIDDLEWARE)
WEBSOCKET_CONNECTIONS: Final = MetricSpec(
    "chenu.websocket.connections", COUNTER, "{connection}", "WebSocket connections accepted.",
    "websocket", _WS_ATTRS, emitted_by=_BY_MIDDLEWARE)
WEBSOCKET_CONNECTION_DURATION: Final = MetricSpec(
    "chenu.websocket.connection.duration", HISTOGRAM, "s", "Lifetime of WebSocket connections.",
    "websocket", _WS_ATTRS, SESSION_DURATION_BUCKETS, emitted_by=_BY_MIDDLEWARE)
WEBSOCKET_MESSAGES_RECEIVED: Final = MetricSpec(
    "chenu.websocket.messages.received", COUNTER, "{message}",
    "WebSocket messages received from clients.", "websocket", _WS_ATTRS,
    emitted_by=_BY_MIDDLEWARE)
WEBSOCKET_MESSAGES_SENT: Final = MetricSpec(
    "chenu.websocket.messages.sent", COUNTER, "{message}", "WebSocket messages sent to clients.",
    "websocket", _WS_ATTRS, emitted_by=_BY_MIDDLEWARE)
WEBSOCKET_MESSAGE_SIZE: Final = MetricSpec(
    "chenu.websocket.message.size", HISTOGRAM, "By", "Size of WebSocket messages.", "websocket",
    (*_WS_ATTRS, "chenu.websocket.direction"), SIZE_BUCKETS)

# --- Errors -----------------------------------------------------------------------------------
ERRORS: Final = MetricSpec(
    "chenu.errors", COUNTER, "{error}", "Errors by type and the layer that saw them.", "errors",
    ("error.type", "chenu.error.source"),
    emitted_by=f"{_BY_MIDDLEWARE}, {_BY_GENAI}, instrumentation, helper",
    seed_name="errors_total")
# fmt: on

#: Every instrument: each MetricSpec defined above, ordered by `GROUPS` (then as declared).
CATALOGUE: Final[tuple[MetricSpec, ...]] = tuple(
    sorted(
        (value for value in dict(globals()).values() if isinstance(value, MetricSpec)),
        key=lambda s: list(GROUPS).index(s.group),
    )
)
_BY_NAME: Final[dict[str, MetricSpec]] = {s.name: s for s in CATALOGUE}


def spec(name: str) -> MetricSpec:
    """The catalogue entry for an OTel metric name (KeyError naming the metric if unknown)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the chenu-otel metric catalogue") from None


# --- Prometheus name translation --------------------------------------------------------------
# The table the OpenTelemetry Collector and Prometheus' OTLP receiver use (otlptranslator).
_UNIT_MAP: Final = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds",
    "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tebibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
    "Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
}  # fmt: skip
_PER_UNIT_MAP: Final = {
    "s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
    "y": "year",
}  # fmt: skip
_NAME_SPLIT: Final = re.compile(r"[^a-zA-Z0-9:]+")
_UNIT_CLEAN: Final = re.compile(r"[^a-zA-Z0-9]+")


def _clean_unit(unit: str) -> str:
    return "_".join(t for t in _UNIT_CLEAN.split(unit) if t)


def prometheus_name(name: str, unit: str, kind: InstrumentKind) -> str:
    """Translate an OTel metric name and unit the way OTLP → Prometheus does by default.

    Non-alphanumerics become ``_``; the unit becomes a suffix (``s`` → ``_seconds``, ``By`` →
    ``_bytes``, ``1/s`` → ``_per_second``) unless it is an annotation in braces (``{token}``) or
    already a name token; monotonic counters end in ``_total``; unit ``1`` adds ``_ratio`` to
    gauges only.

    >>> prometheus_name("chenu.agent.cost.usd", "{USD}", InstrumentKind.COUNTER)
    'chenu_agent_cost_usd_total'
    """
    tokens = [t for t in _NAME_SPLIT.split(name) if t]
    main, _, per = unit.partition("/")
    main = main.strip()
    if main and "{" not in main and "}" not in main:
        main_prom = _clean_unit(_UNIT_MAP.get(main, main))
        if main_prom and main_prom not in tokens:
            tokens.append(main_prom)
    per = per.strip()
    if per and "{" not in per and "}" not in per:
        per_prom = _clean_unit(_PER_UNIT_MAP.get(per, per))
        if per_prom and per_prom not in tokens:
            tokens += ["per", per_prom]
    if kind is InstrumentKind.COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind in (InstrumentKind.GAUGE, InstrumentKind.UP_DOWN_COUNTER):
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    result = "_".join(tokens)
    if result[:1].isdigit():
        result = "_" + result
    return result


# --- Views: the one place cardinality is enforced ---------------------------------------------
def views() -> list[View]:
    """SDK views for ``MeterProvider(views=views())``: per catalogue metric an attribute
    allow-list; anything else is dropped before aggregation. Bucket advice still applies."""
    return [View(instrument_name=s.name, attribute_keys=set(s.attributes)) for s in CATALOGUE]


# --- Generated reference ----------------------------------------------------------------------
def metrics_markdown() -> str:
    """The Markdown reference of the catalogue (``chenu_otel/METRICS.md`` is this text)."""
    lines = [
        "# chenu-otel metric catalogue",
        "",
        "Generated from `chenu_otel/catalogue.py` by `chenu-otel metrics --format markdown`; "
        "do not edit by hand.",
        "",
        "Prometheus names are what the standard OTLP → Prometheus translation produces "
        "(OpenTelemetry Collector `prometheus`/`prometheusremotewrite` exporters, Prometheus' "
        "native OTLP receiver with the default `UnderscoreEscapingWithSuffixes`). Histograms "
        "are stored as `<name>_bucket`, `<name>_sum`, `<name>_count`; attribute keys become "
        "labels with `.` replaced by `_`. Attributes outside a metric's allow-list are dropped "
        "by the SDK views (`chenu_otel.catalogue.views()`); identifiers (user, thread, run, "
        "request) are never metric attributes.",
        "",
        f"{len(CATALOGUE)} instruments.",
        "",
    ]
    for group, title in GROUPS.items():
        lines += [
            f"## {title}",
            "",
            "| OTel name | Type | Unit | Prometheus name | Labels | Emitted by | Description |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in (s for s in CATALOGUE if s.group == group):
            labels = ", ".join(f"`{a.replace('.', '_')}`" for a in s.attributes) or "—"
            sem = " (semconv)" if s.semconv else ""
            lines.append(
                f"| `{s.name}`{sem} | {s.kind.value} | `{s.unit}` | `{s.prometheus_name}` "
                f"| {labels} | {s.emitted_by} | {s.description} |"
            )
        lines.append("")
    lines += ["## Histogram bucket advice", "", "| OTel name | Buckets |", "|---|---|"]
    for s in (s for s in CATALOGUE if s.buckets):
        lines.append(f"| `{s.name}` | {', '.join(f'{b:g}' for b in s.buckets or ())} |")
    lines.append("")
    return "\n".join(lines)
