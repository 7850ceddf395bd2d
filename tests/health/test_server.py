"""The server wires health checking in: the first round before the snapshot is applied,
pushes while live, DNS answers merged with health, reloads, admin `/clusters` and stats."""

from __future__ import annotations

from itertools import pairwise

import orjson
import trio
from meshcore.admin import clusters_view
from meshcore.admin.handlers import AdminApp, AdminContext
from meshcore.admin.server import Request
from meshcore.app import ReadyInfo, Server
from meshcore.health.generation import HealthService
from meshcore.lifecycle.state import Phase, ServerOptions

from tests.runtime.fakes import FakeConfig, FakeDnsCluster, FakeDnsHost, FakeEngine, cluster

from .fakes import BAD, HANG, OK, MaxRandom, ProbeBook, endpoint, spec

A = endpoint("10.0.0.1", 80)
B = endpoint("10.0.0.2", 80)


def healthy(ep: dict, ok: bool) -> dict:
    return {**ep, "healthy": ok}


def mesh_config(*checks, dns=(), clusters=None) -> FakeConfig:
    snapshot = {
        "listeners": [],
        "clusters": clusters or [cluster("svc", [A, B]), cluster("plain", [A])],
    }
    return FakeConfig(snapshot=snapshot, dns_clusters=dns, health_checks=checks)


class Rig:
    def __init__(self, book: ProbeBook, *configs: FakeConfig, resolver=None) -> None:
        self.engine = FakeEngine()
        self.book = book
        self.configs = list(configs)
        self.ready_send, self.ready = trio.open_memory_channel[ReadyInfo](1)
        kwargs = {"resolver": resolver} if resolver else {}
        self.server = Server(
            self.engine,
            lambda: self.configs.pop(0),
            ServerOptions(config_path="mesh.yaml", concurrency=1),
            on_ready=self.ready_send.send_nowait,
            make_health=lambda engine, control: HealthService(
                engine, control, rng=MaxRandom(), probe_factory=book
            ),
            **kwargs,
        )

    def stats(self):
        return self.server.stats.snapshot()


async def test_startup_waits_for_the_first_checks_and_applies_their_results(
    nursery, autojump_clock
):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.2", 80)] = [HANG, OK]
    rig = Rig(book)
    nursery.start_soon(rig.server.serve, mesh_config(spec(timeout_ms=3000)))
    await trio.sleep(0.5)
    assert rig.server.state.phase is Phase.INITIALIZING and rig.engine.applied == []
    await rig.ready.receive()
    # Two results (A's at 0 and 1) for two hosts end the first round, as in Envoy; B,
    # still unanswered, starts failing.
    assert trio.current_time() == 1
    assert rig.server.state.phase is Phase.LIVE
    clusters = {c["name"]: c for c in rig.engine.current["clusters"]}
    assert clusters["svc"]["endpoints"] == [healthy(A, True), healthy(B, False)]
    assert clusters["plain"]["endpoints"] == [A]
    await trio.sleep(4.5)  # B times out at 3, passes at 4 (pending) and 5 (healthy)
    assert rig.engine.endpoint_updates == [("svc", [healthy(A, True), healthy(B, True)])]
    snap = rig.stats()
    assert snap.counters["cluster.svc.health_check.attempt"] == 9  # A: 0..5, B: 0, 4, 5
    assert snap.counters["cluster.svc.health_check.network_failure"] == 1
    assert snap.gauges["cluster.svc.health_check.healthy"] == 2
    rig.server.terminate("test")


async def test_dns_answers_are_merged_with_health(nursery, autojump_clock):
    class Resolver:
        answers = [["10.0.0.1"], ["10.0.0.1", "10.0.0.2"]]

        async def __call__(self, hostname: str, family: str) -> list[str]:
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    book = ProbeBook([OK])
    book.scripts[("10.0.0.1", 80)] = [OK, BAD]
    dns = FakeDnsCluster("svc", (FakeDnsHost("svc.example", 80),), refresh_rate_s=1.5)
    cfg = mesh_config(spec(), dns=(dns,), clusters=[cluster("svc")])
    rig = Rig(book, resolver=Resolver())
    nursery.start_soon(rig.server.serve, cfg)
    await rig.ready.receive()
    assert rig.engine.current["clusters"][0]["endpoints"] == [healthy(A, True)]
    await trio.sleep(3)
    # 1: A fails its check (pushed); 1.5: DNS adds B (pushed at once), failing until its
    # check passes right away (a health change merged until 2.5).
    assert rig.engine.endpoint_updates == [
        ("svc", [healthy(A, False)]),
        ("svc", [healthy(A, False), healthy(B, False)]),
        ("svc", [healthy(A, False), healthy(B, True)]),
    ]
    rig.server.terminate("test")


async def test_reload_keeps_health_and_a_rejected_snapshot_keeps_the_old_checks(
    nursery, autojump_clock
):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.2", 80)] = [OK, BAD]
    first = mesh_config(spec())
    rig = Rig(book, mesh_config(spec()), mesh_config(spec(interval_ms=300)))
    nursery.start_soon(rig.server.serve, first)
    await rig.ready.receive()
    await trio.sleep(1.5)  # B failed at 1
    b_health = rig.server.health.current.checkers["svc"].hosts[("10.0.0.2", 80)]
    await rig.server.reload()  # same check: B keeps its state
    assert rig.server.health.current.checkers["svc"].hosts[("10.0.0.2", 80)] is b_health
    assert rig.server.control.get("config_reload.update_success") == 1
    svc = rig.engine.current["clusters"][0]
    assert svc["endpoints"] == [healthy(A, True), healthy(B, False)]
    rig.engine.apply_error = ValueError("bad snapshot")
    await rig.server.reload()  # rejected by the engine: the running checks go on
    assert rig.server.control.get("config_reload.update_rejected") == 1
    first, running, rejected = book.probes[("10.0.0.1", 80)]
    checks = len(running.checks)
    await trio.sleep(3.5)
    times = running.checks[checks:]
    assert len(times) >= 3  # still every 1 s (the rejected config checked every 0.3 s)
    assert [round(b - a, 3) for a, b in pairwise(times)] == [1.0] * (len(times) - 1)
    assert len(rejected.checks) == 1 and rejected.closes == 1  # cancelled with its config
    rig.server.terminate("test")


async def test_admin_clusters_shows_active_health_flags(nursery, autojump_clock):
    book = ProbeBook([OK])
    book.scripts[("10.0.0.2", 80)] = [HANG]
    rig = Rig(book)
    nursery.start_soon(rig.server.serve, mesh_config(spec(timeout_ms=500)))
    await rig.ready.receive()
    rig.engine.clusters_doc = [
        {
            "name": name,
            "hosts": [
                {"healthy": True, **e, "cx_active": 0, "cx_total": 0, "rq_active": 0, "rq_total": 0,
                 "rq_error": 0}
                for e in c["endpoints"]
            ],
        }
        for c in rig.engine.current["clusters"]
        for name in [c["name"]]
    ]  # fmt: skip
    ctx = AdminContext(
        rig.engine, rig.server.state, rig.server.stats, lambda *_: "", rig.server.health.host_status
    )
    app = AdminApp(ctx)
    text = (await app(Request("GET", "/clusters", {}, [], b""))).body.decode()
    flags = [line for line in text.splitlines() if "health_flags" in line]
    assert flags == [
        "svc::10.0.0.1:80::health_flags::healthy",
        "svc::10.0.0.2:80::health_flags::/failed_active_hc/active_hc_timeout",
        "plain::10.0.0.1:80::health_flags::healthy",
    ]
    doc = orjson.loads((await app(Request("GET", "/clusters", {"format": "json"}, [], b""))).body)
    statuses = [h["health_status"] for c in doc["cluster_statuses"] for h in c["host_statuses"]]
    assert statuses == [
        {"eds_health_status": "HEALTHY"},
        {
            "failed_active_health_check": True,
            "eds_health_status": "HEALTHY",
            "active_hc_timeout": True,
        },
        {"eds_health_status": "HEALTHY"},
    ]
    stats = (await app(Request("GET", "/stats", {"filter": "health_check"}, [], b""))).body
    assert stats.decode().splitlines() == [
        "cluster.svc.health_check.attempt: 2",
        "cluster.svc.health_check.degraded: 0",
        "cluster.svc.health_check.failure: 1",
        "cluster.svc.health_check.healthy: 1",
        "cluster.svc.health_check.network_failure: 1",
        "cluster.svc.health_check.passive_failure: 0",
        "cluster.svc.health_check.success: 1",
        "cluster.svc.health_check.verify_cluster: 0",
    ]
    rig.server.terminate("test")


def test_clusters_view_without_health_checks_is_unchanged():
    host = {
        "address": "10.0.0.1",
        "port": 80,
        "weight": 1,
        "healthy": False,
        "cx_active": 0,
        "cx_total": 0,
        "rq_active": 0,
        "rq_total": 0,
        "rq_error": 0,
    }
    text = clusters_view.render_text([{"name": "c", "hosts": [host]}], {"c"}, lambda *_: "")
    assert "c::10.0.0.1:80::health_flags::/failed_eds_health" in text.splitlines()


async def test_health_check_stats_are_named_by_the_alt_stat_name(nursery, autojump_clock):
    rig = Rig(ProbeBook([OK]))
    nursery.start_soon(rig.server.serve, mesh_config(spec(alt_stat_name="svc_stats")))
    await rig.ready.receive()
    counters = rig.stats().counters
    assert counters["cluster.svc_stats.health_check.attempt"] == 2  # one per host
    assert counters["cluster.svc_stats.health_check.success"] == 2
    assert not any(name.startswith("cluster.svc.") for name in counters)
    rig.server.terminate("test")
