"""Metrics: the catalogue, and the earlier module's metric API under its earlier name.

Every instrument chenu-otel records is declared once in `chenu_otel.catalogue` and recorded by
the typed recorders of `chenu_otel.recorders`. This module is the name the earlier monitoring
module's code imports from: the catalogue's public names (``CATALOGUE``, ``spec``, ``views``,
``prometheus_name``, ...) and the compatibility layer of `chenu_otel.compat` (the ``record_*``
helpers, the prometheus_client-style ``Counter``/``Gauge``/``Histogram``, ``init_metrics``,
``get_metrics``, ``get_content_type``).

Example::

    from chenu_otel.metrics import record_http_request, record_agent_execution

    record_http_request("GET", "/agents", 200, 0.045)
    record_agent_execution("agent-001", "NOVA", 1.2, tokens_used=150, cost_usd=0.0045,
                           success=True)
"""

from __future__ import annotations

from chenu_otel.catalogue import (
    CATALOGUE,
    GROUPS,
    IDENTIFIER_KEYS,
    InstrumentKind,
    MetricSpec,
    metrics_markdown,
    prometheus_name,
    spec,
    views,
)
from chenu_otel.compat import (
    Counter,
    Gauge,
    Histogram,
    agent_cost_usd_total,
    agent_executions_total,
    errors_total,
    get_content_type,
    get_metrics,
    init_metrics,
    record_agent_execution,
    record_cache_operation,
    record_db_query,
    record_error,
    record_http_request,
    record_llm_call,
    record_thread_event,
    record_tool_call,
    record_websocket_connect,
    record_websocket_disconnect,
    record_websocket_message,
)

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
