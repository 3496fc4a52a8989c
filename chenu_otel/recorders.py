"""Typed recorders, one per area, built from the metric catalogue.

Each recorder creates its instruments once, from the catalogue's specs, and holds them as
attributes; its methods are the one code path for each measurement. The middleware, the GenAI
context managers, the SQLAlchemy/Redis integrations and the earlier module's ``record_*``
helpers (`chenu_otel.compat`) all call these methods, so a measurement is written once and
named once. The instruments come from chenu-otel's proxy meter (`chenu_otel.proxies`), so they
record into whatever pipeline `chenu_otel.configure()` installed last — nothing is looked up
by name at run time.

>>> from chenu_otel.recorders import RECORDERS
>>> RECORDERS.cache.operation("get", "hit", cache="threads")  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation
from opentelemetry.metrics import UpDownCounter as OTelUpDownCounter
from opentelemetry.util.types import AttributeValue

from chenu_otel import catalogue as cat
from chenu_otel.catalogue import InstrumentKind, MetricSpec
from chenu_otel.proxies import METER_PROVIDER

__all__ = [
    "RECORDERS",
    "CacheRecorder",
    "DbClientRecorder",
    "ErrorRecorder",
    "GenAIRecorder",
    "HttpServerRecorder",
    "Recorders",
    "ThreadRecorder",
    "WebSocketRecorder",
    "normalize_method",
]

Attributes = dict[str, AttributeValue]

SUCCESS: Final = "success"
FAILURE: Final = "failure"
_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)


def normalize_method(method: str) -> str:
    """Semconv ``http.request.method``: known methods upper-cased, anything else ``_OTHER``."""
    upper = method.upper()
    return upper if upper in _KNOWN_METHODS else "_OTHER"


def _check(spec: MetricSpec, kind: InstrumentKind) -> MetricSpec:
    if spec.kind is not kind:
        raise TypeError(f"{spec.name} is a {spec.kind.value}, not a {kind.value}")
    return spec


def counter(meter: Meter, spec: MetricSpec) -> Counter:
    """The counter declared by `spec`."""
    _check(spec, InstrumentKind.COUNTER)
    return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)


def up_down_counter(meter: Meter, spec: MetricSpec) -> OTelUpDownCounter:
    """The up-down counter declared by `spec`."""
    _check(spec, InstrumentKind.UP_DOWN_COUNTER)
    return meter.create_up_down_counter(spec.name, unit=spec.unit, description=spec.description)


def histogram(meter: Meter, spec: MetricSpec) -> Histogram:
    """The histogram declared by `spec`, with the catalogue's bucket advice."""
    _check(spec, InstrumentKind.HISTOGRAM)
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=spec.buckets,
    )


class InProcessUpDownCount:
    """An up-down count kept in process and observed at collection time.

    For counts that change twice per request (active requests) a dict update is far cheaper
    than two SDK measurements (attribute validation, view lookup, aggregation); the exported
    metric is the same non-monotonic sum. Keys are tuples of attribute values in the order of
    `keys`; the count outlives provider swaps, so it stays right across re-configuration.
    """

    def __init__(self, meter: Meter, spec: MetricSpec, keys: tuple[str, ...]) -> None:
        _check(spec, InstrumentKind.UP_DOWN_COUNTER)
        self._keys = keys
        self._lock = threading.Lock()
        self._counts: dict[tuple[AttributeValue, ...], int] = {}
        self.instrument = meter.create_observable_up_down_counter(
            spec.name, callbacks=[self._observe], unit=spec.unit, description=spec.description
        )

    def add(self, key: tuple[AttributeValue, ...], amount: int) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount

    def _observe(self, options: CallbackOptions) -> list[Observation]:
        with self._lock:
            counts = list(self._counts.items())
        return [Observation(n, dict(zip(self._keys, key, strict=True))) for key, n in counts]


class HttpServerRecorder:
    """HTTP server requests: duration, active requests, body sizes."""

    def __init__(self, meter: Meter) -> None:
        self.request_duration = histogram(meter, cat.HTTP_SERVER_REQUEST_DURATION)
        self.active_requests = InProcessUpDownCount(
            meter, cat.HTTP_SERVER_ACTIVE_REQUESTS, ("http.request.method", "url.scheme")
        )
        self.request_body_size = histogram(meter, cat.HTTP_SERVER_REQUEST_BODY_SIZE)
        self.response_body_size = histogram(meter, cat.HTTP_SERVER_RESPONSE_BODY_SIZE)

    def request_started(self, method: str, scheme: str) -> None:
        """One more request in flight (`method` already normalized)."""
        self.active_requests.add((method, scheme), 1)

    def request_ended(self, method: str, scheme: str) -> None:
        """One request fewer in flight."""
        self.active_requests.add((method, scheme), -1)

    def request_finished(
        self,
        duration_s: float,
        *,
        method: str,
        status_code: int,
        route: str | None,
        scheme: str | None = None,
        protocol_version: str | None = None,
        error_type: str | None = None,
        request_size: int | None = None,
        response_size: int | None = None,
    ) -> None:
        """One finished request; `route` is the template (None: unmatched, one series)."""
        attributes: Attributes = {
            "http.request.method": method,
            "http.response.status_code": status_code,
        }
        if scheme is not None:
            attributes["url.scheme"] = scheme
        if protocol_version is not None:
            attributes["network.protocol.version"] = protocol_version
        if route is not None:
            attributes["http.route"] = route
        if error_type is not None:
            attributes["error.type"] = error_type
        self.request_duration.record(duration_s, attributes)
        if request_size is not None:
            self.request_body_size.record(request_size, attributes)
        if response_size is not None:
            self.response_body_size.record(response_size, attributes)


class DbClientRecorder:
    """Database client operations and connection pools."""

    def __init__(self, meter: Meter) -> None:
        self.operation_duration = histogram(meter, cat.DB_CLIENT_OPERATION_DURATION)
        self.returned_rows = histogram(meter, cat.DB_CLIENT_RESPONSE_RETURNED_ROWS)
        self.connections_usage = up_down_counter(meter, cat.DB_CLIENT_CONNECTIONS_USAGE)
        self.connection_max = up_down_counter(meter, cat.DB_CLIENT_CONNECTION_MAX)
        self.connection_idle_max = up_down_counter(meter, cat.DB_CLIENT_CONNECTION_IDLE_MAX)
        self.connection_idle_min = up_down_counter(meter, cat.DB_CLIENT_CONNECTION_IDLE_MIN)
        self.connection_pending_requests = up_down_counter(
            meter, cat.DB_CLIENT_CONNECTION_PENDING_REQUESTS
        )
        self.connection_timeouts = counter(meter, cat.DB_CLIENT_CONNECTION_TIMEOUTS)
        self.connection_create_time = histogram(meter, cat.DB_CLIENT_CONNECTION_CREATE_TIME)
        self.connection_wait_time = histogram(meter, cat.DB_CLIENT_CONNECTION_WAIT_TIME)
        self.connection_use_time = histogram(meter, cat.DB_CLIENT_CONNECTION_USE_TIME)

    def operation(
        self,
        duration_s: float,
        *,
        system: str,
        operation: str | None = None,
        collection: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """One database operation (``SELECT``, ``GET``, ...) on `collection` (a table)."""
        attributes: Attributes = {"db.system.name": system}
        if operation:
            attributes["db.operation.name"] = operation
        if collection:
            attributes["db.collection.name"] = collection
        if error_type:
            attributes["error.type"] = error_type
        self.operation_duration.record(duration_s, attributes)

    def pool_limits(self, pool: str, *, max_connections: int, max_idle: int) -> None:
        """The configured size of a pool (recorded once, when it is instrumented)."""
        attributes: Attributes = {"db.client.connection.pool.name": pool}
        self.connection_max.add(max_connections, attributes)
        self.connection_idle_max.add(max_idle, attributes)

    def connections(self, pool: str, state: str, delta: int) -> None:
        """Connections of `pool` entering (+1) or leaving (-1) `state` (``idle``/``used``)."""
        self.connections_usage.add(
            delta, {"db.client.connection.pool.name": pool, "db.client.connection.state": state}
        )

    def connection_created(self, pool: str, seconds: float) -> None:
        """A new connection was opened in `seconds`."""
        self.connection_create_time.record(seconds, {"db.client.connection.pool.name": pool})

    def connection_returned(self, pool: str, seconds_used: float) -> None:
        """A connection came back to the pool after `seconds_used`."""
        self.connection_use_time.record(seconds_used, {"db.client.connection.pool.name": pool})


class CacheRecorder:
    """Cache operations by result (the hit ratio), their duration, entry sizes."""

    def __init__(self, meter: Meter) -> None:
        self.operations = counter(meter, cat.CACHE_OPERATIONS)
        self.operation_duration = histogram(meter, cat.CACHE_OPERATION_DURATION)
        self.entry_size = histogram(meter, cat.CACHE_ENTRY_SIZE)

    def operation(
        self,
        operation: str,
        result: str,
        *,
        cache: str,
        system: str,
        duration_s: float | None = None,
    ) -> None:
        """One cache operation; `result` is ``hit``/``miss`` for lookups, ``ok`` or ``error``."""
        attributes: Attributes = {
            "db.system.name": system,
            "chenu.cache.name": cache,
            "chenu.cache.operation": operation.lower(),
        }
        self.operations.add(1, {**attributes, "chenu.cache.result": result})
        if duration_s is not None:
            if result == "error":
                attributes["error.type"] = "_OTHER"
            self.operation_duration.record(duration_s, attributes)


class GenAIRecorder:
    """LLM calls (semconv token usage and duration, cost), tool calls and agent runs."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage = histogram(meter, cat.GENAI_CLIENT_TOKEN_USAGE)
        self.operation_duration = histogram(meter, cat.GENAI_CLIENT_OPERATION_DURATION)
        self.llm_cost = counter(meter, cat.LLM_COST)
        self.agent_executions = counter(meter, cat.AGENT_EXECUTIONS)
        self.agent_execution_duration = histogram(meter, cat.AGENT_EXECUTION_DURATION)
        self.agent_active_runs = up_down_counter(meter, cat.AGENT_ACTIVE_RUNS)
        self.agent_tokens = counter(meter, cat.AGENT_TOKENS)
        self.agent_cost = counter(meter, cat.AGENT_COST)
        self.agent_steps = histogram(meter, cat.AGENT_STEPS)
        self.tool_calls = counter(meter, cat.AGENT_TOOL_CALLS)
        self.tool_duration = histogram(meter, cat.AGENT_TOOL_DURATION)

    @staticmethod
    def llm_attributes(
        model: str, provider: str, operation: str = "chat", response_model: str | None = None
    ) -> Attributes:
        """The semconv attributes of an LLM call's metrics."""
        attributes: Attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        if response_model:
            attributes["gen_ai.response.model"] = response_model
        return attributes

    def llm_usage(
        self,
        attributes: Attributes,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float = 0.0,
        agent: str | None = None,
    ) -> None:
        """Token usage of one LLM call by ``gen_ai.token.type``, and its cost."""
        self.token_usage.record(input_tokens, {**attributes, "gen_ai.token.type": "input"})
        self.token_usage.record(output_tokens, {**attributes, "gen_ai.token.type": "output"})
        if cost_usd:
            cost_attributes = {**attributes, "gen_ai.agent.name": agent} if agent else attributes
            self.llm_cost.add(cost_usd, cost_attributes)

    def llm_finished(
        self, attributes: Attributes, duration_s: float, error_type: str | None = None
    ) -> None:
        """The duration of one LLM call (with ``error.type`` when it failed)."""
        if error_type:
            attributes = {**attributes, "error.type": error_type}
        self.operation_duration.record(duration_s, attributes)

    def tool_call(
        self, tool: str, *, outcome: str, duration_s: float, agent: str | None = None
    ) -> None:
        """One tool call by tool and outcome (``success``/``failure``)."""
        attributes: Attributes = {"gen_ai.tool.name": tool, "chenu.outcome": outcome}
        if agent:
            attributes["gen_ai.agent.name"] = agent
        self.tool_calls.add(1, attributes)
        self.tool_duration.record(duration_s, attributes)

    def run_started(self, agent: str) -> None:
        """One more agent run in progress."""
        self.agent_active_runs.add(1, {"gen_ai.agent.name": agent})

    def run_ended(self, agent: str) -> None:
        """One agent run fewer in progress."""
        self.agent_active_runs.add(-1, {"gen_ai.agent.name": agent})

    def run_finished(
        self,
        agent: str,
        *,
        outcome: str,
        duration_s: float,
        tokens: Mapping[str, int],
        cost_usd: float,
        steps: int | None = None,
    ) -> None:
        """One finished agent run: its outcome, duration, steps, tokens by type and cost."""
        with_outcome: Attributes = {"gen_ai.agent.name": agent, "chenu.outcome": outcome}
        self.count_runs(agent, outcome)
        self.agent_execution_duration.record(duration_s, with_outcome)
        if steps is not None:
            self.agent_steps.record(steps, with_outcome)
        for token_type, count in tokens.items():
            if count:
                by_type: Attributes = {"gen_ai.agent.name": agent, "gen_ai.token.type": token_type}
                self.agent_tokens.add(count, by_type)
        if cost_usd:
            self.charge_agent(agent, cost_usd)

    def count_runs(self, agent: str, outcome: str, runs: float = 1) -> None:
        """`runs` agent runs finished with `outcome`."""
        self.agent_executions.add(runs, {"gen_ai.agent.name": agent, "chenu.outcome": outcome})

    def charge_agent(self, agent: str, cost_usd: float) -> None:
        """`cost_usd` spent by `agent`."""
        self.agent_cost.add(cost_usd, {"gen_ai.agent.name": agent})


class ThreadRecorder:
    """Conversation threads, their messages and their token budgets."""

    def __init__(self, meter: Meter) -> None:
        self.created = counter(meter, cat.THREAD_CREATED)
        self.closed = counter(meter, cat.THREAD_CLOSED)
        self.active = up_down_counter(meter, cat.THREAD_ACTIVE)
        self.messages = counter(meter, cat.THREAD_MESSAGES)
        self.message_tokens = histogram(meter, cat.THREAD_MESSAGE_TOKENS)
        self.events = counter(meter, cat.THREAD_EVENTS)
        self.budget_used = counter(meter, cat.TOKEN_BUDGET_USED)
        self.budget_remaining = histogram(meter, cat.TOKEN_BUDGET_REMAINING)
        self.budget_utilization = histogram(meter, cat.TOKEN_BUDGET_UTILIZATION)
        self.budget_exhausted = counter(meter, cat.TOKEN_BUDGET_EXHAUSTED)

    def event(self, event_type: str) -> None:
        """Any thread lifecycle event, counted by type."""
        self.events.add(1, {"chenu.thread.event": event_type})

    def opened(self) -> None:
        """A thread was created."""
        self.created.add(1)
        self.active.add(1)

    def ended(self, reason: str) -> None:
        """A thread was closed or archived."""
        self.closed.add(1, {"chenu.thread.close_reason": reason})
        self.active.add(-1)

    def message(self, role: str, tokens: int | None = None) -> None:
        """A message added to a thread by `role`, with its token count when known."""
        attributes: Attributes = {"chenu.message.role": role}
        self.messages.add(1, attributes)
        if tokens is not None:
            self.message_tokens.record(tokens, attributes)

    def budget_charged(self, agent: str, *, charged: int, limit: int, used: int) -> None:
        """`charged` tokens of a run by `agent` went against a budget of `limit`, now at
        `used`: remaining tokens, utilization and exhaustion."""
        attributes: Attributes = {"gen_ai.agent.name": agent}
        if charged:
            self.budget_used.add(charged, attributes)
        self.budget_remaining.record(max(limit - used, 0), attributes)
        if limit > 0:
            self.budget_utilization.record(min(used / limit, 1.0), attributes)
        if used >= limit:
            self.budget_exhausted.add(1, attributes)


class WebSocketRecorder:
    """WebSocket connections and messages, by route template."""

    def __init__(self, meter: Meter) -> None:
        self.connections_active = up_down_counter(meter, cat.WEBSOCKET_CONNECTIONS_ACTIVE)
        self.connections = counter(meter, cat.WEBSOCKET_CONNECTIONS)
        self.connection_duration = histogram(meter, cat.WEBSOCKET_CONNECTION_DURATION)
        self.messages_received = counter(meter, cat.WEBSOCKET_MESSAGES_RECEIVED)
        self.messages_sent = counter(meter, cat.WEBSOCKET_MESSAGES_SENT)
        self.message_size = histogram(meter, cat.WEBSOCKET_MESSAGE_SIZE)

    def connected(self, attributes: Attributes) -> None:
        """A connection on a route (``{"http.route": ...}``) was accepted."""
        self.connections.add(1, attributes)
        self.connections_active.add(1, attributes)

    def disconnected(self, attributes: Attributes, duration_s: float | None) -> None:
        """An accepted connection closed after `duration_s`."""
        self.connections_active.add(-1, attributes)
        if duration_s is not None:
            self.connection_duration.record(duration_s, attributes)

    def message(self, attributes: Attributes, direction: str, size: int | None = None) -> None:
        """One message ``received`` or ``sent``, with its size when known."""
        sent = direction == "sent"
        (self.messages_sent if sent else self.messages_received).add(1, attributes)
        if size is not None:
            self.message_size.record(size, {**attributes, "chenu.websocket.direction": direction})


class ErrorRecorder:
    """Errors by type and the layer that saw them."""

    def __init__(self, meter: Meter) -> None:
        self.errors = counter(meter, cat.ERRORS)

    def error(self, error_type: str, source: str, count: float = 1) -> None:
        """`count` errors of `error_type` (an exception class name or a status) seen by
        `source`."""
        self.errors.add(count, {"error.type": error_type, "chenu.error.source": source})


@dataclass(frozen=True)
class Recorders:
    """All recorders, built on one meter."""

    http: HttpServerRecorder
    db: DbClientRecorder
    cache: CacheRecorder
    genai: GenAIRecorder
    threads: ThreadRecorder
    websocket: WebSocketRecorder
    errors: ErrorRecorder

    @classmethod
    def create(cls, meter: Meter) -> Recorders:
        """Create every catalogue instrument on `meter`."""
        return cls(
            http=HttpServerRecorder(meter),
            db=DbClientRecorder(meter),
            cache=CacheRecorder(meter),
            genai=GenAIRecorder(meter),
            threads=ThreadRecorder(meter),
            websocket=WebSocketRecorder(meter),
            errors=ErrorRecorder(meter),
        )


def _package_version() -> str | None:
    try:
        return version("chenu-otel")
    except PackageNotFoundError:
        return None


#: The recorders of this process, on chenu-otel's proxy meter (they follow `configure()`).
RECORDERS: Final = Recorders.create(METER_PROVIDER.get_meter(cat.METER_NAME, _package_version()))
