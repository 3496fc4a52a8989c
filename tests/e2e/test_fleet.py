"""The agent -> gateway fleet on loopback with real binaries (chenu_otel.stack.fleet).

Two apps (frontend calls backend) -> two agents -> three gateways (static resolver) -> Jaeger v2
and Prometheus 3. Phase 1 runs steady traffic and checks completeness, routing, sampling and
span-derived counts. Phase 2 SIGKILLs one gateway while traffic flows, restarts it, and measures
what the fail-over cost. Figures are printed (run with -s to see them).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chenu_otel.stack.files import StackFiles
from chenu_otel.stack.fleet import (
    BACKEND,
    FRONTEND,
    Fleet,
    RequestRecord,
    SamplingSettings,
    mode_mix,
)
from chenu_otel.stack.fleet_report import Observation, accepted_spans, running_fleet, settle
from tests.e2e.fleet import HashRing, completeness, expected_keep, fleet_binaries, share_keeps
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SAMPLING = SamplingSettings(percentage=25.0, latency_threshold_ms=300, decision_wait="2s")
STEADY_REQUESTS = 320
STEADY_RATE = 25.0
FAILOVER_REQUESTS = 400
FAILOVER_RATE = 20.0
KILLED = 1  # index of the gateway that is SIGKILLed in phase 2
OUTAGE_AFTER_S = 5.0  # traffic time before the kill
OUTAGE_S = 5.0  # how long the gateway stays dead


@dataclass
class Phase:
    records: list[RequestRecord]
    seen: Observation


@dataclass
class FailoverPhase(Phase):
    before: Observation  # the steady phase's final observation
    killed_endpoint: str
    kill_at: float  # time.monotonic()
    restart_at: float
    survivors_accepted_during_outage: list[int]  # spans accepted by each surviving gateway


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with running_fleet(
        tmp_path_factory.mktemp("fleet"), fleet_binaries(), StackFiles(REPO_ROOT), sampling=SAMPLING
    ) as running:
        yield running


def ring_of(fleet: Fleet) -> HashRing:
    """The agents' ring, from the gateway list exactly as the agents are given it."""
    return HashRing(fleet.gateway_endpoints)


@pytest.fixture(scope="module")
def steady(fleet: Fleet) -> Phase:
    modes = mode_mix(STEADY_REQUESTS, error_share=0.1, slow_share=0.1, seed=9)
    records = fleet.drive(modes, rate_per_s=STEADY_RATE)
    return Phase(records, settle(fleet))


@pytest.fixture(scope="module")
def failover(fleet: Fleet, steady: Phase) -> FailoverPhase:
    modes = mode_mix(FAILOVER_REQUESTS, error_share=0.1, slow_share=0.1, seed=10)
    records: list[RequestRecord] = []
    traffic = threading.Thread(
        target=lambda: records.extend(fleet.drive(modes, rate_per_s=FAILOVER_RATE))
    )
    survivors = [g for i, g in enumerate(fleet.gateways) if i != KILLED]
    traffic.start()
    try:
        time.sleep(OUTAGE_AFTER_S)  # let traffic flow before the fault; not a synchronisation
        at_kill = [accepted_spans(g) for g in survivors]
        kill_at = time.monotonic()
        fleet.kill_gateway(KILLED)
        time.sleep(OUTAGE_S)  # the outage itself
        at_restart = [accepted_spans(g) for g in survivors]
        restart_at = time.monotonic()
        fleet.restart_gateway(KILLED)
    finally:
        traffic.join(timeout=120)
    assert not traffic.is_alive(), "the traffic thread did not finish"
    return FailoverPhase(
        records=records,
        seen=settle(fleet),
        before=steady.seen,
        killed_endpoint=fleet.gateway_endpoints[KILLED],
        kill_at=kill_at,
        restart_at=restart_at,
        survivors_accepted_during_outage=[b - a for a, b in zip(at_kill, at_restart, strict=True)],
    )


def served_ok(records: list[RequestRecord]) -> list[RequestRecord]:
    failed = [r for r in records if r.error or not r.trace_id]
    assert not failed, f"{len(failed)} requests failed at the app, e.g. {failed[:3]}"
    return records


# --- phase 1: steady traffic -----------------------------------------------------------------


def test_every_trace_in_jaeger_is_complete_across_both_services(steady: Phase) -> None:
    """Each trace Jaeger holds has every span both apps emitted for it, under one trace id,
    and no span twice."""
    records = served_ok(steady.records)
    sent = {r.trace_id for r in records}
    traces = steady.seen.traces
    assert traces, "Jaeger holds no trace of the fleet apps"
    assert set(traces) <= sent, f"traces nobody sent: {sorted(set(traces) - sent)[:3]}"
    incomplete = {
        tid: (t.span_count, steady.seen.emitted[tid], sorted(t.services), t.duplicates)
        for tid, t in traces.items()
        if completeness(t, steady.seen.emitted[tid]) != "complete" or t.duplicates
    }
    print(f"\n[fleet] steady: {len(traces)} traces in Jaeger, all complete: {not incomplete}")
    assert not incomplete, f"(spans in Jaeger, spans emitted, services, duplicates): {incomplete}"
    assert all(steady.seen.emitted[tid] == 4 for tid in sent), "the apps emit 4 spans per trace"


def test_each_trace_went_to_exactly_one_gateway_chosen_by_trace_id(
    fleet: Fleet, steady: Phase
) -> None:
    """Spans accepted by each gateway equal the spans of the traces the agents' hash ring maps
    to it: no trace was split across gateways, although its two halves came from two agents."""
    ring = ring_of(fleet)
    predicted: Counter[str] = Counter()
    for trace_id, spans in steady.seen.emitted.items():
        predicted[ring.endpoint_for(trace_id)] += spans
    accepted = dict(zip(fleet.gateway_endpoints, steady.seen.accepted, strict=True))
    print(f"\n[fleet] spans per gateway: accepted {accepted}, predicted by trace id {predicted}")
    assert accepted == dict(predicted)
    assert all(accepted.values()), "every gateway got a share of the traces"


def test_every_error_and_slow_trace_is_kept(steady: Phase) -> None:
    records = served_ok(steady.records)
    errors = [r for r in records if r.mode == "error"]
    slow = [r for r in records if r.mode == "slow"]
    assert errors and slow
    assert all(r.status == 500 for r in errors) and all(r.status == 200 for r in slow)
    for kind, group in (("error", errors), ("slow", slow)):
        missing = [
            r.trace_id
            for r in group
            if completeness(steady.seen.traces.get(r.trace_id), 4) != "complete"
        ]
        print(f"\n[fleet] {kind} traces kept: {len(group) - len(missing)}/{len(group)}")
        assert not missing, f"{kind} traces not kept whole: {missing}"


def test_the_rest_is_kept_at_the_configured_share(steady: Phase) -> None:
    """Of the traces no other policy keeps, the share kept is within 3 binomial standard
    deviations of OTELCOL_TAIL_SAMPLING_PERCENTAGE, and they are exactly the trace ids whose
    hash falls in the share (the policy is deterministic per trace id)."""
    records = served_ok(steady.records)
    rest = [r for r in records if r.mode == "ok" and expected_keep(r, SAMPLING) is not None]
    ambiguous = [r for r in records if expected_keep(r, SAMPLING) is None]
    kept = {r.trace_id for r in rest if r.trace_id in steady.seen.traces}
    predicted = {r.trace_id for r in rest if share_keeps(r.trace_id, SAMPLING.percentage)}
    share = len(kept) / len(rest)
    configured = SAMPLING.percentage / 100
    tolerance = 3 * math.sqrt(configured * (1 - configured) / len(rest))
    print(
        f"\n[fleet] rest: kept {len(kept)}/{len(rest)} = {share:.3f}, configured {configured}, "
        f"tolerance ±{tolerance:.3f} (3 sigma); {len(ambiguous)} near-threshold ok requests "
        "left out"
    )
    assert abs(share - configured) <= tolerance
    assert kept == predicted, (
        f"kept but not predicted {sorted(kept - predicted)[:3]}, "
        f"predicted but not kept {sorted(predicted - kept)[:3]}"
    )
    assert len(ambiguous) < len(records) / 10, "the machine was too slow to tell fast from slow"


def test_span_metrics_count_every_request_not_only_the_kept_ones(steady: Phase) -> None:
    """span_metrics runs before tail_sampling: its server-span counts in Prometheus equal the
    requests each app served, while Jaeger holds only the kept share."""
    seen = steady.seen
    print(
        f"\n[fleet] served {seen.served}; span_metrics in Prometheus {seen.span_metric_calls}; "
        f"app metrics via agents {seen.app_metric_requests}; traces kept {len(seen.traces)}"
    )
    for service in (FRONTEND, BACKEND):
        assert seen.served[service] == STEADY_REQUESTS
        assert seen.span_metric_calls[service] == seen.served[service], service
        # App metrics go from the agents straight to Prometheus.
        assert seen.app_metric_requests[service] == seen.served[service], service
    assert len(seen.traces) < STEADY_REQUESTS / 2, "tail sampling dropped nothing"


# --- phase 2: one gateway SIGKILLed and restarted under traffic ------------------------------


def test_failover_apps_never_notice_and_survivors_keep_receiving(failover: FailoverPhase) -> None:
    """No request fails at the apps; while one gateway is dead the others keep accepting their
    share, and the restarted gateway receives again."""
    served_ok(failover.records)
    print(
        f"\n[fleet] spans accepted by the surviving gateways during the "
        f"{OUTAGE_S:.0f} s outage: {failover.survivors_accepted_during_outage}"
    )
    assert all(count > 0 for count in failover.survivors_accepted_during_outage)
    assert failover.seen.accepted[KILLED] > 0, "the restarted gateway received nothing"


def test_failover_loss_is_confined_to_traces_in_flight_at_the_kill(
    fleet: Fleet, failover: FailoverPhase
) -> None:
    """Every trace a policy must keep is complete in Jaeger unless the killed gateway held it
    undecided when it died: loss only on that gateway, only for traces that started within
    decision_wait (+ slack) before the kill. Traces sent while it was down were held by the
    agents and delivered after the restart."""
    ring = ring_of(fleet)
    seen = failover.seen
    decision_wait = float(SAMPLING.decision_wait.rstrip("s"))
    window = (failover.kill_at - decision_wait - 3.0, failover.kill_at + 1.0)
    outcome: Counter[str] = Counter()
    unexpected = []
    duplicates = 0
    for record in served_ok(failover.records):
        trace = seen.traces.get(record.trace_id)
        duplicates += trace.duplicates if trace else 0
        if not expected_keep(record, SAMPLING):
            continue
        on_killed = ring.endpoint_for(record.trace_id) == failover.killed_endpoint
        state = completeness(trace, seen.emitted[record.trace_id])
        phase = (
            "before-kill"
            if record.started < failover.kill_at
            else "outage"
            if record.started < failover.restart_at
            else "after-restart"
        )
        outcome[f"{'killed' if on_killed else 'survivor'}/{phase}/{state}"] += 1
        in_window = window[0] <= record.started <= window[1]
        if state != "complete" and not (on_killed and in_window):
            unexpected.append((record.trace_id, record.mode, phase, state, on_killed))
    lost = sum(n for key, n in outcome.items() if not key.endswith("/complete"))
    kept_on_killed = sum(n for key, n in outcome.items() if key.startswith("killed/"))
    print(
        f"\n[fleet] fail-over: {len(failover.records)} requests, traces to keep by gateway/phase/"
        f"state: {dict(sorted(outcome.items()))}; lost or partial {lost} of {kept_on_killed} "
        f"on the killed gateway; duplicate spans in Jaeger {duplicates}"
    )
    assert not unexpected, f"incomplete outside the kill window: {unexpected[:5]}"
    assert outcome["killed/outage/complete"] > 0, "nothing sent during the outage arrived"
    assert outcome["killed/after-restart/complete"] > 0


def test_failover_span_metrics_lose_at_most_the_killed_gateways_last_flush(
    fleet: Fleet, failover: FailoverPhase
) -> None:
    """span_metrics counts of the fail-over phase miss at most the requests the killed gateway
    counted since its last flush (1 s here), and app metrics, which go agent -> Prometheus,
    lose nothing."""
    ring = ring_of(fleet)
    seen, before = failover.seen, failover.before
    near_kill = sum(
        1
        for r in failover.records
        if ring.endpoint_for(r.trace_id) == failover.killed_endpoint
        and failover.kill_at - 3.0 <= r.started <= failover.kill_at + 1.0
    )
    for service in (FRONTEND, BACKEND):
        served = seen.served[service] - before.served[service]
        counted = seen.span_metric_calls[service] - before.span_metric_calls[service]
        app_counted = seen.app_metric_requests[service] - before.app_metric_requests[service]
        print(
            f"\n[fleet] fail-over {service}: served {served}, span_metrics counted {counted:.0f} "
            f"(missing {served - counted:.0f}, bound {near_kill}), app metrics {app_counted:.0f}"
        )
        assert served == FAILOVER_REQUESTS
        assert abs(served - counted) <= near_kill, service
        assert app_counted == served, service
