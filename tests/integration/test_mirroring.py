"""Request mirroring (`request_mirror_policies`) on real Envoy and meshcore: the shadow
cluster gets a copy with `-shadow` added to its host, its answer (or silence) never reaches
the client, and `runtime_fraction` samples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {
        "primary": upstream_server.start("m-primary"),
        "shadow": upstream_server.start("m-shadow"),
        "failing": upstream_server.start("m-failing", default_behavior="status=500"),
        "silent": upstream_server.start("m-silent", default_behavior="hang"),
    }


def mirror_config(port: int, up: dict[str, Upstream]) -> dict[str, Any]:
    def mirrored(prefix: str, shadow: str, percent: int | None = None) -> dict[str, Any]:
        policy: dict[str, Any] = {"cluster": shadow}
        if percent is not None:
            policy["runtime_fraction"] = {
                "default_value": {"numerator": percent, "denominator": "HUNDRED"}
            }
        return route(
            {"prefix": prefix}, cluster="primary", timeout="3s", request_mirror_policies=[policy]
        )

    routes = [
        mirrored("/copy", "shadow"),
        mirrored("/failing", "failing"),
        mirrored("/silent", "silent"),
        mirrored("/never", "shadow", 0),
    ]
    clusters = [
        static_cluster(name, [("127.0.0.1", up[name].port)])
        for name in ("primary", "shadow", "failing", "silent")
    ]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, mirror_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


async def test_the_shadow_gets_a_copy_with_a_shadow_host(proxy, upstreams):
    shadow = upstreams["shadow"]
    shadow.clear()
    with trio.fail_after(10):
        response = await get(proxy.port, "/copy/a?x=1", host="svc.local:8080")
        assert response.status == 200
        assert response.upstream == "m-primary"
        await shadow.until(lambda u: len(u.requests) == 1)
    copy = shadow.requests[0]
    assert copy.target == "/copy/a?x=1"
    assert copy.header("host") == "svc.local-shadow:8080"
    original = next(r for r in upstreams["primary"].requests if r.target == "/copy/a?x=1")
    assert original.header("host") == "svc.local:8080"
    with trio.fail_after(10):
        await get(proxy.port, "/copy/b", host="plain.local")
        await shadow.until(lambda u: len(u.requests) == 2)
    assert shadow.requests[1].header("host") == "plain.local-shadow"


async def test_a_small_body_is_mirrored(proxy, upstreams):
    shadow = upstreams["shadow"]
    shadow.clear()
    with trio.fail_after(10):
        response = await get(proxy.port, "/copy/post", method="POST", body=b"hello mirror")
        assert response.status == 200
        await shadow.until(lambda u: len(u.requests) == 1 and u.requests[0].complete)
    assert bytes(shadow.requests[0].body) == b"hello mirror"


async def test_the_shadow_answer_is_discarded(proxy, upstreams):
    with trio.fail_after(10):
        response = await get(proxy.port, "/failing")
        assert response.status == 200
        assert response.upstream == "m-primary"
        await upstreams["failing"].until(lambda u: len(u.requests) >= 1)


async def test_a_silent_shadow_does_not_delay_the_client(proxy, upstreams):
    start = trio.current_time()
    with trio.fail_after(10):
        response = await get(proxy.port, "/silent")
        await upstreams["silent"].until(lambda u: len(u.requests) >= 1)
    assert response.status == 200
    assert trio.current_time() - start < 2.0


async def test_zero_fraction_mirrors_nothing(proxy, upstreams):
    shadow = upstreams["shadow"]
    shadow.clear()
    with trio.fail_after(10):
        for _ in range(20):
            assert (await get(proxy.port, "/never")).status == 200
        # A mirrored request would have arrived by the time a later one is answered.
        await get(proxy.port, "/copy/marker")
        await shadow.until(lambda u: len(u.requests) >= 1)
    assert [r.target for r in shadow.requests] == ["/copy/marker"]
