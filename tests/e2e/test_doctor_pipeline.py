"""`chenu-otel doctor` against the real pipeline and against each broken set-up.

The real pieces: our collector (collector/otelcol.yaml + the victorialogs overlay) in front of
Prometheus 3, Jaeger v2 and VictoriaLogs (the stack of tests/e2e/test_victorialogs.py); a second
such stack whose Prometheus lacks exemplar storage; a Prometheus without the OTLP receiver; the
secured edge (secure-edge overlay: TLS, bearer token); a collector whose sending queue is full.
The doctor runs as a user runs it (``python -m chenu_otel.doctor`` in a fresh process with only
OTEL_* variables), and where it says the data arrived, the backends are asked directly too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chenu_otel.doctor.telemetry import LOG_BODY, PROMETHEUS_METRIC, SPAN_NAME
from chenu_otel.stack.files import StackFiles
from chenu_otel.stack.servers import PrometheusServer
from tests.collector_fixtures import BASE_CONFIG, CollectorProcess, dead_endpoint
from tests.deploy_files import backend_binary
from tests.e2e.edge_collector import EdgeCollector
from tests.e2e.test_victorialogs import Backends
from tests.support import REPO_ROOT

pytestmark = pytest.mark.slow

PROTOCOLS = {"grpc": "grpc", "http": "http/protobuf"}
OTLP_RECEIVER_FLAG = "--web.enable-otlp-receiver"
EXEMPLAR_FLAG = "--enable-feature=exemplar-storage"
# requests trusts these over OTEL_EXPORTER_OTLP_CERTIFICATE when set (see test_secure_edge.py).
REQUESTS_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, collector_binary: Path) -> Iterator[Backends]:
    running = Backends(tmp_path_factory.mktemp("doctor")).start(collector_binary)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stack_without_exemplars(
    tmp_path_factory: pytest.TempPathFactory, collector_binary: Path
) -> Iterator[Backends]:
    work_dir = tmp_path_factory.mktemp("doctor-no-exemplars")
    # The same stack with compose's exemplar flag left out.
    running = Backends(work_dir, dropped_flags=(EXEMPLAR_FLAG,)).start(collector_binary)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def prometheus_without_otlp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Only a Prometheus, started with compose's flags minus the OTLP receiver; its URL."""
    work_dir = tmp_path_factory.mktemp("doctor-no-otlp")
    prometheus = PrometheusServer(
        backend_binary("prometheus"), StackFiles(REPO_ROOT), work_dir, work_dir / "logs",
        dropped_flags=(OTLP_RECEIVER_FLAG,),
    )  # fmt: skip
    process = prometheus.start()
    try:
        yield prometheus.url
    finally:
        process.stop()


@pytest.fixture(scope="module")
def edge(
    collector_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeCollector]:
    with EdgeCollector(collector_binary, tmp_path_factory.mktemp("doctor-edge")) as running:
        yield running


@pytest.fixture(scope="module")
def full_collector(
    collector_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorProcess]:
    """A collector whose sending queues hold 1 byte: every export is refused as it arrives."""
    work_dir = tmp_path_factory.mktemp("doctor-full")
    collector = CollectorProcess(
        binary=collector_binary,
        configs=[BASE_CONFIG],
        log_dir=work_dir / "logs",
        storage_dir=work_dir / "queue",
        name="full-collector",
        env={"OTELCOL_QUEUE_SIZE_BYTES": "1"},
    )
    collector.storage_dir.mkdir(parents=True)
    collector.start()
    try:
        yield collector
    finally:
        assert collector.process is not None
        collector.process.stop(timeout=2)  # nothing to keep: do not wait for its retries


# --- running the doctor --------------------------------------------------------------------------


@dataclass(frozen=True)
class DoctorRun:
    """One `python -m chenu_otel.doctor` run: exit status and output."""

    code: int
    output: str

    @property
    def trace_id(self) -> str:
        return self._header("trace")

    @property
    def run_id(self) -> str:
        return self._header("service.instance.id=")

    def _header(self, key: str) -> str:
        match = re.search(rf"{re.escape(key)} ?([0-9a-f]{{32}})", self.output.splitlines()[0])
        assert match, self.output
        return match.group(1)

    def checks(self) -> dict[str, str]:
        """Check name → its line (mark, detail) with the hint line appended."""
        lines = self.output.splitlines()
        found: dict[str, str] = {}
        for n, line in enumerate(lines):
            if line[:4] in ("  ✔ ", "  ✘ ", "  ! ", "  ○ "):
                name = line[4:].split(":", 1)[0]
                hint = (
                    lines[n + 1].strip() if n + 1 < len(lines) and "hint:" in lines[n + 1] else ""
                )
                found[name] = f"{line.strip()} {hint}".strip()
        return found

    def marks(self) -> set[str]:
        return {line[:1] for line in self.checks().values()}


def doctor(env: dict[str, str], *args: str) -> DoctorRun:
    """Run the doctor in a fresh interpreter with only `env`'s OTEL_* variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(env)
    environ["PYTHONIOENCODING"] = "utf-8"
    result = subprocess.run(
        [sys.executable, "-m", "chenu_otel.doctor", "--timeout", "2", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=environ,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode in (0, 1), f"doctor crashed:\n{result.stdout}\n{result.stderr}"
    return DoctorRun(result.returncode, result.stdout)


def otlp_env(endpoint: str, protocol: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}


def backend_args(stack: Backends) -> list[str]:
    return [
        "--prometheus", stack.prometheus.url,
        "--jaeger", stack.jaeger.url,
        "--logs", stack.victorialogs.url,
    ]  # fmt: skip


SENDS = ("send a span", "send a log record", "send a metric point")


def assert_every_send_failed_with(run: DoctorRun, hint: str) -> None:
    checks = run.checks()
    assert run.code == 1, run.output
    for send in SENDS:
        assert checks[send].startswith("✘"), run.output
        assert hint in checks[send], run.output


# --- the working pipeline ------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_doctor_passes_against_the_native_pipeline(stack: Backends, protocol: str) -> None:
    """Every check passes, and the backends themselves hold what the doctor says arrived: the
    trace in Jaeger, the exemplar with that trace id in Prometheus, the log in VictoriaLogs."""
    assert stack.collector is not None
    endpoint = (
        stack.collector.grpc_endpoint if protocol == "grpc" else stack.collector.http_endpoint
    )
    run = doctor(otlp_env(endpoint, PROTOCOLS[protocol]), *backend_args(stack))
    assert run.code == 0, run.output
    checks = run.checks()
    assert run.marks() == {"✔"}, run.output
    assert len(checks) == 10, run.output
    trace_id, run_id = run.trace_id, run.run_id
    assert f"trace_id {trace_id}" in checks["Prometheus has its exemplar"]

    trace = stack.jaeger_trace(trace_id)
    assert trace is not None
    assert [span["operationName"] for span in trace["spans"]] == [SPAN_NAME]
    expr = f'{PROMETHEUS_METRIC}_bucket{{instance="{run_id}"}}'
    assert stack.exemplar_trace_ids(expr) == {trace_id}
    [record] = stack.logsql(f'trace_id:"{trace_id}"')
    assert record["_msg"] == LOG_BODY
    assert record["span_id"] == trace["spans"][0]["spanID"]


# --- the endpoint --------------------------------------------------------------------------------


def test_wrong_port() -> None:
    """Nothing listening: connection refused, named with the address and the variable."""
    address = dead_endpoint()
    run = doctor(otlp_env(f"http://{address}", "grpc"))
    assert_every_send_failed_with(
        run,
        f"nothing listens on {address} (connection refused): wrong port in "
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    )


@pytest.mark.parametrize(
    ("protocol", "port", "hint"),
    [
        ("grpc", "http", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc but the endpoint speaks HTTP: set "
         "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
        ("http/protobuf", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf but the endpoint "
         "speaks gRPC: set OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
    ],
)  # fmt: skip
def test_protocol_mismatch(stack: Backends, protocol: str, port: str, hint: str) -> None:
    """gRPC sent to the collector's HTTP port and HTTP to its gRPC port: the probe tells which
    protocol the port speaks and the hint names the variable to change."""
    assert stack.collector is not None
    endpoint = stack.collector.http_endpoint if port == "http" else stack.collector.grpc_endpoint
    assert_every_send_failed_with(doctor(otlp_env(endpoint, protocol)), hint)


# --- Prometheus ----------------------------------------------------------------------------------


def test_prometheus_without_the_otlp_receiver(
    stack: Backends, prometheus_without_otlp: str
) -> None:
    """The receiver check fails with the flag to add; the checks that need it are skipped and
    the rest of the pipeline still passes."""
    assert stack.collector is not None
    run = doctor(
        otlp_env(stack.collector.grpc_endpoint, "grpc"),
        "--prometheus", prometheus_without_otlp,
        "--jaeger", stack.jaeger.url,
    )  # fmt: skip
    checks = run.checks()
    assert run.code == 1, run.output
    assert checks["Prometheus OTLP receiver"].startswith("✘"), run.output
    assert (
        "Prometheus was started without --web.enable-otlp-receiver"
        in (checks["Prometheus OTLP receiver"])
    )
    assert checks["Prometheus exemplar storage"].startswith("✔"), run.output
    assert checks["Prometheus has the test metric"].startswith("○"), run.output
    assert checks["Jaeger has the test trace"].startswith("✔"), run.output
    assert [c for c in checks.values() if c.startswith("✘")] == [checks["Prometheus OTLP receiver"]]


def test_prometheus_without_exemplar_storage(stack_without_exemplars: Backends) -> None:
    """The metric arrives, its exemplar cannot: exemplar storage fails with the flag to add."""
    stack = stack_without_exemplars
    assert stack.collector is not None
    run = doctor(otlp_env(stack.collector.grpc_endpoint, "grpc"), *backend_args(stack))
    checks = run.checks()
    assert run.code == 1, run.output
    storage = checks["Prometheus exemplar storage"]
    assert storage.startswith("✘"), run.output
    assert "Prometheus was started without --enable-feature=exemplar-storage" in storage
    assert checks["Prometheus has the test metric"].startswith("✔"), run.output
    assert checks["Prometheus has its exemplar"].startswith("○"), run.output
    assert [c for c in checks.values() if c.startswith("✘")] == [storage]
    expr = f'{PROMETHEUS_METRIC}_bucket{{instance="{run.run_id}"}}'
    assert stack.exemplar_trace_ids(expr) == set()  # what the hint is about, seen directly


def test_delta_temporality_is_refused_by_prometheus(stack: Backends) -> None:
    """With a delta temporality preference the collector accepts the histogram and Prometheus
    refuses it: the metric check fails naming the variable, the trace still arrives."""
    assert stack.collector is not None
    env = otlp_env(stack.collector.grpc_endpoint, "grpc")
    env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] = "delta"
    run = doctor(
        env, "--prometheus", stack.prometheus.url, "--jaeger", stack.jaeger.url, "--wait", "5"
    )
    checks = run.checks()
    assert run.code == 1, run.output
    metric = checks["Prometheus has the test metric"]
    assert metric.startswith("✘"), run.output
    assert "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta sends histograms as deltas" in (
        metric
    )
    assert checks["send a metric point"].startswith("✔"), run.output
    assert checks["Jaeger has the test trace"].startswith("✔"), run.output
    assert [c for c in checks.values() if c.startswith("✘")] == [metric]


# --- a collector that refuses -------------------------------------------------------------------


def edge_env(edge: EdgeCollector, protocol: str) -> dict[str, str]:
    port = edge.collector.grpc_port if protocol == "grpc" else edge.collector.http_port
    env = otlp_env(f"https://127.0.0.1:{port}", PROTOCOLS[protocol])
    env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = str(edge.tls.ca)
    return env


@pytest.fixture
def without_ca_bundle_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REQUESTS_CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("without_ca_bundle_overrides")
@pytest.mark.parametrize(
    ("protocol", "status"),
    [("grpc", "gRPC UNAUTHENTICATED"), ("http", "HTTP 401 Unauthorized")],
)
def test_secured_edge_without_a_token(edge: EdgeCollector, protocol: str, status: str) -> None:
    """TLS is right, the token is missing: the refusal is named with its status and the header
    to set."""
    run = doctor(edge_env(edge, protocol))
    assert_every_send_failed_with(
        run,
        f"the collector requires a token and none was sent ({status}): set "
        "OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token>",
    )


@pytest.mark.usefixtures("without_ca_bundle_overrides")
def test_secured_edge_with_its_token(edge: EdgeCollector) -> None:
    """The same edge with the token: every export passes (the refusal above was the token)."""
    env = edge_env(edge, "http")
    env["OTEL_EXPORTER_OTLP_HEADERS"] = f"authorization=Bearer%20{edge.tokens[0]}"
    run = doctor(env)
    assert run.code == 0, run.output
    assert all(run.checks()[send].startswith("✔") for send in SENDS), run.output


@pytest.mark.parametrize(
    ("protocol", "status"),
    [("grpc", "gRPC UNAVAILABLE"), ("http", "HTTP 503 Service Unavailable")],
)
def test_collector_refusing_with_a_full_queue(
    full_collector: CollectorProcess, protocol: str, status: str
) -> None:
    """A full sending queue: the collector answers and refuses; the hint says so, not that the
    endpoint is wrong."""
    endpoint = full_collector.grpc_endpoint if protocol == "grpc" else full_collector.http_endpoint
    run = doctor(otlp_env(endpoint, PROTOCOLS[protocol]))
    assert_every_send_failed_with(
        run, f"the collector refused the data ({status}): its sending queue"
    )
