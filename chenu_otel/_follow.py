"""Tracers that follow the global tracer provider.

``trace.get_tracer()`` before ``set_tracer_provider()`` returns a ProxyTracer that binds once, to
the first provider; contrib instrumentations keep whatever tracer they got at instrument time.
A :class:`FollowingTracerProvider` hands out tracers that look the global provider up on each
span (one identity check), so instrumentation done before ``chenu_otel.configure()`` — or under a
test that swaps providers — always reaches the provider in place when the span starts.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.util.types import Attributes

__all__ = ["FollowingTracerProvider", "following_tracer"]


class _FollowingTracer(trace.Tracer):
    def __init__(
        self,
        name: str,
        version: str | None,
        schema_url: str | None,
        attributes: Attributes,
    ) -> None:
        self._name = name
        self._version = version
        self._schema_url = schema_url
        self._attributes = attributes
        self._provider: trace.TracerProvider | None = None
        self._tracer: trace.Tracer | None = None

    def current(self) -> trace.Tracer:
        """The tracer of the provider that is global right now."""
        provider = trace.get_tracer_provider()
        if provider is not self._provider or self._tracer is None:
            self._tracer = provider.get_tracer(
                self._name, self._version, self._schema_url, self._attributes
            )
            self._provider = provider
        return self._tracer

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self.current().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self.current().start_as_current_span(*args, **kwargs)


class FollowingTracerProvider(trace.TracerProvider):
    """A tracer provider whose tracers always use the current global provider."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return _FollowingTracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )


def following_tracer(name: str, version: str | None = None) -> _FollowingTracer:
    """A tracer named `name` that starts spans on whichever provider is global at that time."""
    return _FollowingTracer(name, version, None, None)
