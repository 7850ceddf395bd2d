"""A cluster's check loop under trio's MockClock with scripted probes: when checks run,
thresholds, intervals, timeouts, traffic, jitter, stats and the first round."""

from __future__ import annotations

import pytest
import trio
from meshcore.health.checker import ClusterChecker
from meshcore.health.state import Failure, Outcome
from meshcore.health.stats import ClusterHealthStats
from meshcore.health.traffic import TrafficWatch
from meshcore.lifecycle.control_stats import ControlStats

from .fakes import BAD, HANG, OK, REFUSED, MaxRandom, ProbeBook, engine_with, spec

A = ("10.0.0.1", 80)
B = ("10.0.0.2", 80)


class Rig:
    def __init__(self, book: ProbeBook, traffic: bool = True, rng=None, **spec_fields):
        self.engine = engine_with({"svc": []}, traffic=traffic)
        self.control = ControlStats()
        self.changes: list[tuple[float, bool]] = []
        self.book = book
        self.checker = ClusterChecker(
            spec(**spec_fields),
            ClusterHealthStats(self.control, "svc"),
            TrafficWatch(self.engine),
            self._changed,
            rng=rng or MaxRandom(),
            probe_factory=book,
        )

    def _changed(self) -> None:
        self.changes.append((trio.current_time(), self.checker.is_failed(A)))

    def stat(self, name: str) -> int:
        return self.control.get(f"cluster.svc.health_check.{name}")

    def gauge(self, name: str) -> int | None:
        return self.control.gauge(f"cluster.svc.health_check.{name}")


async def run_for(rig: Rig, seconds: float, hosts=(A,)) -> None:
    rig.checker.sync(list(hosts))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.checker.run, trio.Event())
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def test_first_check_at_once_then_every_interval(autojump_clock):
    rig = Rig(ProbeBook([OK]))
    await run_for(rig, 3.5)
    assert rig.book.checks(*A) == [0, 1, 2, 3]
    assert (rig.stat("attempt"), rig.stat("success"), rig.stat("failure")) == (4, 4, 0)
    assert rig.gauge("healthy") == 1 and rig.gauge("degraded") == 0
    assert rig.changes == [(0, False)]  # failed -> healthy at the first check
    assert not rig.checker.is_failed(A)


async def test_thresholds_and_interval_choice(autojump_clock):
    book = ProbeBook()
    book.scripts[A] = [OK, BAD, BAD, OK, OK, REFUSED, REFUSED, OK]
    rig = Rig(
        book,
        unhealthy_interval_ms=3000,
        healthy_edge_interval_ms=500,
        unhealthy_edge_interval_ms=200,
    )
    await run_for(rig, 12.3)
    # 0 pass (healthy) +1; 1 wrong answer: unhealthy at once +3; 4 still failing +3;
    # 7 pass, pending (healthy_threshold 2) +0.5 (healthy edge); 7.5 pass: healthy +1;
    # 8.5 refused, pending (unhealthy_threshold 2) +0.2 (unhealthy edge); 8.7 refused:
    # unhealthy +3; 11.7 pass, pending +0.5; 12.2 pass: healthy.
    assert book.checks(*A) == pytest.approx([0, 1, 4, 7, 7.5, 8.5, 8.7, 11.7, 12.2])
    assert [(round(t, 3), failed) for t, failed in rig.changes] == [
        (0, False),
        (1, True),
        (7.5, False),
        (8.7, True),
        (12.2, False),
    ]
    assert rig.stat("failure") == 4 and rig.stat("network_failure") == 2


async def test_no_traffic_interval_until_the_cluster_has_a_connection(autojump_clock):
    rig = Rig(ProbeBook([OK]), traffic=False, no_traffic_interval_ms=10_000)
    rig.checker.sync([A])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.checker.run, trio.Event())
        await trio.sleep(15)
        assert rig.book.checks(*A) == [0, 10]
        rig.engine.stats_doc["counters"] = {"cluster.svc.upstream_cx_total": 3}
        await trio.sleep(6.5)
        nursery.cancel_scope.cancel()
    # The check at 20 reads the traffic: from then on `interval` (1 s).
    assert rig.book.checks(*A) == [0, 10, 20, 21]


async def test_a_timeout_is_a_network_failure_and_flags_the_host(autojump_clock):
    book = ProbeBook()
    book.scripts[A] = [HANG, OK, OK]
    rig = Rig(book, timeout_ms=2000, healthy_threshold=1)
    rig.checker.sync([A])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.checker.run, trio.Event())
        await trio.sleep(2.5)
        health = rig.checker.hosts[A]
        assert health.failed and health.timed_out
        assert health.flags_text() == "/failed_active_hc/active_hc_timeout"
        assert (rig.stat("failure"), rig.stat("network_failure")) == (1, 1)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    # hang at 0, timed out at 2, next check at 2 + unhealthy_interval (1): passes
    assert book.checks(*A) == [0, 3]
    assert not rig.checker.hosts[A].failed
    assert book.probes[A][0].closes >= 1  # the timed-out connection was dropped


async def test_jitter_is_added_to_each_interval(autojump_clock):
    rig = Rig(ProbeBook([OK]), interval_jitter_ms=500, interval_jitter_percent=10)
    await run_for(rig, 3.5)
    # 1000 + (10% of 1000 - 1) + (500 - 1) with the largest draws
    assert rig.book.checks(*A) == pytest.approx([0, 1.598, 3.196])


async def test_initial_jitter_delays_only_the_first_check(autojump_clock):
    rig = Rig(ProbeBook([OK]), initial_jitter_ms=700)
    await run_for(rig, 2)
    assert rig.book.checks(*A) == pytest.approx([0.699, 1.699])


async def test_first_round_ends_after_as_many_results_as_hosts(autojump_clock):
    # Envoy counts check results, from any host: A's second result stands in for B's.
    book = ProbeBook()
    book.scripts[B] = [HANG]
    rig = Rig(book, timeout_ms=5000)
    rig.checker.sync([A, B])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.checker.run, trio.Event())
        await rig.checker.first_round.wait()
        assert trio.current_time() == 1
        assert rig.checker.is_failed(B) and not rig.checker.is_failed(A)
        assert rig.gauge("healthy") == 1
        nursery.cancel_scope.cancel()


async def test_first_round_waits_for_slow_hosts_when_no_other_answers(autojump_clock):
    rig = Rig(ProbeBook([HANG]), timeout_ms=5000)
    rig.checker.sync([A, B])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.checker.run, trio.Event())
        await rig.checker.first_round.wait()
        assert trio.current_time() == 5
        nursery.cancel_scope.cancel()


async def test_removed_hosts_stop_being_checked_and_new_ones_start_failed(autojump_clock):
    rig = Rig(ProbeBook([OK]))
    rig.checker.sync([A])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.checker.run, trio.Event())
        await trio.sleep(1.5)
        rig.checker.sync([B])
        assert rig.checker.is_failed(B)  # until its first check
        assert rig.gauge("healthy") == 0
        await trio.sleep(2.2)
        nursery.cancel_scope.cancel()
    assert rig.book.checks(*A) == [0, 1]
    assert rig.book.checks(*B) == [1.5, 2.5, 3.5]
    assert A not in rig.checker.hosts and rig.gauge("healthy") == 1


async def test_an_idle_connection_outcome_counts_without_an_attempt(autojump_clock):
    book = ProbeBook([OK])
    book.idle[A] = [(0.5, Outcome.fail(Failure.NETWORK, "connection closed by the host"))]
    rig = Rig(book, unhealthy_threshold=1)
    await run_for(rig, 1.6)
    # pass at 0, host closed the kept connection at 0.5 (failure, unhealthy), next check
    # 0.5 + unhealthy_interval: passes but pending (healthy_threshold 2)
    assert book.checks(*A) == [0, 1.5]
    assert (rig.stat("attempt"), rig.stat("failure"), rig.stat("network_failure")) == (2, 1, 1)
    assert rig.checker.is_failed(A)


async def test_adopted_hosts_keep_state_and_wait_for_go(autojump_clock):
    old = Rig(ProbeBook([OK]))
    await run_for(old, 2.5)  # checks at 0, 1, 2; next at 3
    new = Rig(ProbeBook([OK]))
    new.checker.adopt(old.checker, [A, B])
    new.checker.sync([A, B])
    assert new.checker.hosts[A] is old.checker.hosts[A]
    go = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(new.checker.run, go)
        await new.checker.first_round.wait()  # only B (new) is waited for
        assert new.book.checks(*B) == [2.5] and new.book.checks(*A) == []
        await trio.sleep(1)
        assert new.book.checks(*A) == []
        go.set()
        await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert new.book.checks(*A) == [3.5]  # its schedule (3) had passed: checked at once
