"""Running an `XdsClient` against the test ADS server from a trio test, and waiting for
what happens on either side (polling, never sleeping a fixed time)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
import yaml
from meshcore.config import load_text
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.xds.backoff import Backoff
from meshcore.xds.client import XdsClient

from .ads_server import AdsServer, Recorded
from .builders import xds_bootstrap
from .fakes import FakeSink

WAIT_S = 10.0


def load_bootstrap(data: dict[str, Any]) -> Any:
    return load_text(yaml.safe_dump(data, sort_keys=False))


@asynccontextmanager
async def running_client(
    server: AdsServer,
    sink: FakeSink,
    *,
    node: str = "meshcore",
    wait_initialized: bool = True,
    poll_s: float = 0.05,
    ads_extra: dict[str, Any] | None = None,
    **bootstrap: Any,
) -> AsyncIterator[XdsClient]:
    data = xds_bootstrap(server.port, node=node, **bootstrap)
    data["dynamic_resources"]["ads_config"].update(ads_extra or {})
    config = load_bootstrap(data)
    client = XdsClient(
        config,
        sink,
        ControlStats(),
        backoff=Backoff(base_s=0.05, max_s=0.2),
        poll_s=poll_s,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        if wait_initialized:
            with trio.fail_after(WAIT_S):
                await client.initialized.wait()
        yield client
        nursery.cancel_scope.cancel()


async def until(predicate: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Polls `predicate` (every 10 ms) until it is truthy; returns its value."""
    with trio.fail_after(timeout):
        while True:
            value = predicate()
            if value:
                return value
            await trio.sleep(0.01)


async def request(server: AdsServer, match: Callable[[Recorded], bool], after: int = 0) -> Recorded:
    """Waits (in a thread) for the server to receive a matching request."""
    found: Recorded = await trio.to_thread.run_sync(server.wait_request, match, WAIT_S, after)
    return found


def acked(type_url: str, version: str) -> Callable[[Recorded], bool]:
    """Matches the ACK of `version` of `type_url` (SotW `version_info`)."""
    return lambda r: r.type_url == type_url and r.is_ack() and r.request.version_info == version


def nacked(type_url: str) -> Callable[[Recorded], bool]:
    return lambda r: r.type_url == type_url and r.is_nack()


def delta_acked(type_url: str, nonce: str | None = None) -> Callable[[Recorded], bool]:
    return lambda r: r.type_url == type_url and r.is_ack() and (nonce is None or r.nonce == nonce)
