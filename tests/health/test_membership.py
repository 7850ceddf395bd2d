"""Membership: base host lists (snapshot or DNS) merged with active health, and exactly the
`update_endpoints` calls the engine receives; generations across reloads."""

from __future__ import annotations

import orjson
import trio
from meshcore.health.generation import HealthService
from meshcore.lifecycle.control_stats import ControlStats

from .fakes import BAD, HANG, OK, MaxRandom, ProbeBook, endpoint, engine_with, spec

A = endpoint("10.0.0.1", 80)
B = endpoint("10.0.0.2", 80)
C = endpoint("10.0.0.3", 80)


def healthy(ep: dict, ok: bool) -> dict:
    return {**ep, "healthy": ok}


async def start(service: HealthService, nursery, specs, bases):
    """What the server does: first round, apply the merged lists, commit."""
    generation = await service.prepare(nursery, specs, bases)
    applied = generation.membership.merged_all()
    service.engine.apply(_snapshot(applied))
    service.commit(generation, applied)
    return generation, applied


def _snapshot(endpoints: dict[str, list[dict]]) -> bytes:
    return orjson.dumps(
        {"clusters": [{"name": n, "endpoints": eps} for n, eps in endpoints.items()]}
    )


def make(book: ProbeBook, clusters: dict[str, list[dict]]):
    engine = engine_with(clusters)
    return HealthService(engine, ControlStats(), rng=MaxRandom(), probe_factory=book), engine


async def test_first_round_results_go_into_the_snapshot_then_only_changes_are_pushed(
    autojump_clock, nursery
):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.2", 80)] = [OK, OK, BAD, BAD, OK, OK]
    service, engine = make(book, {"svc": [A, B], "plain": [C]})
    _, applied = await start(service, nursery, (spec(),), {"svc": [A, B], "plain": [C]})
    assert applied == {"svc": [healthy(A, True), healthy(B, True)], "plain": [C]}
    assert engine.endpoint_updates == []
    await trio.sleep(2.5)  # B fails its check at 2 (a wrong answer: at once)
    assert engine.endpoint_updates == [("svc", [healthy(A, True), healthy(B, False)])]
    await trio.sleep(3)  # fails again at 3 (no change), passes at 4 (pending), 5 (healthy)
    assert engine.endpoint_updates == [
        ("svc", [healthy(A, True), healthy(B, False)]),
        ("svc", [healthy(A, True), healthy(B, True)]),
    ]


async def test_dns_changes_and_health_go_through_the_same_merge(autojump_clock, nursery):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.1", 80)] = [BAD]
    service, engine = make(book, {"svc": [A, B], "plain": []})
    await start(service, nursery, (spec(),), {"svc": [A, B], "plain": []})
    await trio.sleep(0.5)
    # DNS now answers B and C: C starts failing until its first check, A is dropped. The
    # host change is delivered at once; C passing its check right after is a health change
    # within the merge window: delivered a second later.
    service.publish("svc", [B, C])
    await trio.sleep(0.1)
    assert engine.endpoint_updates == [("svc", [healthy(B, True), healthy(C, False)])]
    await trio.sleep(1)
    assert engine.endpoint_updates == [
        ("svc", [healthy(B, True), healthy(C, False)]),
        ("svc", [healthy(B, True), healthy(C, True)]),
    ]
    assert len(book.checks("10.0.0.1", 80)) == 1  # A is no longer checked
    await trio.sleep(2)
    assert book.checks("10.0.0.1", 80) == [0]
    # A health change after the DNS update keeps the DNS list.
    book.probes[("10.0.0.3", 80)][0].script = [BAD]
    await trio.sleep(1)
    assert engine.endpoint_updates[-1] == ("svc", [healthy(B, True), healthy(C, False)])
    # A cluster without health checks gets the DNS list as is.
    service.publish("plain", [A])
    assert engine.endpoint_updates[-1] == ("plain", [A])
    assert service.host_status("plain", "10.0.0.1", 80) is None
    status = service.host_status("svc", "10.0.0.3", 80)
    assert status is not None and status.flags_text() == "/failed_active_hc"


async def test_eds_health_and_active_health_both_count(autojump_clock, nursery):
    sick = {**B, "healthy": False}
    service, engine = make(ProbeBook([OK]), {"svc": [A, sick]})
    _, applied = await start(service, nursery, (spec(),), {"svc": [A, sick]})
    assert applied["svc"] == [healthy(A, True), healthy(B, False)]
    status = service.host_status("svc", "10.0.0.2", 80)
    assert status is not None and status.flags_text() == "/failed_eds_health"
    assert status.health_status_json() == {"eds_health_status": "UNHEALTHY"}


async def test_changes_during_warming_are_pushed_at_commit(autojump_clock, nursery):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.2", 80)] = [OK, BAD]
    service, engine = make(book, {"svc": [A, B]})
    generation = await service.prepare(nursery, (spec(),), {"svc": [A, B]})
    applied = generation.membership.merged_all()
    await trio.sleep(1.5)  # B failed at 1, before the snapshot was applied
    assert engine.endpoint_updates == []
    engine.apply(_snapshot(applied))
    service.commit(generation, applied)
    assert engine.endpoint_updates == [("svc", [healthy(A, True), healthy(B, False)])]


async def test_reload_keeps_state_of_unchanged_checks_and_restarts_changed_ones(
    autojump_clock, nursery
):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.2", 80)] = [OK, BAD]
    service, engine = make(book, {"svc": [A, B], "other": [C]})
    bases = {"svc": [A, B], "other": [C]}
    old, _ = await start(service, nursery, (spec(), spec(cluster="other")), bases)
    await trio.sleep(1.5)  # B failed at 1
    new_other = spec(cluster="other", interval_ms=500)
    book.scripts[("10.0.0.3", 80)] = [HANG]
    started = trio.current_time()
    new, applied = await start(service, nursery, (spec(), new_other), bases)
    # "svc" kept its check: no first round for it; "other" changed: its host is new, and
    # its first check (hanging until the 2 s timeout) was waited for.
    assert trio.current_time() - started == 2
    assert (
        new.checkers["svc"].hosts[("10.0.0.2", 80)] is old.checkers["svc"].hosts[("10.0.0.2", 80)]
    )
    assert applied["svc"] == [healthy(A, True), healthy(B, False)]
    assert applied["other"] == [healthy(C, False)]
    old_probe = book.probes[("10.0.0.1", 80)][0]
    checks_before = len(old_probe.checks)
    await trio.sleep(3)
    assert len(old_probe.checks) == checks_before  # the old generation stopped
    assert len(book.probes[("10.0.0.1", 80)]) == 2  # the new one checks A
    assert service.control.gauge("cluster.svc.health_check.healthy") == 1
    # A reload without "other" drops its gauges.
    await start(service, nursery, (spec(),), {"svc": [A, B], "other": [C]})
    assert service.control.gauge("cluster.other.health_check.healthy") is None


async def test_health_changes_within_a_second_of_an_update_are_merged(autojump_clock, nursery):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.2", 80)] = [OK, BAD, OK, BAD, BAD, BAD, BAD, OK]
    service, engine = make(book, {"svc": [A, B]})
    check = spec(interval_ms=300, healthy_threshold=1)
    await start(service, nursery, (check,), {"svc": [A, B]})
    await trio.sleep(0.4)  # B failed at 0.3: the first update, delivered at once
    assert engine.endpoint_updates == [("svc", [healthy(A, True), healthy(B, False)])]
    # B passes at 0.6 (a change within a second of the last update: merged, due at 1.6)
    # and fails again at 0.9. At 1.6 the state is what was pushed: nothing is sent.
    await trio.sleep(1.3)
    assert len(engine.endpoint_updates) == 1
    # Passes at 2.1, within a second of the (empty) delivery at 1.6: due at 3.1.
    await trio.sleep(1.3)
    assert len(engine.endpoint_updates) == 1
    await trio.sleep(0.2)
    assert engine.endpoint_updates[1:] == [("svc", [healthy(A, True), healthy(B, True)])]
