"""Structured logging with structlog, where every log line is also an OpenTelemetry LogRecord.

One processor chain serves structlog loggers and the standard library's ``logging`` (uvicorn,
SQLAlchemy, any library): bound context is merged, ``trace_id``/``span_id`` of the current span
are added, secrets are scrubbed, the event is emitted **once** as an OTel LogRecord (body = the
event, attributes = the key-values, severity mapped, trace context set) and written **once** as a
JSON line on stdout.

>>> from chenu_otel.logging import setup_logging, get_logger, bind_context
>>> setup_logging(level="INFO", format="json")  # doctest: +SKIP
>>> bind_context(request_id="req-1", user_id="u-42")  # doctest: +SKIP
>>> get_logger(__name__).info("thread_created", thread_id="t-1")  # doctest: +SKIP

The OTel side needs a LoggerProvider: `chenu_otel.configure()` installs one. Until then, records
go to the API's proxy and only the JSON line is written.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import IO, Any, Literal

import orjson
import structlog
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import get_current

from chenu_otel.proxies import LOGGER_PROVIDER
from chenu_otel.scrubbing import scrub_event_dict

__all__ = [
    "NOT_EXPORTED_KEY",
    "NOT_WRITTEN_KEY",
    "bind_context",
    "clear_context",
    "get_logger",
    "log_agent_execution",
    "log_cache_operation",
    "log_database_query",
    "log_request",
    "log_thread_event",
    "setup_logging",
]

LogFormat = Literal["json", "console"]

_SEVERITY: dict[str, tuple[SeverityNumber, str]] = {
    "debug": (SeverityNumber.DEBUG, "DEBUG"),
    "info": (SeverityNumber.INFO, "INFO"),
    "warning": (SeverityNumber.WARN, "WARN"),
    "warn": (SeverityNumber.WARN, "WARN"),
    "error": (SeverityNumber.ERROR, "ERROR"),
    "exception": (SeverityNumber.ERROR, "ERROR"),
    "critical": (SeverityNumber.FATAL, "FATAL"),
    "fatal": (SeverityNumber.FATAL, "FATAL"),
}
# Keys of the event dict that are not attributes of the LogRecord: they are its body, severity,
# time and trace context, or structlog's own bookkeeping.
_NOT_ATTRIBUTES = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "trace_id",
        "span_id",
        "logger",
        "_record",
        "_from_structlog",
        "exc_info",
        "exception",
        "stack_info",
    }
)
# Loggers whose records must not be fed back into the OTel pipeline: an exporter that logs its
# own failure would otherwise queue another record for the failing exporter.
_NOT_EXPORTED_PREFIXES = ("opentelemetry", "grpc", "urllib3", "chenu_otel.settings")

_HANDLER_NAME = "chenu-otel"

#: Event dict keys (private: never rendered nor exported) that keep one event out of one
#: output: true under `NOT_EXPORTED_KEY`, no OTel LogRecord; under `NOT_WRITTEN_KEY`, no line.
NOT_EXPORTED_KEY = "_not_exported"
NOT_WRITTEN_KEY = "_not_written"


def add_trace_context(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add ``trace_id`` and ``span_id`` (OTel hex) inside a valid span."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


class _SecondText:
    """The ``YYYY-MM-DDTHH:MM:SS`` text of the current second: strftime once per second, not
    once per line."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def of(self, second: int) -> str:
        if second != self.second:
            self.text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second = second
        return self.text


_second_text = _SecondText()


def _add_timestamp(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """ISO-8601 UTC ``timestamp`` with milliseconds, and the exact time for the LogRecord."""
    now = time.time_ns()
    event_dict["_time_ns"] = now
    event_dict["timestamp"] = (
        f"{_second_text.of(now // 1_000_000_000)}.{(now // 1_000_000) % 1000:03d}Z"
    )
    return event_dict


class OTelLogRecordEmitter:
    """structlog processor: emit the event as an OpenTelemetry LogRecord, then pass it on."""

    def __call__(
        self, logger: object, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event_dict.get(NOT_EXPORTED_KEY):
            return event_dict
        record: logging.LogRecord | None = event_dict.get("_record")
        name = str(event_dict.get("logger") or (record.name if record else "") or "chenu_otel")
        if name.startswith(_NOT_EXPORTED_PREFIXES):
            return event_dict
        level = str(event_dict.get("level") or method_name).lower()
        severity_number, severity_text = _SEVERITY.get(level, (SeverityNumber.INFO, "INFO"))
        try:
            otel_logger = LOGGER_PROVIDER.get_logger(name)
            if not otel_logger.enabled(severity_number=severity_number):
                return event_dict
            otel_logger.emit(
                timestamp=event_dict.get("_time_ns"),
                context=get_current(),
                severity_number=severity_number,
                severity_text=severity_text,
                body=str(event_dict.get("event", "")),
                attributes=_attributes(event_dict, record),
                exception=_exception(event_dict),
            )
        except Exception:  # telemetry never raises into the application
            pass
        return event_dict


def _attributes(event_dict: Mapping[str, Any], record: logging.LogRecord | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key in _NOT_ATTRIBUTES or key.startswith("_"):
            continue
        attributes[key] = _attribute_value(value)
    if record is not None:
        attributes["code.function.name"] = record.funcName
        attributes["code.file.path"] = record.pathname
        attributes["code.line.number"] = record.lineno
    return attributes


def _attribute_value(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | bool | int | float) for v in value
    ):
        return list(value)
    return str(value)


def _exception(event_dict: Mapping[str, Any]) -> BaseException | None:
    exc_info = event_dict.get("exc_info")
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1]  # type: ignore[no-any-return]
    if exc_info is True:
        return sys.exc_info()[1]
    return None


_LEADING_KEYS = ("event", "timestamp", "level", "logger")


def _drop_private(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """Last step before rendering: drop internal keys, put the fixed keys first; an event
    marked `NOT_WRITTEN_KEY` is not written at all."""
    if event_dict.get(NOT_WRITTEN_KEY):
        raise structlog.DropEvent
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if event_dict.get(key)}
    for key, value in event_dict.items():
        if key not in _LEADING_KEYS and key[0] != "_":
            ordered[key] = value
    return ordered


def _render_json(logger: object, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
    """Final processor for ``format="json"``: one compact JSON object per line."""
    return orjson.dumps(_drop_private(logger, method_name, event_dict), default=str).decode()


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time of the write (it may be swapped)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class _NamedPrintLogger(structlog.PrintLogger):
    """structlog's PrintLogger with the name `get_logger(name)` gave it."""

    def __init__(self, file: Any, name: str) -> None:
        super().__init__(file)
        self.name = name


def _shared_processors() -> list[structlog.typing.Processor]:
    """The chain every record passes through, from structlog or from stdlib logging."""
    return [
        structlog.stdlib.add_logger_name,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _add_timestamp,
        add_trace_context,
        scrub_event_dict,
        OTelLogRecordEmitter(),
    ]


def _renderers(fmt: LogFormat) -> list[structlog.typing.Processor]:
    if fmt == "console":
        return [_drop_private, structlog.dev.ConsoleRenderer(colors=False)]
    return [_render_json]


def setup_logging(
    level: str | int = "INFO", format: LogFormat = "json", *, stream: IO[str] | None = None
) -> None:
    """Route structlog and stdlib logging through one chain: JSON (or console) lines on
    `stream` (stdout by default) and OTel LogRecords. Calling it again replaces the settings;
    it never adds a second handler, so no line is written twice."""
    if format not in ("json", "console"):
        raise ValueError(f"format must be 'json' or 'console', not {format!r}")
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        raise ValueError(
            f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    out: Any = stream or _CurrentStdout()
    shared = _shared_processors()

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            *_renderers(format),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=lambda *args: _NamedPrintLogger(out, str(args[0]) if args else ""),
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                *_renderers(format),
            ],
        )
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    global _configured, _generation
    _configured = True
    _generation += 1


_configured = False


def ensure_logging() -> None:
    """Set up logging with the defaults unless `setup_logging` already ran."""
    if not _configured:
        setup_logging()


_generation = 0  # bumped by setup_logging(): loggers re-resolve their configuration


class _Logger:
    """What `get_logger` returns: resolves structlog's configuration lazily, once per
    `setup_logging()` call, so module-level loggers follow a later set-up without paying
    structlog's per-call lazy binding."""

    __slots__ = ("_bound", "_generation", "_name", "_values")

    def __init__(self, name: str | None, values: dict[str, Any]) -> None:
        self._name = name
        self._values = values
        self._bound: Any = None
        self._generation = -1

    def _resolve(self) -> Any:
        if self._generation != _generation:
            args = [self._name] if self._name else []
            self._bound = structlog.get_logger(*args).bind(**self._values)
            self._generation = _generation
        return self._bound

    def __getattr__(self, method: str) -> Any:
        return getattr(self._resolve(), method)

    def bind(self, **values: Any) -> _Logger:
        return _Logger(self._name, {**self._values, **values})

    def new(self, **values: Any) -> _Logger:
        return _Logger(self._name, dict(values))

    def unbind(self, *keys: str) -> _Logger:
        return _Logger(self._name, {k: v for k, v in self._values.items() if k not in keys})


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """A structlog logger; ``name`` becomes the ``logger`` key and the OTel scope name.

    Safe at module level: it follows a `setup_logging()` that runs later.
    """
    return _Logger(name, initial_values)


def bind_context(**values: Any) -> None:
    """Add key-values to every following log record of this task/thread (contextvars)."""
    structlog.contextvars.bind_contextvars(**values)


def clear_context() -> None:
    """Forget everything `bind_context` added in this task/thread."""
    structlog.contextvars.clear_contextvars()


# --- seed helpers: one structured event per kind of operation ---------------------------------

_helper_logger = get_logger("chenu_otel")


def log_request(
    method: str,
    path: str,
    status_code: int,
    duration_ms: float,
    **extra: Any,
) -> None:
    """Log one HTTP request (warning for 4xx, error for 5xx)."""
    level = "error" if status_code >= 500 else "warning" if status_code >= 400 else "info"
    getattr(_helper_logger, level)(
        "http_request",
        method=method,
        path=path,
        status_code=status_code,
        duration_ms=round(duration_ms, 3),
        **extra,
    )


def log_database_query(
    query_type: str, table: str, duration_ms: float, rows: int | None = None, **extra: Any
) -> None:
    """Log one database query by kind (select, insert, ...) and table, never its parameters."""
    _helper_logger.info(
        "database_query",
        query_type=query_type,
        table=table,
        duration_ms=round(duration_ms, 3),
        rows=rows,
        **extra,
    )


def log_cache_operation(operation: str, key: str, hit: bool | None = None, **extra: Any) -> None:
    """Log one cache operation (get/set/delete) with its hit or miss."""
    _helper_logger.info("cache_operation", operation=operation, key=key, hit=hit, **extra)


def log_agent_execution(
    agent_id: str,
    agent_name: str,
    duration_ms: float,
    tokens_used: int,
    cost_usd: float,
    success: bool,
    **extra: Any,
) -> None:
    """Log one agent run with its token use and cost (error level when it failed)."""
    method = _helper_logger.info if success else _helper_logger.error
    method(
        "agent_execution",
        agent_id=agent_id,
        agent_name=agent_name,
        duration_ms=round(duration_ms, 3),
        tokens_used=tokens_used,
        cost_usd=cost_usd,
        success=success,
        **extra,
    )


def log_thread_event(thread_id: str, event_type: str, **extra: Any) -> None:
    """Log a conversation-thread event (created, message_added, archived, ...)."""
    _helper_logger.info("thread_event", thread_id=thread_id, event_type=event_type, **extra)
