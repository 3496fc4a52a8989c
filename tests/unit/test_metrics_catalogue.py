"""The metric catalogue: declared once, translated to Prometheus names, documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from chenu_otel.catalogue import (
    CATALOGUE,
    GROUPS,
    IDENTIFIER_KEYS,
    InstrumentKind,
    metrics_markdown,
    prometheus_name,
    spec,
)

REFERENCE = Path(__file__).resolve().parents[2] / "chenu_otel" / "METRICS.md"


def test_catalogue_has_at_least_forty_uniquely_named_instruments() -> None:
    """At least 40 instruments, each name declared once, every group populated."""
    names = [s.name for s in CATALOGUE]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert {s.group for s in CATALOGUE} == set(GROUPS)


def test_prometheus_names_are_unique() -> None:
    """Two metrics never collide after translation."""
    prom = [s.prometheus_name for s in CATALOGUE]
    assert len(set(prom)) == len(prom)


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("http.server.request.duration", "s", InstrumentKind.HISTOGRAM,
         "http_server_request_duration_seconds"),
        ("http.server.active_requests", "{request}", InstrumentKind.UP_DOWN_COUNTER,
         "http_server_active_requests"),
        ("http.server.response.body.size", "By", InstrumentKind.HISTOGRAM,
         "http_server_response_body_size_bytes"),
        ("gen_ai.client.token.usage", "{token}", InstrumentKind.HISTOGRAM,
         "gen_ai_client_token_usage"),
        ("chenu.agent.cost.usd", "{USD}", InstrumentKind.COUNTER, "chenu_agent_cost_usd_total"),
        ("chenu.errors", "{error}", InstrumentKind.COUNTER, "chenu_errors_total"),
        ("requests_total", "", InstrumentKind.COUNTER, "requests_total"),
        ("cpu.utilization", "1", InstrumentKind.GAUGE, "cpu_utilization_ratio"),
        ("budget.utilization", "1", InstrumentKind.HISTOGRAM, "budget_utilization"),
        ("net.io", "By/s", InstrumentKind.GAUGE, "net_io_bytes_per_second"),
        ("latency.seconds", "s", InstrumentKind.HISTOGRAM, "latency_seconds"),
        ("9lives", "ms", InstrumentKind.HISTOGRAM, "_9lives_milliseconds"),
    ],
)  # fmt: skip
def test_prometheus_name_follows_the_otlp_translation(
    name: str, unit: str, kind: InstrumentKind, expected: str
) -> None:
    """Dots to underscores, unit suffixes, annotations dropped, _total for counters only."""
    assert prometheus_name(name, unit, kind) == expected


def test_semconv_metrics_keep_semconv_units_and_buckets() -> None:
    """The semconv HTTP, DB and GenAI histograms carry the buckets the conventions advise."""
    http = spec("http.server.request.duration")
    assert (http.unit, http.buckets) == (
        "s",
        (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    )
    assert spec("db.client.operation.duration").buckets == (
        0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
    )  # fmt: skip
    assert spec("gen_ai.client.token.usage").unit == "{token}"
    assert "gen_ai.token.type" in spec("gen_ai.client.token.usage").attributes
    assert spec("gen_ai.client.operation.duration").buckets is not None
    assert all(s.buckets for s in CATALOGUE if s.kind is InstrumentKind.HISTOGRAM)


def test_no_identifier_is_an_allowed_metric_attribute() -> None:
    """User, thread, run and request identifiers are in no allow-list."""
    for s in CATALOGUE:
        assert not set(s.attributes) & IDENTIFIER_KEYS, s.name


def test_cache_result_makes_a_hit_ratio_computable() -> None:
    """Cache operations carry their result, so hit / (hit + miss) is one PromQL expression."""
    assert "chenu.cache.result" in spec("chenu.cache.operations").attributes


def test_unknown_metric_is_a_clear_error() -> None:
    """Asking for a metric that is not declared names it."""
    with pytest.raises(KeyError, match=r"http\.server\.nope"):
        spec("http.server.nope")


def test_committed_reference_matches_the_catalogue() -> None:
    """chenu_otel/METRICS.md is exactly what the generator prints (regenerate with the CLI)."""
    assert REFERENCE.read_text(encoding="utf-8") == metrics_markdown(), (
        "chenu_otel/METRICS.md is stale: run `chenu-otel metrics --write chenu_otel/METRICS.md`"
    )
    for s in CATALOGUE:
        assert f"`{s.prometheus_name}`" in REFERENCE.read_text(encoding="utf-8")


def test_prometheus_names_pass_promtool_suffix_rules() -> None:
    """Only histograms end in _count/_sum/_bucket and only counters in _total (promtool lint)."""
    for s in CATALOGUE:
        name = s.prometheus_name
        if s.kind is not InstrumentKind.HISTOGRAM:
            assert not name.endswith(("_count", "_sum", "_bucket")), name
        if s.kind is not InstrumentKind.COUNTER:
            assert not name.endswith("_total"), name
