"""Swapping a backend is a collector config change only: the app's settings stay the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collector_fixtures import (
    BASE_CONFIG,
    OVERLAY_DIR,
    CollectorProcess,
    DownstreamCollector,
    OtlpData,
    run_burst,
    sender_env,
)
from tests.support import free_port, poll_until

pytestmark = pytest.mark.slow


def markers(data: OtlpData) -> dict[str, set[str]]:
    """Which burst markers arrived, per signal."""
    return {
        "traces": {str(s.attributes.get("e2e.marker")) for s in data.spans},
        "logs": {str(r.attributes.get("e2e_marker")) for r in data.logs},
        "metrics": {str(p.attributes.get("e2e.marker")) for p in data.metrics},
    }


def test_vendor_overlay_moves_all_signals_without_touching_the_app(
    collector_binary: Path, tmp_path: Path
) -> None:
    """Base config: data lands at the self-hosted stand-in; + vendor overlay: only at the vendor."""
    logs = tmp_path / "logs"
    # Stand-in for Jaeger (OTLP gRPC), Prometheus (/api/v1/otlp) and Loki (/otlp) at once.
    self_hosted = DownstreamCollector(
        collector_binary,
        logs,
        tmp_path / "self-hosted",
        name="self-hosted",
        metrics_path="/api/v1/otlp/v1/metrics",
        logs_path="/otlp/v1/logs",
    )
    vendor = DownstreamCollector(collector_binary, logs, tmp_path / "vendor", name="vendor")
    collector_env = {
        **self_hosted.backend_env(),
        "VENDOR_OTLP_ENDPOINT": vendor.http_url,
        "VENDOR_OTLP_HEADERS": '{"x-vendor-key": "k-123"}',
        "VENDOR_OTLP_COMPRESSION": "gzip",
    }
    # Same app settings for both runs: the collector keeps its address, only its config changes.
    grpc_port, http_port = free_port(), free_port()
    app_env = sender_env(f"http://127.0.0.1:{http_port}", "http/protobuf")
    configs = {"self-hosted": [BASE_CONFIG], "vendor": [BASE_CONFIG, OVERLAY_DIR / "vendor.yaml"]}
    try:
        self_hosted.start()
        vendor.start()
        for marker, config in configs.items():
            collector = CollectorProcess(
                collector_binary,
                config,
                log_dir=logs,
                storage_dir=tmp_path / f"storage-{marker}",
                name=f"collector-{marker}",
                env=collector_env,
                grpc_port=grpc_port,
                http_port=http_port,
            ).start()
            try:
                summary = run_burst(app_env, marker, "chenu-e2e-swap", "not-a-secret")
                assert summary["errors"] == 0, summary
                target = self_hosted if marker == "self-hosted" else vendor

                def arrived(target: DownstreamCollector = target, marker: str = marker) -> bool:
                    return all(marker in seen for seen in markers(target.received()).values())

                poll_until(
                    arrived,
                    timeout=30,
                    what=f"all three signals of the {marker} run at {target.name}",
                )
            finally:
                # A graceful stop flushes: after it, this config can send nothing more anywhere.
                collector.stop()
                print(f"--- {collector.name} ---\n{collector.output()[-2000:]}")
    finally:
        self_hosted.stop()
        vendor.stop()

    at_self_hosted = markers(self_hosted.received())
    at_vendor = markers(vendor.received())
    for signal in ("traces", "logs", "metrics"):
        assert "self-hosted" in at_self_hosted[signal], f"{signal} missing at the self-hosted stack"
        assert "vendor" not in at_self_hosted[signal], f"vendor-run {signal} leaked to self-hosted"
        assert "vendor" in at_vendor[signal], f"{signal} missing at the vendor"
        assert "self-hosted" not in at_vendor[signal], f"self-hosted {signal} leaked to the vendor"
    # The vendor's auth header from VENDOR_OTLP_HEADERS went out with the data.
    vendor_spans = vendor.received().spans
    assert vendor_spans
    assert {s.attributes.get("downstream.x-vendor-key") for s in vendor_spans} == {"k-123"}
