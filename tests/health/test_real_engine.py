"""Health checking driving the real compiled engine: HTTP checks against real upstreams, the
engine's hosts flagged, and traffic through its listener going only to healthy hosts."""

from __future__ import annotations

from collections import Counter

import httpx
import orjson
import trio
from meshcore.health.generation import HealthService
from meshcore.health.spec import HttpCheck
from meshcore.lifecycle.control_stats import ControlStats

from tests.support.upstream import Upstream

from .fakes import spec
from .real_engine import engine_class, http_snapshot


def engine_health(engine) -> dict[int, bool]:
    (cluster,) = orjson.loads(engine.clusters())
    return {host["port"]: host["healthy"] for host in cluster["hosts"]}


async def traffic(port: int, requests: int) -> Counter[str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        answers = [await client.get("/") for _ in range(requests)]
    return Counter(r.headers.get("x-upstream", f"status {r.status_code}") for r in answers)


async def test_only_healthy_hosts_take_traffic_and_recovery_brings_it_back(nursery):
    good, bad = Upstream("good"), Upstream("bad", default_behavior="status=503")
    for up in (good, bad):
        await nursery.start(up.serve)
    endpoints = [{"address": "127.0.0.1", "port": up.port, "weight": 1} for up in (good, bad)]
    engine = engine_class()(1)
    try:
        check = spec(
            cluster="svc",
            interval_ms=100,
            no_traffic_interval_ms=100,
            unhealthy_threshold=1,
            healthy_threshold=1,
            http=HttpCheck(path="/healthz"),
        )
        service = HealthService(engine, ControlStats())
        generation = await service.prepare(nursery, (check,), {"svc": endpoints})
        applied = generation.membership.merged_all()
        engine.apply(orjson.dumps(http_snapshot("svc", applied["svc"])))
        service.commit(generation, applied)
        assert engine_health(engine) == {good.port: True, bad.port: False}
        port = engine.listener_ports()["main"]
        assert await traffic(port, 20) == Counter(good=20)

        bad.default_behavior = ""  # recovers: its next check passes
        with trio.fail_after(5):
            while not engine_health(engine)[bad.port]:
                await trio.sleep(0.05)
        assert await traffic(port, 20) == Counter(good=10, bad=10)

        bad.default_behavior = "status=500"
        with trio.fail_after(5):
            while engine_health(engine)[bad.port]:
                await trio.sleep(0.05)
        assert await traffic(port, 10) == Counter(good=10)
        generation.cancel()
    finally:
        engine.stop()
