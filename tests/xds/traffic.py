"""Traffic helpers for the xDS integration tests: who answers a request, waiting until a
proxy routes as expected, and a continuous load that counts every failure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson
import trio

from tests.support.client import RawConnection, build_request, get

from .harness import WAIT_S


async def answer(port: int, target: str = "/", host: str = "example.com") -> str:
    """`x-upstream` of the answer, `status:<code>` for a local reply, `error:<kind>` when
    the connection fails."""
    try:
        response = await get(port, target, host=host)
    except (OSError, EOFError, h11.ProtocolError, trio.BrokenResourceError) as exc:
        return f"error:{type(exc).__name__}"
    return response.upstream or f"status:{response.status}"


async def answers(port: int, script: Sequence[str]) -> list[str]:
    return [await answer(port, target) for target in script]


async def until_answers(
    port: int, script: Sequence[str], expected: Sequence[str], timeout: float = WAIT_S
) -> list[str]:
    """Polls until the scripted requests get `expected`; returns the last answers."""
    got: list[str] = []
    with trio.move_on_after(timeout):
        while True:
            got = await answers(port, script)
            if got == list(expected):
                return got
            await trio.sleep(0.02)
    raise AssertionError(f"port {port}: {script} answered {got}, expected {list(expected)}")


def config_dump_section(body: str, kind: str) -> Mapping[str, Any]:
    """One `*ConfigDump` of a `/config_dump` body (`kind`: Clusters, Listeners, ...)."""
    for config in orjson.loads(body)["configs"]:
        if config["@type"].endswith(f".{kind}ConfigDump"):
            section: Mapping[str, Any] = config
            return section
    raise AssertionError(f"no {kind}ConfigDump")


@dataclass
class Load:
    """Keep-alive clients sending GET / until stopped; every answer is counted, and any
    non-200 or broken connection is a failure."""

    port: int
    connections: int = 4
    target: str = "/"
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stop: trio.Event = field(default_factory=trio.Event)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.connections):
                nursery.start_soon(self._client)

    async def _client(self) -> None:
        request = build_request("GET", self.target)
        while not self.stop.is_set():
            try:
                async with await RawConnection.open(self.port) as conn:
                    while not self.stop.is_set():
                        await conn.send(request)
                        response = await conn.read_response()
                        if response.status != 200:
                            self.failures.append(f"status {response.status}: {response.text}")
                        self.counts[response.upstream or f"status:{response.status}"] += 1
                        if response.closes():
                            break
            except (OSError, EOFError, h11.ProtocolError, trio.BrokenResourceError) as exc:
                self.failures.append(f"connection: {exc!r}")
                await trio.sleep(0.01)
