"""One proxy provider per signal, installed globally once; the real providers swap behind them.

OpenTelemetry lets a process set each global provider once. chenu-otel therefore installs
:data:`TRACER_PROVIDER`, :data:`METER_PROVIDER` and :data:`LOGGER_PROVIDER` as the globals the
first time it is configured (:func:`install`), and from then on only swaps the SDK providers
behind them (:func:`set_providers`). Every tracer, meter, instrument and logger handed out by a
proxy — to chenu-otel's own middleware and recorders, to contrib instrumentations, to FastAPI,
to application code — follows each swap, so re-configuration and test suites never touch
OpenTelemetry's private set-once guards. Before the first swap, and after :func:`set_providers`
is called with nothing, everything behind the proxies is a no-op.

The approach is logfire's ``ProxyTracerProvider``/``ProxyMeterProvider``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar
from weakref import WeakSet

from opentelemetry import _logs, metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    Instrument,
    Meter,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)
from opentelemetry.util.types import AnyValue, Attributes

__all__ = [
    "LOGGER_PROVIDER",
    "METER_PROVIDER",
    "TRACER_PROVIDER",
    "ProxyLoggerProvider",
    "ProxyMeterProvider",
    "ProxyTracerProvider",
    "install",
    "set_providers",
]

_log = logging.getLogger("chenu_otel")
I = TypeVar("I", bound=Instrument)  # noqa: E741 - the conventional name of an instrument type
_Key = tuple[str, str | None, str | None]


# --- traces -----------------------------------------------------------------------------------
class _ProxyTracer(trace.Tracer):
    def __init__(self, key: _Key, attributes: Attributes, provider: trace.TracerProvider) -> None:
        self._key = key
        self._attributes = attributes
        self.tracer = provider.get_tracer(*key, attributes)

    def bind(self, provider: trace.TracerProvider) -> None:
        self.tracer = provider.get_tracer(*self._key, self._attributes)

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        # Positional pass-through: this runs once per span on the request path.
        return self.tracer.start_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception,
        )  # fmt: skip

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self.tracer.start_as_current_span(*args, **kwargs)


class ProxyTracerProvider(trace.TracerProvider):
    """Hands out tracers that always start spans on the provider set last. Anything else
    (``add_span_processor``, ``resource``, ``force_flush``) is the current provider's: a
    processor added that way serves until the next `configure()` replaces the provider."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.provider: trace.TracerProvider = trace.NoOpTracerProvider()
        self._cached: dict[_Key, _ProxyTracer] = {}
        self._others: WeakSet[_ProxyTracer] = WeakSet()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        if attributes is None and (cached := self._cached.get(key)) is not None:
            return cached  # callers like trace.get_tracer() per span pay one dict lookup
        with self._lock:
            tracer = _ProxyTracer(key, attributes, self.provider)
            if attributes is None:
                tracer = self._cached.setdefault(key, tracer)
            else:
                self._others.add(tracer)
            return tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)

    def set_provider(self, provider: trace.TracerProvider) -> None:
        """Send every span started from now on, by any tracer of this proxy, to `provider`."""
        with self._lock:
            self.provider = provider
            for tracer in [*self._cached.values(), *self._others]:
                tracer.bind(provider)


# --- metrics ----------------------------------------------------------------------------------
class _ProxyInstrument(Generic[I]):
    """Holds the real instrument of the meter set last; `create` makes one on a real meter."""

    def __init__(self, create: Callable[[Meter], I], meter: Meter) -> None:
        self._create = create
        self.instrument: I = create(meter)

    def bind(self, meter: Meter) -> None:
        self.instrument = self._create(meter)


class _ProxyCounter(_ProxyInstrument[Counter], Counter):
    def add(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self.instrument.add(amount, attributes, context)


class _ProxyUpDownCounter(_ProxyInstrument[UpDownCounter], UpDownCounter):
    def add(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self.instrument.add(amount, attributes, context)


class _ProxyHistogram(_ProxyInstrument[Histogram], Histogram):
    def record(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self.instrument.record(amount, attributes, context)


class _ProxyGauge(_ProxyInstrument[_Gauge], _Gauge):
    def set(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self.instrument.set(amount, attributes, context)


class _ProxyObservable(_ProxyInstrument[Any], ObservableCounter):
    """Observable instruments have no methods: the callbacks move with each re-creation."""


class _ProxyMeter(Meter):
    def __init__(self, key: _Key, meter: Meter) -> None:
        super().__init__(*key)
        self._key = key
        self._lock = threading.Lock()
        self.meter = meter
        self._instruments: WeakSet[_ProxyInstrument[Any]] = WeakSet()

    def bind(self, provider: MeterProvider) -> None:
        with self._lock:
            self.meter = provider.get_meter(*self._key)
            for instrument in list(self._instruments):
                instrument.bind(self.meter)

    def _proxy(self, proxy: _ProxyInstrument[Any]) -> Any:
        with self._lock:
            self._instruments.add(proxy)
        return proxy

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        return self._proxy(  # type: ignore[no-any-return]
            _ProxyCounter(lambda m: m.create_counter(name, unit, description), self.meter)
        )

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> UpDownCounter:
        return self._proxy(  # type: ignore[no-any-return]
            _ProxyUpDownCounter(
                lambda m: m.create_up_down_counter(name, unit, description), self.meter
            )
        )

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Histogram:
        def create(meter: Meter) -> Histogram:
            return meter.create_histogram(
                name, unit, description,
                explicit_bucket_boundaries_advisory=explicit_bucket_boundaries_advisory,
            )  # fmt: skip

        return self._proxy(_ProxyHistogram(create, self.meter))  # type: ignore[no-any-return]

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> _Gauge:
        return self._proxy(  # type: ignore[no-any-return]
            _ProxyGauge(lambda m: m.create_gauge(name, unit, description), self.meter)
        )

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableCounter:
        return self._proxy(  # type: ignore[no-any-return]
            _ProxyObservable(
                lambda m: m.create_observable_counter(name, callbacks, unit, description),
                self.meter,
            )
        )

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableUpDownCounter:
        return self._proxy(  # type: ignore[no-any-return]
            _ProxyObservable(
                lambda m: m.create_observable_up_down_counter(name, callbacks, unit, description),
                self.meter,
            )
        )

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableGauge:
        return self._proxy(  # type: ignore[no-any-return]
            _ProxyObservable(
                lambda m: m.create_observable_gauge(name, callbacks, unit, description),
                self.meter,
            )
        )


class ProxyMeterProvider(MeterProvider):
    """Hands out meters whose instruments always record into the provider set last; other
    attributes (``force_flush``, ...) are the current provider's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.provider: MeterProvider = metrics.NoOpMeterProvider()
        self._meters: dict[_Key, _ProxyMeter] = {}

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Meter:
        key = (name, version, schema_url)
        with self._lock:
            meter = self._meters.get(key)
            if meter is None:
                meter = self._meters[key] = _ProxyMeter(key, self.provider.get_meter(*key))
            return meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)

    def set_provider(self, provider: MeterProvider) -> None:
        """Record every measurement from now on, on every instrument of this proxy, in
        `provider` (instruments are re-created there with the same callbacks)."""
        with self._lock:
            self.provider = provider
            meters = list(self._meters.values())
        for meter in meters:
            meter.bind(provider)


# --- logs -------------------------------------------------------------------------------------
class _ProxyLogger(_logs.Logger):
    def __init__(self, key: _Key, attributes: Attributes, provider: _logs.LoggerProvider) -> None:
        super().__init__(*key, attributes)
        self._key = key
        self.logger = provider.get_logger(*key, attributes)

    def bind(self, provider: _logs.LoggerProvider) -> None:
        self.logger = provider.get_logger(*self._key, self._attributes)

    def emit(
        self,
        record: _logs.LogRecord | None = None,
        *,
        timestamp: int | None = None,
        observed_timestamp: int | None = None,
        context: Context | None = None,
        severity_number: _logs.SeverityNumber | None = None,
        severity_text: str | None = None,
        body: AnyValue | None = None,
        attributes: Attributes = None,
        event_name: str | None = None,
        exception: BaseException | None = None,
    ) -> None:
        if record is not None:
            self.logger.emit(record)
            return
        self.logger.emit(
            timestamp=timestamp, observed_timestamp=observed_timestamp, context=context,
            severity_number=severity_number, severity_text=severity_text, body=body,
            attributes=attributes, event_name=event_name, exception=exception,
        )  # fmt: skip

    def enabled(
        self,
        *,
        context: Context | None = None,
        severity_number: _logs.SeverityNumber | None = None,
        event_name: str | None = None,
    ) -> bool:
        return self.logger.enabled(
            context=context, severity_number=severity_number, event_name=event_name
        )


class ProxyLoggerProvider(_logs.LoggerProvider):
    """Hands out loggers that always emit into the provider set last; other attributes
    (``add_log_record_processor``, ...) are the current provider's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.provider: _logs.LoggerProvider = _logs.NoOpLoggerProvider()
        self._cached: dict[_Key, _ProxyLogger] = {}
        self._others: WeakSet[_ProxyLogger] = WeakSet()

    def get_logger(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> _logs.Logger:
        key = (name, version, schema_url)
        if attributes is None and (cached := self._cached.get(key)) is not None:
            return cached
        with self._lock:
            logger = _ProxyLogger(key, attributes, self.provider)
            if attributes is None:
                logger = self._cached.setdefault(key, logger)
            else:
                self._others.add(logger)
            return logger

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)

    def set_provider(self, provider: _logs.LoggerProvider) -> None:
        """Emit every log record from now on, by any logger of this proxy, into `provider`."""
        with self._lock:
            self.provider = provider
            for logger in [*self._cached.values(), *self._others]:
                logger.bind(provider)


#: The process-wide proxies (global providers once `install()` ran).
TRACER_PROVIDER: Final = ProxyTracerProvider()
METER_PROVIDER: Final = ProxyMeterProvider()
LOGGER_PROVIDER: Final = ProxyLoggerProvider()

_install_lock = threading.Lock()
_installed = False


def install() -> list[str]:
    """Make the three proxies the global providers (the first call does it; later calls only
    check). Returns the signals whose global provider is someone else's: set before chenu-otel
    was configured, it keeps serving code that asks OpenTelemetry for the global provider."""
    global _installed
    with _install_lock:
        if not _installed:
            _installed = True
            trace.set_tracer_provider(TRACER_PROVIDER)
            metrics.set_meter_provider(METER_PROVIDER)
            _logs.set_logger_provider(LOGGER_PROVIDER)
    foreign = []
    if trace.get_tracer_provider() is not TRACER_PROVIDER:
        foreign.append("traces")
    if metrics.get_meter_provider() is not METER_PROVIDER:
        foreign.append("metrics")
    if _logs.get_logger_provider() is not LOGGER_PROVIDER:
        foreign.append("logs")
    return foreign


def set_providers(
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    logger_provider: _logs.LoggerProvider | None = None,
) -> None:
    """Put these providers behind the proxies; a missing one becomes a no-op provider."""
    TRACER_PROVIDER.set_provider(tracer_provider or trace.NoOpTracerProvider())
    METER_PROVIDER.set_provider(meter_provider or metrics.NoOpMeterProvider())
    LOGGER_PROVIDER.set_provider(logger_provider or _logs.NoOpLoggerProvider())
