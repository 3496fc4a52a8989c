"""The earlier monitoring module's API, as a thin layer over chenu-otel.

Code written against the earlier module keeps working with the import prefix changed
(``chenu_otel.metrics``, ``chenu_otel.tracing`` re-export these names). Nothing here records
on its own: each ``record_*`` helper and each prometheus_client-style metric calls the typed
recorders of `chenu_otel.recorders`, the same methods the middleware and the GenAI context
managers use, and the set-up functions call `chenu_otel.configure()`. None of them raises into
the caller. (The earlier ``log_*`` helpers stay in `chenu_otel.logging`, as before.)

* ``record_http_request``, ``record_db_query``, ``record_cache_operation``,
  ``record_agent_execution``, ``record_llm_call``, ``record_tool_call``, ``record_thread_event``,
  ``record_websocket_connect|disconnect|message``, ``record_error``;
* ``Counter``, ``Gauge``, ``Histogram`` (``Counter("x_total", "doc", ["k"]).labels(k="a").inc()``),
  and the earlier module-level ``agent_cost_usd_total``, ``agent_executions_total``,
  ``errors_total`` bound to catalogue metrics;
* ``init_metrics(service, version, environment)`` with ``get_metrics()`` /
  ``get_content_type()`` for a ``/metrics`` route; ``setup_tracing()``, ``instrument_fastapi``.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, ParamSpec

from opentelemetry import trace

from chenu_otel.catalogue import METER_NAME
from chenu_otel.instrumentation import instrument_fastapi
from chenu_otel.pipeline import configure, current_pipeline
from chenu_otel.proxies import METER_PROVIDER
from chenu_otel.recorders import FAILURE, RECORDERS, SUCCESS, normalize_method

__all__ = [
    "Counter",
    "Gauge",
    "Histogram",
    "agent_cost_usd_total",
    "agent_executions_total",
    "errors_total",
    "get_content_type",
    "get_metrics",
    "init_metrics",
    "instrument_fastapi",
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
    "setup_tracing",
]

_log = logging.getLogger("chenu_otel.metrics")
P = ParamSpec("P")


def _never_raises(record: Callable[P, None]) -> Callable[P, None]:
    """Telemetry never raises into the caller: a failure is logged at debug level."""

    @functools.wraps(record)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception:
            _log.debug("%s failed", record.__name__, exc_info=True)

    return guarded


# --- record_* helpers -------------------------------------------------------------------------
@_never_raises
def record_http_request(
    method: str, endpoint: str, status_code: int, duration_seconds: float
) -> None:
    """Record one HTTP server request; `endpoint` must be a route template.

    MonitoringMiddleware records requests itself; call this only for requests it does not see.
    """
    status = int(status_code)
    RECORDERS.http.request_finished(
        duration_seconds,
        method=normalize_method(method),
        status_code=status,
        route=endpoint,
        error_type=str(status) if status >= 500 else None,
    )


@_never_raises
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
    failure = (error_type or "_OTHER") if (not success or error_type) else None
    RECORDERS.db.operation(
        duration_seconds,
        system=system, operation=operation.upper(), collection=table, error_type=failure,
    )  # fmt: skip


@_never_raises
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
    result = "error" if not success else "ok" if hit is None else "hit" if hit else "miss"
    RECORDERS.cache.operation(
        operation, result, cache=cache, system=system, duration_s=duration_seconds
    )


@_never_raises
def record_agent_execution(
    agent_id: str,
    agent_name: str,
    duration_seconds: float,
    tokens_used: int,
    cost_usd: float,
    success: bool,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
) -> None:
    """Record one finished agent run. `agent_id` stays off metrics (an identifier: it goes on
    spans via `chenu_otel.genai`). Pass `input_tokens`/`output_tokens` to count tokens by type
    as agent runs do; without them `tokens_used` is counted as ``gen_ai.token.type=total``."""
    del agent_id
    split = input_tokens is not None or output_tokens is not None
    RECORDERS.genai.run_finished(
        agent_name,
        outcome=SUCCESS if success else FAILURE,
        duration_s=duration_seconds,
        tokens={"input": input_tokens or 0, "output": output_tokens or 0}
        if split
        else {"total": tokens_used},
        cost_usd=cost_usd,
    )
    if not success:
        RECORDERS.errors.error("AgentExecutionFailed", "agent")


@_never_raises
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
    genai = RECORDERS.genai
    attributes = genai.llm_attributes(model, provider, operation, response_model)
    if input_tokens or output_tokens or cost_usd:
        genai.llm_usage(
            attributes,
            input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd,
            agent=agent_name,
        )  # fmt: skip
    if duration_seconds is not None:
        genai.llm_finished(attributes, duration_seconds, error_type)


@_never_raises
def record_tool_call(
    tool_name: str, duration_seconds: float, *, success: bool = True, agent_name: str | None = None
) -> None:
    """Record one tool call by tool and outcome."""
    RECORDERS.genai.tool_call(
        tool_name,
        outcome=SUCCESS if success else FAILURE,
        duration_s=duration_seconds,
        agent=agent_name,
    )


@_never_raises
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

    `thread_id` is accepted for the earlier call sites and kept off metrics (an identifier).
    """
    del thread_id
    threads = RECORDERS.threads
    event = event_type.lower()
    threads.event(event)
    if event == "created":
        threads.opened()
    elif event in ("closed", "archived"):
        threads.ended(reason or event)
    elif event == "message":
        threads.message(role or "user", tokens)


@_never_raises
def record_websocket_connect(route: str) -> None:
    """Count an accepted WebSocket connection on `route` (a template)."""
    RECORDERS.websocket.connected({"http.route": route})


@_never_raises
def record_websocket_disconnect(route: str, duration_seconds: float | None = None) -> None:
    """Count a closed WebSocket connection on `route` and record its lifetime."""
    RECORDERS.websocket.disconnected({"http.route": route}, duration_seconds)


@_never_raises
def record_websocket_message(route: str, direction: str, size_bytes: int | None = None) -> None:
    """Count one WebSocket message; `direction` is ``received`` or ``sent``."""
    RECORDERS.websocket.message({"http.route": route}, direction, size_bytes)


@_never_raises
def record_error(error_type: str, *, source: str = "app") -> None:
    """Count one error by type (an exception class name or a status) and layer."""
    RECORDERS.errors.error(error_type, source)


# --- prometheus_client-style metrics ----------------------------------------------------------
_meter: Final = METER_PROVIDER.get_meter(METER_NAME)


class _Metric(ABC):
    """What the prometheus_client-style classes share: labels that never raise."""

    def __init__(
        self, name: str, documentation: str = "", labelnames: Iterable[str] = (), *, unit: str = ""
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.unit = unit
        self._warned = False

    def _labels(self, values: Sequence[Any], named: Mapping[str, Any]) -> dict[str, str]:
        given = dict(zip(self.labelnames, (str(v) for v in values), strict=False))
        given.update({k: str(v) for k, v in named.items()})
        unknown = set(given) - set(self.labelnames)
        if unknown and not self._warned:
            self._warned = True
            _log.warning(
                "metric %s: labels %s are not among its labelnames %s; they are dropped",
                self.name, sorted(unknown), list(self.labelnames),
            )  # fmt: skip
        return {k: v for k, v in given.items() if k in self.labelnames}

    def labels(self, *values: Any, **named: Any) -> _Child:
        """A child bound to label values, as in prometheus_client."""
        return _Child(self, self._labels(values, named))

    def _call(self, operation: str, value: float, labels: dict[str, str]) -> None:
        try:
            self._apply(operation, value, labels)
        except Exception:  # telemetry never raises into the caller
            _log.debug("metric %s: %s failed", self.name, operation, exc_info=True)

    @abstractmethod
    def _apply(self, operation: str, value: float, labels: dict[str, str]) -> None:
        """Record `value` for `operation` (inc, dec, set, observe) with these labels."""


class _Child:
    def __init__(self, parent: _Metric, labels: dict[str, str]) -> None:
        self._parent = parent
        self._labels = labels

    def inc(self, amount: float = 1.0) -> None:
        self._parent._call("inc", amount, self._labels)

    def dec(self, amount: float = 1.0) -> None:
        self._parent._call("dec", amount, self._labels)

    def set(self, value: float) -> None:
        self._parent._call("set", value, self._labels)

    def observe(self, amount: float) -> None:
        self._parent._call("observe", amount, self._labels)


class Counter(_Metric):
    """prometheus_client-style counter backed by an OTel Counter.

    ``Counter("custom_events_total", "My custom events", ["event_type"])`` creates the OTel
    counter ``custom_events`` (Prometheus name ``custom_events_total``). Labels outside
    `labelnames` are dropped with one warning: the label names are the allow-list.
    """

    def __init__(
        self, name: str, documentation: str = "", labelnames: Iterable[str] = (), *, unit: str = ""
    ) -> None:
        super().__init__(name, documentation, labelnames, unit=unit)
        # Prometheus adds _total back on translation; the OTel name goes without it.
        otel_name = name.removesuffix("_total")
        self._counter = _meter.create_counter(otel_name, unit=unit, description=documentation)

    def _apply(self, operation: str, value: float, labels: dict[str, str]) -> None:
        if operation != "inc":
            raise ValueError(f"a counter cannot {operation}")
        self._counter.add(value, labels)

    def inc(self, amount: float = 1.0) -> None:
        """Increase the unlabelled series by `amount`."""
        self._call("inc", amount, {})


class Gauge(_Metric):
    """prometheus_client-style gauge: ``inc``/``dec`` on an OTel UpDownCounter; ``set`` on an
    OTel Gauge (use one style per gauge)."""

    _up_down: Any = None
    _gauge: Any = None

    def _apply(self, operation: str, value: float, labels: dict[str, str]) -> None:
        if operation == "set":
            if self._gauge is None:
                self._gauge = _meter.create_gauge(
                    self.name, unit=self.unit, description=self.documentation
                )
            self._gauge.set(value, labels)
            return
        if self._up_down is None:
            self._up_down = _meter.create_up_down_counter(
                self.name, unit=self.unit, description=self.documentation
            )
        self._up_down.add(value if operation == "inc" else -value, labels)

    def inc(self, amount: float = 1.0) -> None:
        self._call("inc", amount, {})

    def dec(self, amount: float = 1.0) -> None:
        self._call("dec", amount, {})

    def set(self, value: float) -> None:
        self._call("set", value, {})


class Histogram(_Metric):
    """prometheus_client-style histogram backed by an OTel Histogram; `buckets` become the
    instrument's bucket advice."""

    def __init__(
        self,
        name: str,
        documentation: str = "",
        labelnames: Iterable[str] = (),
        *,
        buckets: Sequence[float] | None = None,
        unit: str = "",
    ) -> None:
        super().__init__(name, documentation, labelnames, unit=unit)
        self.buckets = tuple(b for b in (buckets or ()) if b != float("inf")) or None
        self._histogram = _meter.create_histogram(
            name, unit=unit, description=documentation,
            explicit_bucket_boundaries_advisory=self.buckets,
        )  # fmt: skip

    def _apply(self, operation: str, value: float, labels: dict[str, str]) -> None:
        if operation != "observe":
            raise ValueError(f"a histogram cannot {operation}")
        self._histogram.record(value, labels)

    def observe(self, amount: float) -> None:
        self._call("observe", amount, {})


class _CatalogueCounter(_Metric):
    """One of the earlier module-level counters, recorded by a catalogue recorder."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str],
        record: Callable[[float, Mapping[str, str]], None],
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self._record = record

    def _apply(self, operation: str, value: float, labels: dict[str, str]) -> None:
        if operation != "inc":
            raise ValueError(f"a counter cannot {operation}")
        self._record(value, labels)


# Identifiers (agent_id) are accepted as labels and kept off the metric.
agent_cost_usd_total: Final = _CatalogueCounter(
    "agent_cost_usd_total", "Total cost of agent runs in USD", ["agent_id", "agent_name"],
    lambda cost, labels: RECORDERS.genai.charge_agent(labels.get("agent_name", ""), cost),
)  # fmt: skip
agent_executions_total: Final = _CatalogueCounter(
    "agent_executions_total", "Agent runs by status", ["agent_id", "agent_name", "status"],
    lambda runs, labels: RECORDERS.genai.count_runs(
        labels.get("agent_name", ""), labels.get("status", ""), runs
    ),
)  # fmt: skip
errors_total: Final = _CatalogueCounter(
    "errors_total", "Errors by type", ["error_type", "component"],
    lambda errors, labels: RECORDERS.errors.error(
        labels.get("error_type", ""), labels.get("component", ""), errors
    ),
)  # fmt: skip


# --- set-up and the /metrics pull endpoint ----------------------------------------------------
_PROMETHEUS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def init_metrics(service: str, version: str, environment: str) -> None:
    """Configure chenu-otel for this service with the ``/metrics`` pull reader (never raises;
    a pipeline configured earlier with other arguments is replaced, with a warning)."""
    try:
        configure(
            service_name=service,
            service_version=version,
            environment=environment,
            metrics_endpoint=True,
        )
    except Exception:
        _log.warning("init_metrics(%r) could not configure chenu-otel", service, exc_info=True)


def get_metrics() -> bytes:
    """The Prometheus text exposition of this process's metrics, from the pull reader that
    ``init_metrics()`` (or ``configure(metrics_endpoint=True)``) attached. Without one, an
    empty exposition with a comment saying why."""
    pipeline = current_pipeline()
    registry = pipeline.prometheus_registry if pipeline is not None else None
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
    except ImportError:
        return _PROMETHEUS_CONTENT_TYPE


def setup_tracing(**configure_kwargs: Any) -> trace.TracerProvider:
    """Make sure chenu-otel is configured; without arguments it keeps a pipeline configured
    earlier (e.g. by ``init_metrics``). Returns the global TracerProvider."""
    if configure_kwargs or current_pipeline() is None:
        configure(**configure_kwargs)
    return trace.get_tracer_provider()
