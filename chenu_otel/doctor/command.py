"""``chenu-otel doctor``: the command line and the order of the checks."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_CERTIFICATE,
    OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE,
    OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE,
    OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE,
)

from chenu_otel import environment_variables as env
from chenu_otel.doctor.backends import Deadline, check_jaeger, check_logs, check_prometheus
from chenu_otel.doctor.hints import EndpointProbe, ExportFailure, describe, export_hint
from chenu_otel.doctor.probes import probe_endpoint
from chenu_otel.doctor.report import CheckResult, Reporter, Status
from chenu_otel.doctor.telemetry import (
    DOCTOR_SERVICE_NAME,
    MIN_EXPORT_TIMEOUT,
    PROMETHEUS_METRIC,
    DoctorTelemetry,
    ExportOutcome,
    SdkLogCapture,
    make_test_telemetry,
    send_test_telemetry,
)
from chenu_otel.settings import (
    ExemplarFilterName,
    Exporter,
    Settings,
    Signal,
    load_settings,
)

__all__ = [
    "DoctorOptions",
    "add_arguments",
    "add_doctor_parser",
    "main",
    "run_doctor",
    "run_doctor_command",
]

DESCRIPTION: Final = (
    "Check that the OTEL_* settings of this environment get telemetry through: print the "
    "settings and their warnings, send a test span, log record and metric point to the "
    "configured OTLP endpoint, and with --prometheus/--jaeger/--logs check that they arrived."
)
_ITEM: Final = {
    Signal.TRACES: "a span",
    Signal.LOGS: "a log record",
    Signal.METRICS: "a metric point",
}
#: The CA file the OTLP exporters trust, generic and per signal (read by the SDK itself).
CERTIFICATES: Final = {
    Signal.TRACES: (OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE),
    Signal.METRICS: (OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE),
    Signal.LOGS: (OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE),
}
#: What requests trusts instead of the CA file its session was given, when set.
REQUESTS_CA_BUNDLES: Final = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_SECRET_NAME_PARTS: Final = ("HEADERS", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


@dataclass(frozen=True)
class DoctorOptions:
    """What the command was asked to check."""

    prometheus: str | None = None
    jaeger: str | None = None
    logs: str | None = None
    #: Cap on each test export's OTLP timeout, seconds (at least MIN_EXPORT_TIMEOUT).
    timeout: float = 5.0
    #: How long to wait for the test data to show up in the backends, seconds.
    wait: float = 30.0
    service_name: str = DOCTOR_SERVICE_NAME

    def __post_init__(self) -> None:
        if self.timeout < MIN_EXPORT_TIMEOUT:
            raise ValueError(f"timeout must be at least {MIN_EXPORT_TIMEOUT:g}s: {self.timeout}")
        if self.wait <= 0:
            raise ValueError(f"wait must be above 0: {self.wait}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The doctor's options, for its own parser or a ``chenu-otel doctor`` subparser."""
    parser.add_argument(
        "--prometheus", metavar="URL", help="Prometheus 3, e.g. http://127.0.0.1:9090"
    )
    parser.add_argument(
        "--jaeger", metavar="URL", help="Jaeger's query API, e.g. http://127.0.0.1:16686"
    )
    parser.add_argument(
        "--logs", metavar="URL", help="VictoriaLogs (http://127.0.0.1:9428) or Loki (…:3100)"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds(MIN_EXPORT_TIMEOUT),
        default=5.0,
        metavar="SECONDS",
        help=f"cap on each test export's OTLP timeout (default 5, at least {MIN_EXPORT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--wait",
        type=_seconds(0.0),
        default=30.0,
        metavar="SECONDS",
        help="how long the backends get to show the test data (default 30)",
    )
    parser.add_argument(
        "--service-name",
        default=DOCTOR_SERVICE_NAME,
        help=f"service.name of the test data (default {DOCTOR_SERVICE_NAME})",
    )


def _seconds(minimum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
        if value < minimum or value <= 0:
            raise argparse.ArgumentTypeError(f"expected at least {minimum:g} seconds (above 0)")
        return value

    return parse


def add_doctor_parser(commands: Any) -> None:
    """Add ``doctor`` to the ``chenu-otel`` sub-commands (`commands`: argparse's subparsers)."""
    doctor = commands.add_parser(
        "doctor", help="check that telemetry gets through", description=DESCRIPTION
    )
    add_arguments(doctor)


def run_doctor_command(args: argparse.Namespace) -> int:
    """Run with the options `add_arguments` parsed; returns the exit status."""
    quiet_grpc_core()
    return run_doctor(
        DoctorOptions(
            prometheus=args.prometheus,
            jaeger=args.jaeger,
            logs=args.logs,
            timeout=args.timeout,
            wait=args.wait,
            service_name=args.service_name,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``chenu-otel doctor [options]`` / ``python -m chenu_otel.doctor``: 0 when nothing
    failed, 1 when a check failed, 2 for a usage error."""
    parser = argparse.ArgumentParser(prog="chenu-otel doctor", description=DESCRIPTION)
    add_arguments(parser)
    return run_doctor_command(parser.parse_args(argv))


def quiet_grpc_core() -> None:
    """gRPC's C core prints its own lines for failed TLS handshakes and the like on stderr; the
    doctor reports those failures itself. Effective only before grpc is first imported; an
    explicit GRPC_VERBOSITY wins."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def run_doctor(
    options: DoctorOptions,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> int:
    """Run every check against `environ` (default ``os.environ``, only read), print one line
    per check to `stream` (default stdout) and return the exit status."""
    environ = os.environ if environ is None else environ
    report = Reporter(stream or sys.stdout)
    with SdkLogCapture() as capture:
        settings = load_settings(environ)
        telemetry = make_test_telemetry(settings, options.service_name)
        report.text(
            f"chenu-otel doctor: test data as service.name={telemetry.service_name}, "
            f"service.instance.id={telemetry.run_id}, trace {telemetry.trace_id}"
        )
        _print_settings(report, settings, environ)
        report.section("Checks")
        _settings_checks(report, settings, environ)
        outcomes = send_test_telemetry(settings, telemetry, options.timeout, capture)
        _export_checks(report, settings, outcomes, environ)
        _backend_checks(report, options, telemetry, outcomes, settings)
    return report.summary()


# --- settings ----------------------------------------------------------------------------------


def _print_settings(report: Reporter, settings: Settings, environ: Mapping[str, str]) -> None:
    report.section("Settings (the OTEL_* variables as chenu-otel resolves them)")
    rows = [
        (env.OTEL_SDK_DISABLED, str(settings.sdk_disabled).lower()),
        (env.OTEL_SERVICE_NAME, settings.service_name or "(not set)"),
        (
            env.OTEL_RESOURCE_ATTRIBUTES,
            ", ".join(f"{k}={v}" for k, v in settings.resource_attributes.items()) or "(none)",
        ),
    ]
    for signal in (Signal.TRACES, Signal.METRICS, Signal.LOGS):
        otlp = settings.otlp[signal]
        exporters = ",".join(settings.exporters[signal]) or "none"
        headers = ",".join(otlp.headers) or "none"  # names only: values carry credentials
        rows.append(
            (
                f"{signal} exporter",
                f"{exporters}; OTLP {otlp.protocol} {otlp.endpoint}, timeout "
                f"{otlp.timeout_seconds:g}s, compression {otlp.compression}, headers {headers}",
            )
        )
    sampler = str(settings.sampler)
    if sampler.endswith("traceidratio"):
        sampler += f" ({env.OTEL_TRACES_SAMPLER_ARG}={settings.sampler_arg:g})"
    rows += [
        (env.OTEL_TRACES_SAMPLER, sampler),
        (env.OTEL_METRICS_EXEMPLAR_FILTER, str(settings.exemplar_filter)),
        (env.OTEL_METRIC_EXPORT_INTERVAL, f"{settings.metric_export_interval_millis} ms"),
        ("metrics temporality", f"{settings.temporality}, {settings.histogram_aggregation}"),
        (env.OTEL_PROPAGATORS, ",".join(settings.propagators) or "none"),
    ]
    rows += [(name, f"{value} (read by the SDK itself)") for name, value in _sdk_only(environ)]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        report.text(f"  {name.ljust(width)}  {value}")
    report.section("Warnings")
    for problem in settings.problems:
        report.text(f"  {report.mark(Status.WARN)} {problem}")
    if not settings.problems:
        report.text("  (none)")


def _known_variables() -> set[str]:
    names = {getattr(env, name) for name in env.__all__ if name.startswith("OTEL_")}
    for variables in (env.OTLP_GENERIC, *env.OTLP_PER_SIGNAL.values()):
        names.update(vars(variables).values())
    for batch in (env.BSP, env.BLRP):
        names.update(vars(batch).values())
    return {name for name in names if isinstance(name, str) and name}


def _sdk_only(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """OTEL_* variables set here that chenu-otel does not read (the SDK may, e.g. TLS files)."""
    known = _known_variables()
    shown = []
    for name in sorted(n for n in environ if n.startswith("OTEL_") and n not in known):
        secret = any(part in name for part in _SECRET_NAME_PARTS)
        shown.append((name, "(value hidden)" if secret else environ[name]))
    return shown


def _settings_checks(report: Reporter, settings: Settings, environ: Mapping[str, str]) -> None:
    name = "OTEL_* values"
    if settings.problems:
        report.check(
            CheckResult(
                name,
                Status.FAIL,
                f"{len(settings.problems)} rejected (listed under Warnings)",
                "set each variable listed under Warnings to an accepted value, or unset it; "
                "until then chenu-otel uses the default shown there",
            )
        )
    else:
        report.check(CheckResult(name, Status.PASS, "all accepted"))
    for warning in _setting_warnings(settings) + _certificate_warnings(environ):
        report.check(CheckResult("your app's settings", Status.WARN, warning))


def _setting_warnings(settings: Settings) -> list[str]:
    """Valid settings under which an app sends less than one may think."""
    warnings = []
    if settings.sdk_disabled:
        warnings.append(f"{env.OTEL_SDK_DISABLED}=true: your app records and sends nothing")
    for signal in (Signal.TRACES, Signal.METRICS, Signal.LOGS):
        names = settings.exporters[signal]
        if Exporter.OTLP not in names:
            variable = env.OTLP_PER_SIGNAL[signal].exporter
            shown = ",".join(names) or "none"
            warnings.append(f"{variable}={shown}: your app does not send {signal} over OTLP")
    sampler = str(settings.sampler)
    if sampler.endswith("always_off") or (
        sampler.endswith("traceidratio") and settings.sampler_arg == 0
    ):
        warnings.append(
            f"{env.OTEL_TRACES_SAMPLER}={sampler}: your app keeps no trace (and so no exemplar)"
        )
    if settings.exemplar_filter is ExemplarFilterName.ALWAYS_OFF:
        warnings.append(
            f"{env.OTEL_METRICS_EXEMPLAR_FILTER}=always_off: your app's metrics carry no "
            "exemplar (no link from a metric to its trace)"
        )
    return warnings


def _certificate_warnings(environ: Mapping[str, str]) -> list[str]:
    """A CA file named but missing makes every TLS export fail before it starts."""
    names = sorted({name for pair in CERTIFICATES.values() for name in pair})
    return [
        f"{name}={environ[name]}: no such file, so TLS exports cannot verify the collector"
        for name in names
        if environ.get(name) and not os.path.isfile(environ[name])
    ]


# --- exports -----------------------------------------------------------------------------------


def _export_checks(
    report: Reporter,
    settings: Settings,
    outcomes: Mapping[Signal, ExportOutcome],
    environ: Mapping[str, str],
) -> None:
    probes: dict[str, EndpointProbe] = {}
    for signal, outcome in outcomes.items():
        otlp = outcome.otlp
        where = f"{otlp.protocol} → {otlp.endpoint}"
        name = f"send {_ITEM[signal]}"
        if outcome.succeeded:
            configured = settings.otlp[signal].timeout_seconds
            took = f"{where}: accepted in {outcome.seconds * 1000:.0f} ms"
            if outcome.seconds <= configured:
                report.check(CheckResult(name, Status.PASS, took))
            else:
                variable = _variable(environ, signal, "timeout")
                report.check(
                    CheckResult(
                        name,
                        Status.WARN,
                        f"{took}, longer than your {configured:g}s timeout",
                        f"raise {variable} (milliseconds), or your app's exports time out",
                    )
                )
            continue
        if (
            outcome.problem
            and not outcome.evidence.grpc_status
            and not outcome.evidence.http_status
        ):
            report.check(
                CheckResult(name, Status.FAIL, f"{where}: {outcome.problem}", _fix_exporter())
            )
            continue
        parts = urlsplit(otlp.endpoint)
        address = f"{parts.scheme}://{parts.netloc}"  # one probe per server, not per path
        if address not in probes:
            probes[address] = probe_endpoint(address, timeout=2.0)
        failure = ExportFailure(
            signal=str(signal),
            protocol=otlp.protocol,
            endpoint=otlp.endpoint,
            protocol_variable=_variable(environ, signal, "protocol"),
            endpoint_variable=_variable(environ, signal, "endpoint"),
            header_names=tuple(otlp.headers),
            timeout_seconds=otlp.timeout_seconds,
            evidence=outcome.evidence,
            ca_bundle_override=_ca_bundle_override(environ, signal),
        )
        said = describe(outcome.evidence)
        report.check(
            CheckResult(
                name,
                Status.FAIL,
                f"{where}: failed after {outcome.seconds:.1f}s" + (f" ({said})" if said else ""),
                export_hint(failure, probes[address]),
            )
        )


def _ca_bundle_override(environ: Mapping[str, str], signal: Signal) -> str | None:
    if not any(environ.get(name) for name in CERTIFICATES[signal]):
        return None
    return next((name for name in REQUESTS_CA_BUNDLES if environ.get(name)), None)


def _fix_exporter() -> str:
    return "the exporter could not be set up: fix the setting the message names"


def _variable(environ: Mapping[str, str], signal: Signal, which: str) -> str:
    """The variable that decided `which` (protocol or endpoint) for `signal`: its own when set,
    else the generic one."""
    own = getattr(env.OTLP_PER_SIGNAL[signal], which)
    return str(own) if environ.get(own, "").strip() else str(getattr(env.OTLP_GENERIC, which))


# --- backends ----------------------------------------------------------------------------------


def _backend_checks(
    report: Reporter,
    options: DoctorOptions,
    telemetry: DoctorTelemetry,
    outcomes: Mapping[Signal, ExportOutcome],
    settings: Settings,
) -> None:
    if not (options.jaeger or options.prometheus or options.logs):
        report.text(
            "  (pass --jaeger, --prometheus and --logs to check that the test data arrived)"
        )
        return
    deadline = Deadline.after(options.wait)
    if options.jaeger:
        if outcomes[Signal.TRACES].succeeded:
            report.check(check_jaeger(options.jaeger, telemetry, deadline))
        else:
            report.check(
                CheckResult("Jaeger has the test trace", Status.SKIP, "the span was not sent")
            )
    if options.prometheus:
        for result in check_prometheus(
            options.prometheus,
            telemetry,
            deadline,
            metric_sent=outcomes[Signal.METRICS].succeeded,
            temporality=settings.temporality,
        ):
            report.check(result)
    if options.logs:
        if outcomes[Signal.LOGS].succeeded:
            report.check(check_logs(options.logs, telemetry, deadline))
        else:
            report.check(
                CheckResult(
                    "logs backend has the test log record",
                    Status.SKIP,
                    "the log record was not sent",
                )
            )
    report.text(
        f"  (test data: trace {telemetry.trace_id}; PromQL "
        f'{PROMETHEUS_METRIC}_count{{instance="{telemetry.run_id}"}}; '
        f'LogsQL trace_id:"{telemetry.trace_id}")'
    )
