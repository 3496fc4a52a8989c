"""Tracing helpers: a decorator and a context manager for spans of your own code.

>>> from chenu_otel.tracing import traced, add_span_attributes
>>> @traced("process_thread")
... async def process_thread(thread_id: str) -> None:
...     add_span_attributes(thread_id=thread_id)

Spans go to the pipeline `chenu_otel.configure()` installed. An exception leaving a traced
function is recorded on the span and marks it failed (`mark_error`), and is re-raised
unchanged. ``setup_tracing`` and ``instrument_fastapi`` are the earlier module's set-up names
(`chenu_otel.compat`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from chenu_otel.compat import instrument_fastapi, setup_tracing
from chenu_otel.errors import mark_error
from chenu_otel.proxies import TRACER_PROVIDER

__all__ = [
    "add_span_attributes",
    "create_span",
    "get_tracer",
    "instrument_fastapi",
    "mark_error",
    "setup_tracing",
    "traced",
]

P = ParamSpec("P")
R = TypeVar("R")

TRACER_NAME = "chenu_otel"


def get_tracer(name: str = TRACER_NAME) -> trace.Tracer:
    """The tracer called `name`; its spans go to the pipeline `chenu_otel.configure()`
    installed (or nowhere before that)."""
    return TRACER_PROVIDER.get_tracer(name)


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
            mark_error(span, exc)
            raise


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
