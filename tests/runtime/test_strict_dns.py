"""STRICT_DNS resolution and refresh, with a scripted resolver and trio's MockClock."""

from __future__ import annotations

import math

import orjson
import pytest
import trio
from meshcore.discovery.strict_dns import DnsError, StrictDns, system_resolver
from meshcore.lifecycle.control_stats import ControlStats

from tests.runtime.fakes import FakeDnsCluster, FakeDnsHost, FakeEngine, cluster


class ScriptedResolver:
    """Answers each hostname from a list of results, one per lookup (the last repeats); an
    exception in the list is raised; "hang" never answers."""

    def __init__(self, script: dict[str, list[object]]) -> None:
        self.script = script
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, hostname: str, family: str) -> list[str]:
        self.calls.append((hostname, family))
        answers = self.script[hostname]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer == "hang":
            await trio.sleep(math.inf)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, list)
        return answer


SVC = FakeDnsCluster(
    "svc",
    (FakeDnsHost("a.example", 8080, 3), FakeDnsHost("b.example", 9090)),
    refresh_rate_s=5.0,
)


def make(
    script: dict[str, list[object]],
) -> tuple[StrictDns, FakeEngine, ControlStats, ScriptedResolver]:
    engine = FakeEngine()
    engine.apply(orjson.dumps({"clusters": [cluster("svc")]}))
    stats = ControlStats()
    resolver = ScriptedResolver(script)
    return StrictDns(engine, stats, resolver, timeout_s=2.0), engine, stats, resolver


async def test_initial_resolution_builds_endpoints_per_address():
    dns, _, stats, resolver = make(
        {"a.example": [["10.0.0.1", "10.0.0.2"]], "b.example": [["10.0.0.3"]]}
    )
    resolved = await dns.resolve_all([SVC])
    assert resolved == {
        "svc": [
            {"address": "10.0.0.1", "port": 8080, "weight": 3},
            {"address": "10.0.0.2", "port": 8080, "weight": 3},
            {"address": "10.0.0.3", "port": 9090, "weight": 1},
        ]
    }
    assert sorted(resolver.calls) == [("a.example", "v4"), ("b.example", "v4")]
    assert stats.get("cluster.svc.update_attempt") == 2
    assert stats.get("cluster.svc.update_success") == 2
    assert dns.hostname_of("svc", "10.0.0.2", 8080) == "a.example"
    assert dns.hostname_of("svc", "10.0.0.9", 8080) == ""


async def test_update_stats_are_named_by_alt_stat_name():
    dns, _, stats, _ = make({"a.example": [["10.0.0.1"]], "b.example": [OSError("down")]})
    renamed = FakeDnsCluster("svc", SVC.hosts, alt_stat_name="svc_stats")
    resolved = await dns.resolve_all([renamed])
    assert list(resolved) == ["svc"]  # endpoints still go to the cluster by its name
    assert stats.get("cluster.svc_stats.update_attempt") == 2
    assert stats.get("cluster.svc_stats.update_success") == 1
    assert stats.get("cluster.svc_stats.update_failure") == 1
    assert stats.get("cluster.svc.update_attempt") == 0


async def test_endpoints_keep_their_host_priority():
    dns, _, _, _ = make({"a.example": [["10.0.0.1"]], "b.example": [["10.0.0.3"]]})
    failover = FakeDnsCluster(
        "svc",
        (FakeDnsHost("a.example", 8080), FakeDnsHost("b.example", 9090, priority=1)),
        refresh_rate_s=5.0,
    )
    resolved = await dns.resolve_all([failover])
    assert resolved == {
        "svc": [
            {"address": "10.0.0.1", "port": 8080, "weight": 1},
            {"address": "10.0.0.3", "port": 9090, "weight": 1, "priority": 1},
        ]
    }


async def test_a_cluster_that_never_resolved_is_left_out():
    dns, _, stats, _ = make(
        {"a.example": [DnsError("a.example: no address")], "b.example": [DnsError("nx")]}
    )
    assert await dns.resolve_all([SVC]) == {}
    assert stats.get("cluster.svc.update_failure") == 2


async def test_refresh_pushes_only_changes_and_keeps_last_good_on_failure(autojump_clock):
    dns, engine, stats, _ = make(
        {
            # initial, same, changed, failure, hang (timeout), same as last good
            "a.example": [
                ["10.0.0.1"],
                ["10.0.0.1"],
                ["10.0.0.7"],
                DnsError("SERVFAIL"),
                "hang",
                ["10.0.0.7"],
            ],
            "b.example": [["10.0.0.3"]],
        }
    )  # fmt: skip
    initial = await dns.resolve_all([SVC])
    async with trio.open_nursery() as nursery:
        scope = await nursery.start(dns.refresh, (SVC,), initial)
        await trio.sleep(5.5)  # first refresh: nothing changed
        assert engine.endpoint_updates == []
        await trio.sleep(5)  # second: a.example moved
        assert engine.endpoint_updates == [
            (
                "svc",
                [
                    {"address": "10.0.0.7", "port": 8080, "weight": 3},
                    {"address": "10.0.0.3", "port": 9090, "weight": 1},
                ],
            )
        ]
        await trio.sleep(5)  # third: a.example fails, its last good address stays
        await trio.sleep(5)  # fourth (t=20): a.example times out at t=22
        await trio.sleep(7)  # fifth (t=27, 5 s after the last lookup ended): same again
        assert len(engine.endpoint_updates) == 1
        scope.cancel()
    assert stats.get("cluster.svc.update_attempt") == 12
    assert stats.get("cluster.svc.update_failure") == 2
    assert stats.get("cluster.svc.update_success") == 10
    # Same answer as the host's last good one: b every refresh, a in rounds 1 and 5.
    assert stats.get("cluster.svc.update_no_rebuild") == 7


async def test_refresh_stops_when_the_engine_no_longer_has_the_cluster(autojump_clock):
    dns, engine, _, _ = make(
        {"a.example": [["10.0.0.1"], ["10.0.0.2"]], "b.example": [["10.0.0.3"]]}
    )
    initial = await dns.resolve_all([SVC])
    engine.apply(orjson.dumps({"clusters": []}))
    async with trio.open_nursery() as nursery:
        await nursery.start(dns.refresh, (SVC,), initial)
        # The loop ends on the KeyError instead of raising; the nursery then closes.
    assert engine.endpoint_updates == []


async def test_refresh_sets_are_replaced_by_cancelling_their_scope(autojump_clock):
    dns, engine, _, resolver = make({"a.example": [["10.0.0.1"]], "b.example": [["10.0.0.3"]]})
    async with trio.open_nursery() as nursery:
        scope = await nursery.start(dns.refresh, (SVC,), {})
        await trio.sleep(5.5)
        assert len(engine.endpoint_updates) == 1  # nothing had been pushed before
        scope.cancel()
        calls = len(resolver.calls)
        await trio.sleep(60)
        assert len(resolver.calls) == calls
        assert dns.hostname_of("svc", "10.0.0.1", 8080) == "a.example"
        # A reload without the cluster forgets its addresses and hostnames.
        await nursery.start(dns.refresh, (), {})
        assert dns.hostname_of("svc", "10.0.0.1", 8080) == ""
        nursery.cancel_scope.cancel()


async def test_system_resolver_resolves_localhost():
    assert await system_resolver("localhost", "v4") == ["127.0.0.1"]
    assert await system_resolver("192.0.2.10", "v4") == ["192.0.2.10"]
    assert await system_resolver("192.0.2.10", "auto") == ["192.0.2.10"]


async def test_system_resolver_errors_name_the_host():
    with pytest.raises(DnsError, match="^no-such-host.invalid: "):
        await system_resolver("no-such-host.invalid", "v4")
    with pytest.raises(DnsError, match="unknown address family 'v5'"):
        await system_resolver("localhost", "v5")
