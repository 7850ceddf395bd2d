"""RING_HASH and MAGLEV parity: the same hosts and the same request keys reach the same
upstream on real Envoy and meshcore (both hash `ip:port` points and request values with
xxHash64 as Envoy does)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import trio

from tests.integration.test_hash_lb import NAMES, hash_config
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

SUBJECT = os.environ.get("MESHCORE_PARITY_SUBJECT", "meshcore")
pytestmark = [pytest.mark.meshcore_only] if SUBJECT == "meshcore" else []


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in NAMES}


@pytest.fixture(scope="module")
def proxies(upstreams, tmp_path_factory) -> Iterator[dict[str, Proxy]]:
    running: dict[str, Proxy] = {}
    try:
        for kind in ("envoy", SUBJECT):
            running[kind] = start_proxy(kind, hash_config(free_port(), upstreams), tmp_path_factory)
        yield running
    finally:
        for proxy in running.values():
            proxy.stop()


@pytest.mark.parametrize("target", ["/ring", "/maglev"])
async def test_same_key_same_host_as_envoy(proxies, target):
    async def hosts(proxy: Proxy) -> list[str | None]:
        out = []
        for user in range(60):
            response = await get(proxy.port, target, headers=[("x-user", f"user-{user}")])
            out.append(response.upstream)
        return out

    with trio.fail_after(60):
        expected = await hosts(proxies["envoy"])
        actual = await hosts(proxies[SUBJECT])
    assert len(set(expected)) >= 3, expected
    assert actual == expected
