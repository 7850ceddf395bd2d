"""Many requests quickly: a few keep-alive connections in parallel, counting who answered."""

from __future__ import annotations

from collections import Counter

import trio

from tests.support.client import RawConnection, build_request


async def count_upstreams(
    port: int,
    total: int,
    *,
    target: str = "/",
    host: str = "example.com",
    connections: int = 8,
) -> Counter[str]:
    """Sends `total` GETs over `connections` keep-alive connections; returns how many each
    upstream (`x-upstream`, or `status:<code>` for local replies) answered."""
    counts: Counter[str] = Counter()
    request = build_request("GET", target, host=host)
    share, extra = divmod(total, connections)

    async def worker(n: int) -> None:
        async with await RawConnection.open(port) as conn:
            for _ in range(n):
                await conn.send(request)
                response = await conn.read_response()
                counts[response.upstream or f"status:{response.status}"] += 1

    async with trio.open_nursery() as nursery:
        for index in range(connections):
            nursery.start_soon(worker, share + (1 if index < extra else 0))
    return counts
