"""`use_downstream_protocol_config` with HTTP/1.1 and HTTP/2 options (as Istio writes for
inbound clusters): a request that came over HTTP/2 goes upstream over HTTP/2 (h2c), one that
came over HTTP/1.1 over HTTP/1.1; the same on Envoy and meshcore."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.h2_upstream import H2Upstream
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@pytest.fixture(scope="module")
def dual() -> Iterator[H2Upstream]:
    up = H2Upstream(also_http1=True)
    yield up
    up.close()


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, dual, tmp_path_factory) -> Iterator[Proxy]:
    cluster = static_cluster(
        "app",
        [("127.0.0.1", dual.port)],
        typed_extension_protocol_options={
            UPSTREAM_OPTIONS: {
                "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
                "use_downstream_protocol_config": {
                    "http_protocol_options": {},
                    "http2_protocol_options": {},
                },
            }
        },
    )
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="app")])])
    config = bootstrap([http_listener("main", free_port(), rc)], [cluster])
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


def curl(*args: str) -> str:
    out = subprocess.run(
        ["curl", "-s", "--max-time", "10", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def test_the_upstream_protocol_follows_the_downstream(proxy):
    url = f"http://127.0.0.1:{proxy.port}"
    assert curl(f"{url}/one") == "h1 /one 0"
    assert curl("--http2-prior-knowledge", f"{url}/two") == "h2 /two 0"
    assert curl("--http2-prior-knowledge", "-d", "abc", f"{url}/three") == "h2 /three 3"
    assert curl("-d", "abcd", f"{url}/four") == "h1 /four 4"
    stats = proxy.stats()
    assert stats["cluster.app.upstream_cx_http2_total"] == "1"  # one multiplexed connection
    assert stats["cluster.app.upstream_rq_200"] == "4"
