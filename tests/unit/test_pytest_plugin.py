"""chenu-otel's pytest plugin: installed with the package, its fixtures work in any suite."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

USER_SUITE = textwrap.dedent(
    '''
    import logging

    from chenu_otel.logging import get_logger
    from chenu_otel.tracing import traced
    from opentelemetry import metrics


    @traced("checkout")
    def checkout() -> None:
        get_logger("shop").info("order_placed", items=2)
        metrics.get_meter("shop").create_counter("shop.orders").add(1)


    def test_capotel_sees_all_three_signals(capotel):
        checkout()
        (span,) = capotel.spans()
        assert span.name == "checkout"
        (record,) = [r.log_record for r in capotel.logs() if r.log_record.body == "order_placed"]
        assert record.trace_id == span.context.trace_id
        (point,) = capotel.metric_points("shop.orders")
        assert point.value == 1


    def test_capotel_starts_empty_each_time(capotel):
        assert capotel.spans() == ()


    def test_otlp_sink_receives_over_grpc(otlp_sink, monkeypatch):
        import chenu_otel
        from chenu_otel.testing import environ_for

        for name, value in environ_for(otlp_sink, "grpc").items():
            monkeypatch.setenv(name, value)
        pipeline = chenu_otel.configure(service_name="plugin-user")
        checkout()
        assert pipeline.force_flush(5_000)
        otlp_sink.wait_for(lambda sink: sink.spans(), timeout=10)
    '''
)


def test_fixtures_reach_a_suite_through_the_entry_point(tmp_path: Path) -> None:
    """A suite with no conftest gets `capotel` and `otlp_sink` from the installed plugin."""
    (tmp_path / "test_user.py").write_text(USER_SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
