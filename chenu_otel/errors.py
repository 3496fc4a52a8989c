"""How chenu-otel marks a failed operation on its span: one function, one result everywhere.

`mark_error(span, exc)` records the exception as a span event (type, message, stack trace),
sets ``error.type`` to the exception's class name (the semconv attribute; the same value the
``chenu.errors`` metric and ``http.server.request.duration`` carry) and sets the span status to
``ERROR`` with ``"<class name>: <message>"`` as its description. The traced decorators, the
HTTP and WebSocket middleware and the GenAI context managers all use it.

>>> from opentelemetry import trace
>>> mark_error(trace.INVALID_SPAN, ValueError("card declined"))
'ValueError'
"""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode

__all__ = ["error_type", "mark_error"]


def error_type(exc: BaseException) -> str:
    """The ``error.type`` of an exception: its class name."""
    return type(exc).__name__


def mark_error(span: Span, exc: BaseException) -> str:
    """Record `exc` on `span` and mark the span failed; returns the ``error.type`` it set."""
    kind = error_type(exc)
    span.record_exception(exc)
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {exc}"))
    return kind
