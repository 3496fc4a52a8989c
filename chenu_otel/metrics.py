"""The metric catalogue: every instrument chenu-otel records, declared once.

Each :class:`MetricSpec` carries the OTel name, kind, unit, description, bucket advice and the
attribute keys a measurement may keep. Everything else derives from it:

* :func:`views` turns the allow-lists into SDK ``View`` objects, the one place where metric
  cardinality is enforced (pass them to ``MeterProvider(views=...)``; ``chenu_otel.configure()``
  does). Identifiers (user, thread, agent run, request) are never in an allow-list.
* :func:`prometheus_name` gives the name the standard OTLP → Prometheus translation produces
  (``http.server.request.duration`` in ``s`` → ``http_server_request_duration_seconds``); the CLI
  (``chenu-otel metrics``) and ``chenu_otel/METRICS.md`` print it, and dashboards and alerts use it.
* The ``record_*`` helpers keep the signatures of the earlier monitoring module, and
  :class:`Counter` / :class:`Histogram` / :class:`Gauge` are prometheus_client-style facades
  backed by OTel instruments, so ``Counter("x_total", "doc", ["kind"]).labels(kind="a").inc()``
  keeps working.

Instruments are taken from the *global* meter provider (``opentelemetry.metrics``) and re-bound
whenever that provider changes, so they follow whatever ``chenu_otel.configure()`` (or a test)
installed. Recording never raises into the caller.

Example::

    from chenu_otel.metrics import record_http_request, record_agent_execution

    record_http_request("GET", "/agents", 200, 0.045)
    record_agent_execution("agent-001", "NOVA", 1.2, tokens_used=150, cost_usd=0.0045,
                           success=True)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.util.types import AttributeValue

from chenu_otel.catalogue import (
    CATALOGUE,
    GROUPS,
    IDENTIFIER_KEYS,
    METER_NAME,
    InstrumentKind,
    MetricSpec,
    metrics_markdown,
    prometheus_name,
    spec,
    views,
)
from chenu_otel.pipeline import configure, current_pipeline

__all__ = [
    "CATALOGUE",
    "GROUPS",
    "IDENTIFIER_KEYS",
    "Counter",
    "Gauge",
    "Histogram",
    "InstrumentKind",
    "MetricSpec",
    "agent_cost_usd_total",
    "agent_executions_total",
    "errors_total",
    "get_content_type",
    "get_metrics",
    "init_metrics",
    "instrument",
    "metrics_markdown",
    "prometheus_name",
    "record_agent_execution",
    "record_cache_operation",
    "record_db_query",
    "record_error",
    "record_http_request",
    "record_llm_call",
    "record_thread_event",
    "record_tool_call",
    "record_websocket_connect",
    "record_websocket_disconnect",
    "record_websocket_message",
    "spec",
    "views",
]

_log = logging.getLogger(__name__)


# --- Instruments bound to the global meter provider -------------------------------------------
def _package_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("chenu-otel")
    except Exception:
        return None


class _Instruments:
    """Real instruments for the catalogue, re-created when the global meter provider changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._provider: MeterProvider | None = None
        self._meter: Meter | None = None
        self._by_name: dict[str, Any] = {}

    def meter(self) -> Meter:
        provider = otel_metrics.get_meter_provider()
        if provider is not self._provider:
            self._rebind(provider)
        assert self._meter is not None
        return self._meter

    def _rebind(self, provider: MeterProvider) -> None:
        with self._lock:
            if provider is self._provider:
                return
            self._meter = provider.get_meter(METER_NAME, _package_version())
            self._by_name = {}
            self._provider = provider

    def get(self, name: str) -> Any:
        provider = otel_metrics.get_meter_provider()
        if provider is not self._provider:
            self._rebind(provider)
        try:
            return self._by_name[name]
        except KeyError:
            pass
        with self._lock:
            if name not in self._by_name:
                assert self._meter is not None
                self._by_name[name] = _create(self._meter, spec(name))
            return self._by_name[name]


class _Tally:
    """An up-down count kept in process and observed at collection time.

    For counts that change twice per request (active requests) a dict update is far cheaper than
    two SDK measurements (attribute validation, view lookup, aggregation); the exported metric is
    the same non-monotonic sum. Callers use ``add`` like on an UpDownCounter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[tuple[str, AttributeValue], ...], int] = {}
        self.instrument: Any = None

    def add(self, amount: int, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        key = tuple(attributes.items()) if attributes else ()
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount

    def observe(self, options: CallbackOptions) -> list[Observation]:
        with self._lock:
            counts = list(self._counts.items())
        return [Observation(value, dict(key)) for key, value in counts]


# Catalogue up-down counters kept as in-process tallies (see _Tally); one tally per metric
# survives provider changes, so the count stays right when a test swaps providers.
_TALLIES: Final = {"http.server.active_requests": _Tally()}


def _create(meter: Meter, s: MetricSpec) -> Any:
    tally = _TALLIES.get(s.name)
    if tally is not None:
        tally.instrument = meter.create_observable_up_down_counter(
            s.name, callbacks=[tally.observe], unit=s.unit, description=s.description
        )
        return tally
    if s.kind is InstrumentKind.COUNTER:
        return meter.create_counter(s.name, unit=s.unit, description=s.description)
    if s.kind is InstrumentKind.UP_DOWN_COUNTER:
        return meter.create_up_down_counter(s.name, unit=s.unit, description=s.description)
    if s.kind is InstrumentKind.GAUGE:
        return meter.create_gauge(s.name, unit=s.unit, description=s.description)
    return meter.create_histogram(
        s.name,
        unit=s.unit,
        description=s.description,
        explicit_bucket_boundaries_advisory=list(s.buckets) if s.buckets else None,
    )


_INSTRUMENTS = _Instruments()


def instrument(name: str) -> Any:
    """The OTel instrument for catalogue metric `name`, from the current global meter provider.

    Returns a Counter, UpDownCounter, Histogram or Gauge; callers use ``add``/``record``/``set``.
    """
    return _INSTRUMENTS.get(name)


def _add(name: str, value: float, attributes: Mapping[str, AttributeValue]) -> None:
    try:
        _INSTRUMENTS.get(name).add(value, attributes)
    except Exception:  # telemetry never raises into the caller
        _log.debug("recording %s failed", name, exc_info=True)


def _record(name: str, value: float, attributes: Mapping[str, AttributeValue]) -> None:
    try:
        _INSTRUMENTS.get(name).record(value, attributes)
    except Exception:  # telemetry never raises into the caller
        _log.debug("recording %s failed", name, exc_info=True)


# --- Seed-compatible helpers -------------------------------------------------------------------
_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)


def normalize_method(method: str) -> str:
    """Semconv ``http.request.method``: known methods upper-cased, anything else ``_OTHER``."""
    upper = method.upper()
    return upper if upper in _KNOWN_METHODS else "_OTHER"


def record_http_request(
    method: str, endpoint: str, status_code: int, duration_seconds: float
) -> None:
    """Record one HTTP server request (seed signature); `endpoint` must be a route template.

    MonitoringMiddleware records requests itself; call this only for requests it does not see.
    """
    attrs: dict[str, AttributeValue] = {
        "http.request.method": normalize_method(method),
        "http.route": endpoint,
        "http.response.status_code": int(status_code),
    }
    if status_code >= 500:
        attrs["error.type"] = str(int(status_code))
    _record("http.server.request.duration", duration_seconds, attrs)


def record_db_query(
    operation: str,
    table: str | None = None,
    duration_seconds: float = 0.0,
    *,
    system: str = "sqlite",
    success: bool = True,
    error_type: str | None = None,
) -> None:
    """Record one database operation in ``db.client.operation.duration``."""
    attrs: dict[str, AttributeValue] = {
        "db.system.name": system,
        "db.operation.name": operation.upper(),
    }
    if table:
        attrs["db.collection.name"] = table
    if not success or error_type:
        attrs["error.type"] = error_type or "_OTHER"
    _record("db.client.operation.duration", duration_seconds, attrs)


def record_cache_operation(
    operation: str,
    hit: bool | None = None,
    duration_seconds: float | None = None,
    *,
    cache: str = "default",
    system: str = "redis",
    success: bool = True,
) -> None:
    """Record one cache operation: `hit` True/False for lookups (hit ratio), None otherwise."""
    if not success:
        result = "error"
    elif hit is None:
        result = "ok"
    else:
        result = "hit" if hit else "miss"
    attrs: dict[str, AttributeValue] = {
        "db.system.name": system,
        "chenu.cache.name": cache,
        "chenu.cache.operation": operation.lower(),
    }
    _add("chenu.cache.operations", 1, {**attrs, "chenu.cache.result": result})
    if duration_seconds is not None:
        if not success:
            attrs["error.type"] = "_OTHER"
        _record("chenu.cache.operation.duration", duration_seconds, attrs)


def record_agent_execution(
    agent_id: str,
    agent_name: str,
    duration_seconds: float,
    tokens_used: int,
    cost_usd: float,
    success: bool,
) -> None:
    """Record one finished agent run (seed signature). `agent_id` stays off metrics (it goes on
    spans via chenu_otel.genai); runs are aggregated by agent name and outcome."""
    del agent_id  # an identifier: never a metric attribute
    outcome = "success" if success else "failure"
    by_agent: dict[str, AttributeValue] = {"gen_ai.agent.name": agent_name}
    with_outcome = {**by_agent, "chenu.outcome": outcome}
    _add("chenu.agent.executions", 1, with_outcome)
    _record("chenu.agent.execution.duration", duration_seconds, with_outcome)
    if tokens_used:
        _add("chenu.agent.tokens", tokens_used, {**by_agent, "gen_ai.token.type": "total"})
    if cost_usd:
        _add("chenu.agent.cost.usd", cost_usd, by_agent)
    if not success:
        record_error("AgentExecutionFailed", source="agent")


def record_llm_call(
    model: str,
    *,
    provider: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    duration_seconds: float | None = None,
    cost_usd: float = 0.0,
    operation: str = "chat",
    response_model: str | None = None,
    agent_name: str | None = None,
    error_type: str | None = None,
) -> None:
    """Record one LLM call: semconv token usage and duration, plus our cost counter."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if response_model:
        attrs["gen_ai.response.model"] = response_model
    if input_tokens:
        _record("gen_ai.client.token.usage", input_tokens, {**attrs, "gen_ai.token.type": "input"})
    if output_tokens:
        _record(
            "gen_ai.client.token.usage", output_tokens, {**attrs, "gen_ai.token.type": "output"}
        )
    if duration_seconds is not None:
        d_attrs = {**attrs, "error.type": error_type} if error_type else attrs
        _record("gen_ai.client.operation.duration", duration_seconds, d_attrs)
    if cost_usd:
        c_attrs = {**attrs, "gen_ai.agent.name": agent_name} if agent_name else attrs
        _add("chenu.llm.cost.usd", cost_usd, c_attrs)


def record_tool_call(
    tool_name: str,
    duration_seconds: float,
    *,
    success: bool = True,
    agent_name: str | None = None,
) -> None:
    """Record one tool call by tool and outcome."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.tool.name": tool_name,
        "chenu.outcome": "success" if success else "failure",
    }
    if agent_name:
        attrs["gen_ai.agent.name"] = agent_name
    _add("chenu.agent.tool.calls", 1, attrs)
    _record("chenu.agent.tool.duration", duration_seconds, attrs)


_THREAD_EVENT_COUNTERS: Final = {
    "created": "chenu.thread.created",
    "closed": "chenu.thread.closed",
    "archived": "chenu.thread.closed",
}


def record_thread_event(
    event_type: str,
    thread_id: str | None = None,
    *,
    role: str | None = None,
    tokens: int | None = None,
    reason: str | None = None,
) -> None:
    """Record a thread lifecycle event: ``created``, ``message`` (with `role`, `tokens`),
    ``closed``/``archived`` (with `reason`) or any other type (counted in chenu.thread.events).

    `thread_id` is accepted for the seed's call sites and kept off metrics (an identifier).
    """
    del thread_id
    event = event_type.lower()
    _add("chenu.thread.events", 1, {"chenu.thread.event": event})
    if event == "created":
        _add("chenu.thread.created", 1, {})
        _add("chenu.thread.active", 1, {})
    elif event in ("closed", "archived"):
        _add("chenu.thread.closed", 1, {"chenu.thread.close_reason": reason or event})
        _add("chenu.thread.active", -1, {})
    elif event == "message":
        role_attrs: dict[str, AttributeValue] = {"chenu.message.role": role or "user"}
        _add("chenu.thread.messages", 1, role_attrs)
        if tokens is not None:
            _record("chenu.thread.message.tokens", tokens, role_attrs)


def record_websocket_connect(route: str) -> None:
    """Count an accepted WebSocket connection on `route` (a template)."""
    attrs: dict[str, AttributeValue] = {"http.route": route}
    _add("chenu.websocket.connections", 1, attrs)
    _add("chenu.websocket.connections.active", 1, attrs)


def record_websocket_disconnect(route: str, duration_seconds: float | None = None) -> None:
    """Count a closed WebSocket connection on `route` and record its lifetime."""
    attrs: dict[str, AttributeValue] = {"http.route": route}
    _add("chenu.websocket.connections.active", -1, attrs)
    if duration_seconds is not None:
        _record("chenu.websocket.connection.duration", duration_seconds, attrs)


def record_websocket_message(route: str, direction: str, size_bytes: int | None = None) -> None:
    """Count one WebSocket message; `direction` is ``received`` or ``sent``."""
    attrs: dict[str, AttributeValue] = {"http.route": route}
    name = (
        "chenu.websocket.messages.sent"
        if direction == "sent"
        else ("chenu.websocket.messages.received")
    )
    _add(name, 1, attrs)
    if size_bytes is not None:
        _record("chenu.websocket.message.size", size_bytes,
                {**attrs, "chenu.websocket.direction": direction})  # fmt: skip


def record_error(error_type: str, *, source: str = "app") -> None:
    """Count one error by type (an exception class name or a status) and layer."""
    _add("chenu.errors", 1, {"error.type": error_type, "chenu.error.source": source})


# --- prometheus_client-style facades -----------------------------------------------------------
class _MetricFacade:
    """Shared part of the facades: label handling that never raises into the caller."""

    _kind: InstrumentKind = InstrumentKind.COUNTER

    def __init__(
        self,
        name: str,
        documentation: str = "",
        labelnames: Iterable[str] = (),
        *,
        unit: str = "",
        _catalogue: str | None = None,
        _label_map: Mapping[str, str | None] | None = None,
        _fixed: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.unit = unit
        self._catalogue = _catalogue
        self._label_map = dict(_label_map or {})
        self._fixed = dict(_fixed or {})
        self._otel_name = name
        if _catalogue is None and self._kind is InstrumentKind.COUNTER and name.endswith("_total"):
            # Prometheus adds _total back on translation; keep the OTel name without it.
            self._otel_name = name[: -len("_total")]
        self._lock = threading.Lock()
        self._provider: MeterProvider | None = None
        self._instrument: Any = None
        self._warned = False

    def _otel_instrument(self) -> Any:
        if self._catalogue is not None:
            return instrument(self._catalogue)
        provider = otel_metrics.get_meter_provider()
        if provider is not self._provider:
            with self._lock:
                meter = _INSTRUMENTS.meter()
                self._instrument = self._create(meter)
                self._provider = provider
        return self._instrument

    def _create(self, meter: Meter) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _attributes(self, values: Sequence[str], kv: Mapping[str, Any]) -> dict[str, Any]:
        given = dict(zip(self.labelnames, (str(v) for v in values), strict=False))
        given.update({k: str(v) for k, v in kv.items()})
        unknown = set(given) - set(self.labelnames)
        if unknown and not self._warned:
            self._warned = True
            _log.warning(
                "metric %s: labels %s are not among its labelnames %s; they are dropped",
                self.name, sorted(unknown), list(self.labelnames),
            )  # fmt: skip
        attrs: dict[str, Any] = dict(self._fixed)
        for key in self.labelnames:
            target = self._label_map.get(key, key)
            if target is not None and key in given:
                attrs[target] = given[key]
        return attrs

    def labels(self, *values: str, **kv: Any) -> _BoundFacade:
        """A child bound to label values, as in prometheus_client."""
        return _BoundFacade(self, self._attributes(values, kv))


class _BoundFacade:
    def __init__(self, parent: _MetricFacade, attributes: dict[str, Any]) -> None:
        self._parent = parent
        self._attributes = attributes

    def inc(self, amount: float = 1.0) -> None:
        _facade_call(self._parent, "inc", amount, self._attributes)

    def dec(self, amount: float = 1.0) -> None:
        _facade_call(self._parent, "dec", amount, self._attributes)

    def set(self, value: float) -> None:
        _facade_call(self._parent, "set", value, self._attributes)

    def observe(self, amount: float) -> None:
        _facade_call(self._parent, "observe", amount, self._attributes)


def _facade_call(facade: _MetricFacade, op: str, value: float, attributes: dict[str, Any]) -> None:
    try:
        inst = facade._otel_instrument()
        if op == "inc":
            inst.add(value, attributes)
        elif op == "dec":
            inst.add(-value, attributes)
        elif op == "set":
            inst.set(value, attributes)
        else:
            inst.record(value, attributes)
    except Exception:  # telemetry never raises into the caller
        _log.debug("metric %s: %s failed", facade.name, op, exc_info=True)


class Counter(_MetricFacade):
    """prometheus_client-style counter backed by an OTel Counter.

    ``Counter("custom_events_total", "My custom events", ["event_type"])`` creates the OTel
    counter ``custom_events`` (Prometheus name ``custom_events_total``). Labels outside
    `labelnames` are dropped with one warning: the label names are the allow-list.
    """

    _kind = InstrumentKind.COUNTER

    def _create(self, meter: Meter) -> Any:
        return meter.create_counter(self._otel_name, unit=self.unit, description=self.documentation)

    def inc(self, amount: float = 1.0) -> None:
        """Increase the unlabelled (or fixed-label) series by `amount`."""
        _facade_call(self, "inc", amount, dict(self._fixed))


class Gauge(_MetricFacade):
    """prometheus_client-style gauge: ``inc``/``dec`` on an OTel UpDownCounter; ``set`` switches
    the gauge to an OTel Gauge (use one style per gauge)."""

    _kind = InstrumentKind.UP_DOWN_COUNTER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gauge: Any = None
        self._gauge_provider: MeterProvider | None = None

    def _create(self, meter: Meter) -> Any:
        return meter.create_up_down_counter(
            self.name, unit=self.unit, description=self.documentation
        )

    def _set_instrument(self) -> Any:
        provider = otel_metrics.get_meter_provider()
        if provider is not self._gauge_provider:
            with self._lock:
                self._gauge = _INSTRUMENTS.meter().create_gauge(
                    self.name, unit=self.unit, description=self.documentation
                )
                self._gauge_provider = provider
        return self._gauge

    def inc(self, amount: float = 1.0) -> None:
        _facade_call(self, "inc", amount, dict(self._fixed))

    def dec(self, amount: float = 1.0) -> None:
        _facade_call(self, "dec", amount, dict(self._fixed))

    def set(self, value: float) -> None:
        try:
            self._set_instrument().set(value, dict(self._fixed))
        except Exception:  # telemetry never raises into the caller
            _log.debug("metric %s: set failed", self.name, exc_info=True)

    def labels(self, *values: str, **kv: Any) -> _BoundFacade:
        return _BoundGauge(self, self._attributes(values, kv))


class _BoundGauge(_BoundFacade):
    def set(self, value: float) -> None:
        parent = self._parent
        assert isinstance(parent, Gauge)
        try:
            parent._set_instrument().set(value, self._attributes)
        except Exception:  # telemetry never raises into the caller
            _log.debug("metric %s: set failed", parent.name, exc_info=True)


class Histogram(_MetricFacade):
    """prometheus_client-style histogram backed by an OTel Histogram; `buckets` become the
    instrument's bucket advice."""

    _kind = InstrumentKind.HISTOGRAM

    def __init__(
        self,
        name: str,
        documentation: str = "",
        labelnames: Iterable[str] = (),
        *,
        buckets: Sequence[float] | None = None,
        unit: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(name, documentation, labelnames, unit=unit, **kwargs)
        self.buckets = tuple(b for b in (buckets or ()) if b != float("inf")) or None

    def _create(self, meter: Meter) -> Any:
        return meter.create_histogram(
            self.name,
            unit=self.unit,
            description=self.documentation,
            explicit_bucket_boundaries_advisory=list(self.buckets) if self.buckets else None,
        )

    def observe(self, amount: float) -> None:
        _facade_call(self, "observe", amount, dict(self._fixed))


# The seed's module-level metrics that call sites use directly, bound to catalogue instruments.
agent_cost_usd_total: Final = Counter(
    "agent_cost_usd_total",
    "Total cost of agent runs in USD",
    ["agent_id", "agent_name"],
    _catalogue="chenu.agent.cost.usd",
    _label_map={"agent_id": None, "agent_name": "gen_ai.agent.name"},
)
agent_executions_total: Final = Counter(
    "agent_executions_total",
    "Agent runs by status",
    ["agent_id", "agent_name", "status"],
    _catalogue="chenu.agent.executions",
    _label_map={"agent_id": None, "agent_name": "gen_ai.agent.name", "status": "chenu.outcome"},
)
errors_total: Final = Counter(
    "errors_total",
    "Errors by type",
    ["error_type", "component"],
    _catalogue="chenu.errors",
    _label_map={"error_type": "error.type", "component": "chenu.error.source"},
)


# --- Set-up and the /metrics pull endpoint -----------------------------------------------------
_PROMETHEUS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def init_metrics(service: str, version: str, environment: str) -> None:
    """Seed entry point: configure chenu-otel for this service with the ``/metrics`` pull reader
    (idempotent, never raises)."""
    try:
        pipeline = configure(
            service_name=service,
            service_version=version,
            environment=environment,
            metrics_endpoint=True,
        )
    except Exception:
        _log.warning("init_metrics(%r) could not configure chenu-otel", service, exc_info=True)
        return
    if pipeline.enabled and pipeline.prometheus_registry is None:
        _log.warning(
            "init_metrics(%r): chenu-otel was configured earlier without the /metrics reader, so "
            "get_metrics() stays empty; call configure(metrics_endpoint=True) first or set "
            "OTEL_METRICS_EXPORTER=otlp,prometheus",
            service,
        )


def _prometheus_registry() -> Any:
    pipeline = current_pipeline()
    return pipeline.prometheus_registry if pipeline is not None else None


def get_metrics() -> bytes:
    """The Prometheus text exposition of this process's metrics (seed-compatible).

    Rendered from the prometheus_client registry that ``chenu_otel.configure()`` attached a
    PrometheusMetricReader to (``chenu_otel._providers.prometheus_registry()``). Without one, an
    empty exposition with a comment saying why.
    """
    registry = _prometheus_registry()
    if registry is None:
        return (
            b"# chenu-otel: no Prometheus reader is configured; call init_metrics() or "
            b"chenu_otel.configure(metrics_endpoint=True) first.\n"
        )
    try:
        from prometheus_client import generate_latest

        return bytes(generate_latest(registry))
    except Exception:
        _log.warning("rendering /metrics failed", exc_info=True)
        return b"# chenu-otel: rendering the metrics failed; see the service log.\n"


def get_content_type() -> str:
    """The Content-Type of :func:`get_metrics` output (Prometheus text format 0.0.4)."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST

        return str(CONTENT_TYPE_LATEST)
    except Exception:
        return _PROMETHEUS_CONTENT_TYPE
