"""Scripted probes (outcomes on demand, in trio time) and helpers shared by the health tests."""

from __future__ import annotations

import random
from collections.abc import Iterable

import orjson
import trio
from meshcore.health.spec import ClusterHealthCheck
from meshcore.health.state import Failure, Outcome

from tests.runtime.fakes import FakeEngine, cluster

OK = Outcome.success(detail="ok")
BAD = Outcome.fail(Failure.ACTIVE, "HTTP 503")
REFUSED = Outcome.fail(Failure.NETWORK, "connection refused")
HANG = "hang"


class ScriptedProbe:
    """Answers each check with the next scripted outcome (the last one repeats); "hang"
    never answers. Records the trio time of each check."""

    def __init__(self, script: list[Outcome | str]) -> None:
        self.script = list(script)
        self.checks: list[float] = []
        self.closes = 0
        self.idle_outcomes: list[tuple[float, Outcome]] = []

    async def check(self) -> Outcome:
        self.checks.append(trio.current_time())
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if item == HANG:
            await trio.sleep_forever()
        assert isinstance(item, Outcome)
        return item

    async def idle_until(self, deadline: float) -> Outcome | None:
        if self.idle_outcomes and self.idle_outcomes[0][0] < deadline:
            at, outcome = self.idle_outcomes.pop(0)
            await trio.sleep_until(at)
            return outcome
        await trio.sleep_until(deadline)
        return None

    def close(self) -> None:
        self.closes += 1


class ProbeBook:
    """A probe factory: one ScriptedProbe per host, scripted per host or by default."""

    def __init__(self, default: list[Outcome | str] | None = None) -> None:
        self.default = default or [OK]
        self.scripts: dict[tuple[str, int], list[Outcome | str]] = {}
        self.idle: dict[tuple[str, int], list[tuple[float, Outcome]]] = {}
        self.probes: dict[tuple[str, int], list[ScriptedProbe]] = {}

    def __call__(self, spec: ClusterHealthCheck, address: str, port: int) -> ScriptedProbe:
        probe = ScriptedProbe(self.scripts.get((address, port), self.default))
        probe.idle_outcomes = list(self.idle.get((address, port), []))
        self.probes.setdefault((address, port), []).append(probe)
        return probe

    def checks(self, address: str, port: int) -> list[float]:
        return [t for probe in self.probes.get((address, port), []) for t in probe.checks]


class MaxRandom(random.Random):
    """Always draws the largest value allowed (`randrange(n)` -> n - 1)."""

    def randrange(self, start, stop=None, step=1):  # type: ignore[override]
        return (start if stop is None else stop) - 1


def spec(**overrides: object) -> ClusterHealthCheck:
    fields: dict[str, object] = {
        "cluster": "svc",
        "timeout_ms": 2000,
        "interval_ms": 1000,
        "unhealthy_threshold": 2,
        "healthy_threshold": 2,
        "no_traffic_interval_ms": 1000,
    }
    fields.update(overrides)
    return ClusterHealthCheck(**fields)  # type: ignore[arg-type]


def endpoint(address: str, port: int, **extra: object) -> dict[str, object]:
    return {"address": address, "port": port, "weight": 1, **extra}


def engine_with(clusters: dict[str, Iterable[dict[str, object]]], traffic: bool = True):
    """A FakeEngine running a snapshot with these clusters (and, with `traffic`, an upstream
    connection counted for each)."""
    engine = FakeEngine()
    engine.apply(
        orjson.dumps({"clusters": [cluster(name, list(eps)) for name, eps in clusters.items()]})
    )
    if traffic:
        engine.stats_doc["counters"] = {f"cluster.{n}.upstream_cx_total": 1 for n in clusters}
    return engine
