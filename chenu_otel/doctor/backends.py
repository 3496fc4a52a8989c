"""Did the test telemetry land? Jaeger, Prometheus and a logs backend, asked over HTTP.

Each check polls its backend until the test data shows up or the shared deadline passes (one
last try is always made), and stops early when the backend does not answer at all. Only read
APIs are used, plus two harmless writes: an empty OTLP request to Prometheus' receiver (to see
whether it is enabled) and VictoriaLogs' ``/internal/force_flush`` (so a fresh record is
searchable at once).

- Jaeger: ``GET /api/traces/{trace id}`` holds the test span.
- Prometheus: ``POST /api/v1/otlp/v1/metrics`` (404 naming ``--web.enable-otlp-receiver`` means
  the receiver is off), ``prometheus_tsdb_exemplar_max_exemplars`` on ``/metrics`` and the
  ``enable-feature`` flag (``/api/v1/status/flags``) for exemplar storage, ``/api/v1/query`` for
  the test histogram of this run (``instance`` = the run id) and ``/api/v1/query_exemplars``
  for its exemplar with the test trace id.
- Logs: VictoriaLogs (``/select/logsql/query?query=trace_id:"…"``) or Loki
  (``/loki/api/v1/query_range`` with ``{service_name="…"} | trace_id="…"``), told apart by which
  API answers.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from chenu_otel.doctor.hints import (
    exemplar_storage_hint,
    missing_metric_hint,
    otlp_receiver_hint,
)
from chenu_otel.doctor.report import CheckResult, Status
from chenu_otel.doctor.telemetry import PROMETHEUS_METRIC, DoctorTelemetry
from chenu_otel.settings import Temporality

__all__ = ["Deadline", "check_jaeger", "check_logs", "check_prometheus"]

T = TypeVar("T")
_POLL_INTERVAL: Final = 0.25
_REQUEST_TIMEOUT: Final = 5.0


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, or why there was none (`status` None)."""

    status: int | None
    body: str = ""
    error: str = ""
    content_type: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def fetch(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """GET (POST when `data` is given) `url`; never raises."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=_REQUEST_TIMEOUT) as response:
            body = response.read().decode(errors="replace")
            return Reply(
                int(response.status), body, content_type=response.headers["Content-Type"] or ""
            )
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode(errors="replace"))
    except urllib.error.URLError as exc:
        return Reply(None, error=str(getattr(exc.reason, "strerror", None) or exc.reason))
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, error=str(exc) or type(exc).__name__)


@dataclass(frozen=True)
class Deadline:
    """When polling stops, and since when the data has been on its way."""

    at: float
    sent_at: float
    wait_seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        now = time.monotonic()
        return cls(at=now + seconds, sent_at=now, wait_seconds=seconds)

    def since_sent(self) -> str:
        return f"{time.monotonic() - self.sent_at:.1f}s after sending"


def poll(
    deadline: Deadline, attempt: Callable[[], T | None], gave_up: Callable[[], bool]
) -> T | None:
    """Call `attempt` until it returns a value, `gave_up()` says stop, or the deadline passes
    (at least once)."""
    while True:
        found = attempt()
        if found is not None or gave_up():
            return found
        remaining = deadline.at - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(_POLL_INTERVAL, remaining))


def _no_answer(name: str, url: str, reply: Reply, option: str, what: str) -> CheckResult:
    return CheckResult(
        name,
        Status.FAIL,
        f"no answer from {url} ({reply.error})",
        f"nothing answers at {url}: check {option} ({what} by default)",
    )


# --- Jaeger ------------------------------------------------------------------------------------


def check_jaeger(url: str, telemetry: DoctorTelemetry, deadline: Deadline) -> CheckResult:
    """Jaeger's query API holds the test span under the test trace id."""
    name = "Jaeger has the test trace"
    api = f"{url.rstrip('/')}/api/traces/{telemetry.trace_id}"
    last = Reply(None)

    def attempt() -> dict[str, Any] | None:
        nonlocal last
        last = fetch(api)
        answer = last.json() if last.status == 200 else None
        for trace in (answer or {}).get("data") or []:
            for span in trace.get("spans", []):
                if span.get("spanID") == telemetry.span_id:
                    return dict(span)
        return None

    span = poll(
        deadline,
        attempt,
        lambda: last.status not in (200, 404) or not isinstance(last.json(), dict),
    )
    if span is not None:
        return CheckResult(
            name,
            Status.PASS,
            f"trace {telemetry.trace_id}, span {span.get('operationName')!r} "
            f"({deadline.since_sent()})",
        )
    if last.status is None:
        return _no_answer(name, url, last, "--jaeger", "Jaeger's query API listens on 16686")
    if last.status in (200, 404) and isinstance(last.json(), dict):
        return CheckResult(
            name,
            Status.FAIL,
            f"no trace {telemetry.trace_id} after {deadline.wait_seconds:g}s",
            "the collector accepted the span but Jaeger does not have it: the collector's "
            "traces pipeline does not reach this Jaeger (check its exporter endpoint, "
            "JAEGER_OTLP_ENDPOINT, and the collector's log for export errors)",
        )
    return CheckResult(
        name,
        Status.FAIL,
        f"{api} answered HTTP {last.status}",
        f"{url} does not answer like Jaeger's query API (/api/traces/<trace id>): check --jaeger",
    )


# --- Prometheus --------------------------------------------------------------------------------


def check_prometheus(
    url: str,
    telemetry: DoctorTelemetry,
    deadline: Deadline,
    *,
    metric_sent: bool,
    temporality: Temporality = Temporality.CUMULATIVE,
) -> list[CheckResult]:
    """OTLP receiver on, exemplar storage on, the test metric of this run and its exemplar;
    `temporality` is the one the metric point was sent with (it explains a missing metric)."""
    base = url.rstrip("/")
    name = _PROMETHEUS_CHECKS["receiver"]
    build = fetch(f"{base}/api/v1/status/buildinfo")
    answer = build.json() if build.status == 200 else None
    version = (
        ((answer or {}).get("data") or {}).get("version") if isinstance(answer, dict) else None
    )
    if build.status is None:
        down = _no_answer(name, url, build, "--prometheus", "Prometheus listens on 9090")
        return [
            down,
            *_skipped(("exemplar storage", "metric", "exemplar"), "Prometheus does not answer"),
        ]
    if not isinstance(version, str):
        alien = CheckResult(
            name,
            Status.FAIL,
            f"{base}/api/v1/status/buildinfo answered HTTP {build.status}, not Prometheus' JSON",
            f"{url} does not answer like Prometheus' HTTP API: check --prometheus",
        )
        return [
            alien,
            *_skipped(("exemplar storage", "metric", "exemplar"), "this is not Prometheus"),
        ]
    receiver = fetch(
        f"{base}/api/v1/otlp/v1/metrics",
        data=b"",  # an empty ExportMetricsServiceRequest: valid, and adds nothing
        headers={"Content-Type": "application/x-protobuf"},
    )
    results = [_receiver_result(receiver, version)]
    storage = _exemplar_storage_result(base)
    results.append(storage)
    if not metric_sent:
        return results + _skipped(("metric", "exemplar"), "the metric point was not sent")
    if results[0].status is Status.FAIL:
        return results + _skipped(("metric", "exemplar"), "the OTLP receiver is off")
    metric = _metric_result(base, telemetry, deadline, temporality)
    results.append(metric)
    if metric.status is not Status.PASS:
        return results + _skipped(("exemplar",), "the metric did not arrive")
    if storage.status is Status.FAIL:
        return results + _skipped(("exemplar",), "exemplar storage is off")
    results.append(_exemplar_result(base, telemetry, deadline))
    return results


_PROMETHEUS_CHECKS: Final = {
    "receiver": "Prometheus OTLP receiver",
    "metric": "Prometheus has the test metric",
    "exemplar": "Prometheus has its exemplar",
    "exemplar storage": "Prometheus exemplar storage",
}


def _skipped(which: tuple[str, ...], why: str) -> list[CheckResult]:
    return [CheckResult(_PROMETHEUS_CHECKS[w], Status.SKIP, why) for w in which]


def _receiver_result(reply: Reply, version: str) -> CheckResult:
    name = _PROMETHEUS_CHECKS["receiver"]
    if reply.status is None:
        return CheckResult(name, Status.FAIL, f"no answer ({reply.error})", "see Prometheus' log")
    hint = otlp_receiver_hint(reply.status, reply.body)
    if hint is None:
        return CheckResult(
            name,
            Status.PASS,
            f"Prometheus {version}: enabled (HTTP {reply.status} to an empty request)",
        )
    said = reply.body.strip().splitlines()[0][:120] if reply.body.strip() else ""
    return CheckResult(name, Status.FAIL, f"HTTP {reply.status} {said}".strip(), hint)


def _exemplar_storage_result(base: str) -> CheckResult:
    name = _PROMETHEUS_CHECKS["exemplar storage"]
    own = fetch(f"{base}/metrics")
    max_exemplars = _gauge(own.body, "prometheus_tsdb_exemplar_max_exemplars")
    flags = fetch(f"{base}/api/v1/status/flags").json()
    data = flags.get("data") if isinstance(flags, dict) else None
    features = data.get("enable-feature") if isinstance(data, dict) else None
    seen = f"max_exemplars {max_exemplars:g}" if max_exemplars is not None else "max unknown"
    seen += f", enable-feature={features!r}" if features is not None else ""
    hint = exemplar_storage_hint(max_exemplars, features)
    if hint is not None:
        return CheckResult(name, Status.FAIL, f"off ({seen})", hint)
    if max_exemplars is None and features is None:
        return CheckResult(name, Status.WARN, "could not tell (neither /metrics nor flags read)")
    return CheckResult(name, Status.PASS, f"on ({seen})")


def _gauge(exposition: str, metric: str) -> float | None:
    match = re.search(rf"^{re.escape(metric)}(?:\{{[^}}]*\}})? (\S+)$", exposition, re.MULTILINE)
    try:
        return float(match.group(1)) if match else None
    except ValueError:
        return None


def _selector(telemetry: DoctorTelemetry, suffix: str) -> str:
    return f'{{__name__=~"{PROMETHEUS_METRIC}({suffix})?", instance="{telemetry.run_id}"}}'


def _metric_result(
    base: str, telemetry: DoctorTelemetry, deadline: Deadline, temporality: Temporality
) -> CheckResult:
    name = _PROMETHEUS_CHECKS["metric"]
    selector = _selector(telemetry, "_count")
    last = Reply(None)

    def attempt() -> dict[str, Any] | None:
        nonlocal last
        last = fetch(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": selector}))
        answer = last.json()
        series = ((answer or {}).get("data") or {}).get("result") or []
        return dict(series[0]) if series else None

    found = poll(deadline, attempt, lambda: last.status is None)
    if found is not None:
        series_name = found.get("metric", {}).get("__name__", PROMETHEUS_METRIC)
        return CheckResult(
            name,
            Status.PASS,
            f'{series_name}{{instance="{telemetry.run_id}"}} ({deadline.since_sent()})',
        )
    return CheckResult(
        name,
        Status.FAIL,
        f"no {PROMETHEUS_METRIC} with instance={telemetry.run_id} after "
        f"{deadline.wait_seconds:g}s" + (f" ({last.error})" if last.error else ""),
        missing_metric_hint(temporality),
    )


def _exemplar_result(base: str, telemetry: DoctorTelemetry, deadline: Deadline) -> CheckResult:
    name = _PROMETHEUS_CHECKS["exemplar"]
    now = time.time()
    query = {
        "query": _selector(telemetry, "_bucket"),
        "start": f"{now - 3600:.3f}",
        "end": f"{now + 3600:.3f}",
    }
    last = Reply(None)

    def attempt() -> dict[str, str] | None:
        nonlocal last
        last = fetch(f"{base}/api/v1/query_exemplars?" + urllib.parse.urlencode(query))
        answer = last.json()
        for series in (answer or {}).get("data") or []:
            for exemplar in series.get("exemplars", []):
                labels = exemplar.get("labels", {})
                if labels.get("trace_id") == telemetry.trace_id:
                    return dict(labels)
        return None

    labels = poll(deadline, attempt, lambda: last.status is None)
    if labels is not None:
        return CheckResult(
            name,
            Status.PASS,
            f"trace_id {labels['trace_id']}, span_id {labels.get('span_id', '?')}",
        )
    return CheckResult(
        name,
        Status.FAIL,
        f"the test metric arrived without an exemplar of trace {telemetry.trace_id}",
        "something between this process and Prometheus drops exemplars: look for a collector "
        "processor that removes them, and check the exporter sends exemplars",
    )


# --- logs: VictoriaLogs or Loki ----------------------------------------------------------------


@dataclass(frozen=True)
class _LogsBackend:
    name: str
    query: Callable[[], Reply]
    holds_record: Callable[[Reply], bool]


def check_logs(url: str, telemetry: DoctorTelemetry, deadline: Deadline) -> CheckResult:
    """The test log record can be found by its trace id in VictoriaLogs or Loki."""
    base = url.rstrip("/")
    first = _victorialogs_query(base, telemetry)
    unknown = "logs backend has the test log record"
    if first.status is None:
        return _no_answer(
            unknown, url, first, "--logs", "VictoriaLogs listens on 9428, Loki on 3100"
        )
    if _is_victorialogs(first):
        backend = _LogsBackend(
            "VictoriaLogs",
            lambda: _victorialogs_query(base, telemetry),
            lambda reply: _victorialogs_holds(reply, telemetry),
        )
    elif _is_loki(fetch(f"{base}/loki/api/v1/status/buildinfo")):
        backend = _LogsBackend("Loki", lambda: _loki_query(base, telemetry), _loki_holds)
        first = backend.query()
    else:
        return CheckResult(
            unknown,
            Status.FAIL,
            f"{url}/select/logsql/query answered HTTP {first.status} ({first.content_type})",
            f"{url} is neither VictoriaLogs (/select/logsql/query) nor Loki "
            "(/loki/api/v1/query_range): check --logs",
        )
    name = f"{backend.name} has the test log record"
    last = first

    def attempt() -> bool | None:
        nonlocal last
        last = backend.query()
        return True if backend.holds_record(last) else None

    if backend.holds_record(first) or poll(deadline, attempt, lambda: last.status is None):
        return CheckResult(
            name,
            Status.PASS,
            f"trace_id {telemetry.trace_id}, span_id {telemetry.span_id} ({deadline.since_sent()})",
        )
    return CheckResult(
        name,
        Status.FAIL,
        f"no record with trace_id {telemetry.trace_id} after {deadline.wait_seconds:g}s",
        f"the collector accepted the log record but {backend.name} does not have it: the "
        "collector's logs pipeline does not reach it (check its logs exporter endpoint, e.g. "
        "VICTORIALOGS_URL or LOKI_OTLP_ENDPOINT, and the collector's log)",
    )


def _is_victorialogs(reply: Reply) -> bool:
    """VictoriaLogs answers LogsQL with JSON lines (an HTML catch-all page is not it)."""
    return reply.status == 200 and reply.content_type.startswith("application/stream+json")


def _is_loki(reply: Reply) -> bool:
    answer = reply.json() if reply.status == 200 else None
    return isinstance(answer, dict) and "version" in answer


def _victorialogs_query(base: str, telemetry: DoctorTelemetry) -> Reply:
    fetch(f"{base}/internal/force_flush")  # recent records are searchable only once flushed
    query = urllib.parse.urlencode({"query": f'trace_id:"{telemetry.trace_id}"', "limit": "10"})
    return fetch(f"{base}/select/logsql/query?{query}")


def _victorialogs_holds(reply: Reply, telemetry: DoctorTelemetry) -> bool:
    if reply.status != 200:
        return False
    for line in reply.body.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("span_id") == telemetry.span_id:
            return True
    return False


def _loki_query(base: str, telemetry: DoctorTelemetry) -> Reply:
    now_ns = time.time_ns()
    query = f'{{service_name="{telemetry.service_name}"}} | trace_id="{telemetry.trace_id}"'
    params = {
        "query": query,
        "start": str(now_ns - 3600 * 10**9),
        "end": str(now_ns + 60 * 10**9),
        "limit": "10",
    }
    return fetch(f"{base}/loki/api/v1/query_range?" + urllib.parse.urlencode(params))


def _loki_holds(reply: Reply) -> bool:
    answer = reply.json() if reply.status == 200 else None
    streams = ((answer or {}).get("data") or {}).get("result") or []
    return any(stream.get("values") for stream in streams)
