"""Tracing helpers: a decorator and a context manager over the global OTel tracer.

>>> from chenu_otel.tracing import traced, add_span_attributes
>>> @traced("process_thread")
... async def process_thread(thread_id: str) -> None:
...     add_span_attributes(thread_id=thread_id)

Spans go wherever the global TracerProvider sends them (`chenu_otel.configure()` sets it up).
An exception leaving a traced function is recorded on the span, the span's status is set to
error, and the exception is re-raised unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from chenu_otel.pipeline import configure, current_pipeline

__all__ = [
    "add_span_attributes",
    "create_span",
    "get_tracer",
    "instrument_fastapi",
    "setup_tracing",
    "traced",
]

P = ParamSpec("P")
R = TypeVar("R")

TRACER_NAME = "chenu_otel"


def get_tracer(name: str = TRACER_NAME) -> trace.Tracer:
    """The tracer for `name` from the current global TracerProvider."""
    return trace.get_tracer(name)


def setup_tracing(**configure_kwargs: Any) -> trace.TracerProvider:
    """Seed-compatible entry point: make sure the OTel pipeline is configured. Without
    arguments it keeps a pipeline configured earlier (e.g. by ``init_metrics``)."""
    if configure_kwargs or current_pipeline() is None:
        configure(**configure_kwargs)
    return trace.get_tracer_provider()


def instrument_fastapi(app: Any) -> None:
    """Seed-compatible: instrument a FastAPI app (see `chenu_otel.instrument_app`)."""
    from chenu_otel.instrumentation import instrument_fastapi as _instrument

    _instrument(app)


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
    """Keep values OTel accepts; anything else is recorded as its str()."""
    cleaned: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        if isinstance(value, str | bool | int | float):
            cleaned[key] = value
        elif isinstance(value, list | tuple) and all(
            isinstance(v, str | bool | int | float) for v in value
        ):
            cleaned[key] = list(value)
        else:
            cleaned[key] = str(value)
    return cleaned


def add_span_attributes(**attributes: Any) -> None:
    """Set attributes on the current span (no-op outside a recording span)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_clean(attributes))


@contextmanager
def create_span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """Start a span as the current span for the block; errors are recorded and re-raised."""
    with get_tracer().start_as_current_span(
        name,
        kind=kind,
        attributes=_clean(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            _record_error(span, exc)
            raise


def _record_error(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute("error.type", type(exc).__qualname__)


def traced(
    name: str | Callable[..., Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """Decorate a sync or async function so each call runs in its own span.

    The span is named `name` (default: the function's qualified name). Usable bare
    (``@traced``) or called (``@traced("name", {"k": "v"})``).
    """
    if callable(name):
        return traced()(name)

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        span_name = name or func.__qualname__

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with create_span(span_name, attributes):
                    return await func(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with create_span(span_name, attributes):
                return func(*args, **kwargs)

        return wrapper

    return decorator
