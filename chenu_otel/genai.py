"""Agent telemetry following the GenAI semantic conventions.

Three context managers (usable with ``with`` in sync and async code) and matching decorators:

* :func:`agent_run` — span ``invoke_agent {agent}`` (``gen_ai.agent.name``/``.id``, the thread id
  as ``gen_ai.conversation.id``); on exit records ``chenu.agent.executions`` by outcome, run
  duration, tokens, cost, steps, and charges the thread's token budget;
* :func:`llm_call` — span ``chat {model}`` (CLIENT); :meth:`LLMCall.record_usage` is the one call
  that records token usage (``gen_ai.client.token.usage`` by ``gen_ai.token.type``), cost and
  budget consumption; on exit ``gen_ai.client.operation.duration``;
* :func:`tool_call` — span ``execute_tool {tool}``; tool calls by outcome and duration.

LLM and tool calls inside an agent run add to it (tokens, cost, steps). Identifiers (agent id,
thread id, tool call id) go on spans only; metrics carry agent, model and tool names.
Exceptions are recorded on the span, mark the outcome ``failure`` and propagate unchanged;
telemetry errors never reach the caller.

Example::

    with agent_run("NOVA", agent_id="agent-001", thread_id=thread.id,
                   token_budget=TokenBudget(limit=10_000, used=thread.tokens_used)) as run:
        with llm_call("fake-gpt", provider="chenu-fake") as call:
            reply = llm.complete(prompt)
            call.record_usage(input_tokens=120, output_tokens=30, cost_usd=0.0009)
        with tool_call("search"):
            ...
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, ParamSpec, Self, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from chenu_otel.errors import error_type, mark_error
from chenu_otel.proxies import TRACER_PROVIDER
from chenu_otel.recorders import FAILURE, RECORDERS, SUCCESS

__all__ = [
    "AgentRun",
    "LLMCall",
    "TokenBudget",
    "ToolCall",
    "agent_run",
    "current_agent_run",
    "llm_call",
    "tool_call",
    "traced_agent",
    "traced_tool",
]

_log = logging.getLogger(__name__)
_tracer = TRACER_PROVIDER.get_tracer("chenu_otel.genai")
_current_run: ContextVar[AgentRun | None] = ContextVar("chenu_agent_run", default=None)

P = ParamSpec("P")
R = TypeVar("R")

_genai: Final = RECORDERS.genai
_threads: Final = RECORDERS.threads
_errors: Final = RECORDERS.errors


@dataclass
class TokenBudget:
    """A thread's token budget: `limit` tokens, `used` before this run."""

    limit: int
    used: int = 0

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


class _Operation(ABC):
    """Shared span handling: start on enter, attach as current, end on exit."""

    _span: Span
    _token: object
    _start: float

    def _begin(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> None:
        self._start = time.perf_counter()
        self._span = _tracer.start_span(name, kind=kind, attributes=attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def _begin_in_run(
        self, name: str, kind: SpanKind, attributes: dict[str, Any]
    ) -> AgentRun | None:
        """Start the span as a step of the agent run the caller is inside (returned), if any:
        the run's agent and thread go on the span."""
        run = _current_run.get()
        if run is not None:
            attributes["gen_ai.agent.name"] = run.agent_name
            if run.thread_id:
                attributes["gen_ai.conversation.id"] = run.thread_id
        self._begin(name, kind, attributes)
        return run

    def _end_span(self, error: BaseException | None) -> str | None:
        """End the span, marked failed by `error` if any; returns the error type."""
        failure = mark_error(self._span, error) if error is not None else None
        self._span.end()
        return failure

    def _detach(self) -> None:
        """Make the span that was current before entering current again."""
        try:
            otel_context.detach(cast(Token[otel_context.Context], self._token))
        except Exception:
            _log.debug("context detach failed", exc_info=True)

    @property
    def span(self) -> Span:
        """The operation's span (set more attributes on it if needed)."""
        return self._span

    @abstractmethod
    def __enter__(self) -> Self:
        """Start the operation's span and make it current (never raises)."""

    async def __aenter__(self) -> Self:
        return self.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Record the operation's metrics and end its span; telemetry errors are swallowed,
        the caller's exception propagates unchanged."""
        try:
            self._finish(exc, time.perf_counter() - self._start)
        except Exception:
            _log.debug("%s telemetry failed", type(self).__name__, exc_info=True)
        finally:
            self._detach()

    @abstractmethod
    def _finish(self, error: BaseException | None, duration_s: float) -> None:
        """Record the metrics of the finished operation and end its span."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class _WithOutcome:
    """An operation that succeeds unless it raises or is marked failed."""

    outcome: str = SUCCESS

    def fail(self) -> None:
        """Mark the operation as failed without raising (e.g. the agent gave up)."""
        self.outcome = FAILURE


class AgentRun(_WithOutcome, _Operation):
    """One agent run; created by :func:`agent_run`."""

    def __init__(
        self,
        agent_name: str,
        *,
        agent_id: str | None = None,
        thread_id: str | None = None,
        token_budget: TokenBudget | None = None,
        provider: str | None = None,
    ) -> None:
        self.agent_name = agent_name
        self.agent_id = agent_id
        self.thread_id = thread_id
        self.token_budget = token_budget
        self.provider = provider
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0
        self.steps = 0
        self.outcome = SUCCESS
        self._run_token: Token[AgentRun | None] | None = None

    def __enter__(self) -> AgentRun:
        try:
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": self.agent_name,
            }
            if self.agent_id:
                attrs["gen_ai.agent.id"] = self.agent_id
            if self.thread_id:
                attrs["gen_ai.conversation.id"] = self.thread_id
            if self.provider:
                attrs["gen_ai.provider.name"] = self.provider
            self._begin(f"invoke_agent {self.agent_name}", SpanKind.INTERNAL, attrs)
            self._run_token = _current_run.set(self)
            _genai.run_started(self.agent_name)
        except Exception:
            _log.debug("agent run telemetry failed", exc_info=True)
        return self

    def add_usage(self, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_usd += cost_usd

    def _detach(self) -> None:
        if self._run_token is not None:
            _current_run.reset(self._run_token)
        super()._detach()

    def _finish(self, exc: BaseException | None, duration: float) -> None:
        if exc is not None:
            self.outcome = FAILURE
        span = self._span
        span.set_attributes(
            {
                "gen_ai.usage.input_tokens": self.input_tokens,
                "gen_ai.usage.output_tokens": self.output_tokens,
                "chenu.cost.usd": self.cost_usd,
                "chenu.agent.steps": self.steps,
                "chenu.outcome": self.outcome,
            }
        )
        _genai.run_finished(
            self.agent_name,
            outcome=self.outcome,
            duration_s=duration,
            tokens={"input": self.input_tokens, "output": self.output_tokens},
            cost_usd=self.cost_usd,
            steps=self.steps,
        )
        _genai.run_ended(self.agent_name)
        budget = self.token_budget
        if budget is not None:
            charged = self.input_tokens + self.output_tokens
            budget.used += charged
            span.set_attributes(
                {
                    "chenu.token_budget.limit": budget.limit,
                    "chenu.token_budget.used": budget.used,
                    "chenu.token_budget.remaining": budget.remaining,
                }
            )
            _threads.budget_charged(
                self.agent_name, charged=charged, limit=budget.limit, used=budget.used
            )
        if exc is not None:
            _errors.error(error_type(exc), "agent")
        self._end_span(exc)


class LLMCall(_Operation):
    """One LLM call; created by :func:`llm_call`."""

    def __init__(self, model: str, *, provider: str, operation: str = "chat") -> None:
        self.model = model
        self.provider = provider
        self.operation = operation
        self.response_model: str | None = None
        self.run: AgentRun | None = None

    def __enter__(self) -> LLMCall:
        try:
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": self.operation,
                "gen_ai.provider.name": self.provider,
                "gen_ai.request.model": self.model,
            }
            self.run = self._begin_in_run(f"{self.operation} {self.model}", SpanKind.CLIENT, attrs)
        except Exception:
            _log.debug("llm call telemetry failed", exc_info=True)
        return self

    def _metric_attrs(self) -> dict[str, AttributeValue]:
        return _genai.llm_attributes(
            self.model, self.provider, self.operation, self.response_model
        )

    def record_usage(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float = 0.0,
        response_model: str | None = None,
        finish_reason: str | None = None,
        response_id: str | None = None,
    ) -> None:
        """Record token usage (semconv histogram by token type), cost, and the agent run's share
        of tokens and cost (charged to the thread budget when the run ends), in one call."""
        try:
            if response_model:
                self.response_model = response_model
            span = self._span
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
            span.set_attribute("chenu.cost.usd", cost_usd)
            if response_model:
                span.set_attribute("gen_ai.response.model", response_model)
            if finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
            if response_id:
                span.set_attribute("gen_ai.response.id", response_id)
            _genai.llm_usage(
                self._metric_attrs(),
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost_usd,
                agent=self.run.agent_name if self.run is not None else None,
            )
            if self.run is not None:
                self.run.add_usage(input_tokens, output_tokens, cost_usd)
        except Exception:
            _log.debug("llm usage telemetry failed", exc_info=True)

    def _finish(self, exc: BaseException | None, duration: float) -> None:
        failure = self._end_span(exc)
        if failure:
            _errors.error(failure, "llm")
        _genai.llm_finished(self._metric_attrs(), duration, failure)
        if self.run is not None:
            self.run.steps += 1


class ToolCall(_WithOutcome, _Operation):
    """One tool call; created by :func:`tool_call`."""

    def __init__(self, tool_name: str, *, call_id: str | None = None, tool_type: str = "function"):
        self.tool_name = tool_name
        self.call_id = call_id
        self.tool_type = tool_type
        self.run: AgentRun | None = None
        self.outcome = SUCCESS

    def __enter__(self) -> ToolCall:
        try:
            attrs: dict[str, Any] = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": self.tool_name,
                "gen_ai.tool.type": self.tool_type,
            }
            if self.call_id:
                attrs["gen_ai.tool.call.id"] = self.call_id
            name = f"execute_tool {self.tool_name}"
            self.run = self._begin_in_run(name, SpanKind.INTERNAL, attrs)
        except Exception:
            _log.debug("tool call telemetry failed", exc_info=True)
        return self

    def _finish(self, exc: BaseException | None, duration: float) -> None:
        if exc is not None:
            self.outcome = FAILURE
            _errors.error(error_type(exc), "tool")
        if self.run is not None:
            self.run.steps += 1
        _genai.tool_call(
            self.tool_name,
            outcome=self.outcome,
            duration_s=duration,
            agent=self.run.agent_name if self.run is not None else None,
        )
        self._end_span(exc)


def agent_run(
    agent_name: str,
    *,
    agent_id: str | None = None,
    thread_id: str | None = None,
    token_budget: TokenBudget | None = None,
    provider: str | None = None,
) -> AgentRun:
    """Context manager for one agent run (span ``invoke_agent {agent_name}``)."""
    return AgentRun(
        agent_name,
        agent_id=agent_id,
        thread_id=thread_id,
        token_budget=token_budget,
        provider=provider,
    )


def llm_call(model: str, *, provider: str, operation: str = "chat") -> LLMCall:
    """Context manager for one LLM call (span ``{operation} {model}``)."""
    return LLMCall(model, provider=provider, operation=operation)


def tool_call(tool_name: str, *, call_id: str | None = None) -> ToolCall:
    """Context manager for one tool call (span ``execute_tool {tool_name}``)."""
    return ToolCall(tool_name, call_id=call_id)


def current_agent_run() -> AgentRun | None:
    """The agent run the caller is inside, if any."""
    return _current_run.get()


def _decorate(factory: Callable[[], Any]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with factory():
                    return await func(*args, **kwargs)

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with factory():
                return func(*args, **kwargs)

        return wrapper

    return decorator


def traced_agent(
    agent_name: str, *, agent_id: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: run the (sync or async) function inside :func:`agent_run`."""
    return _decorate(lambda: agent_run(agent_name, agent_id=agent_id))


def traced_tool(tool_name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: run the (sync or async) function inside :func:`tool_call`."""
    return _decorate(lambda: tool_call(tool_name))
