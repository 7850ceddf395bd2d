"""The upstream codec chosen by ALPN on TLS clusters, the same on Envoy and meshcore:
`auto_config` offers `h2,http/1.1` and speaks what the upstream chose (HTTP/1.1 when it chose
nothing), remembering it for the host; `use_downstream_protocol_config` with HTTP/2 offers the
downstream request's protocol."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.alpn_upstream import AlpnUpstream
from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.certs import Pki, make_pki, upstream_tls_socket
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
# Upstream name -> the ALPN protocols it offers.
OFFERS: dict[str, tuple[str, ...]] = {
    "h2only": ("h2",),
    "h1only": ("http/1.1",),
    "both": ("h2", "http/1.1"),
    "none": (),
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def upstreams(pki: Pki) -> Iterator[dict[str, AlpnUpstream]]:
    ups = {
        name: AlpnUpstream(pki.server.cert, pki.server.key, alpn) for name, alpn in OFFERS.items()
    }
    yield ups
    for up in ups.values():
        up.close()


def _options(kind: str) -> dict[str, Any]:
    return {
        UPSTREAM_OPTIONS: {
            "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
            kind: {"http_protocol_options": {}, "http2_protocol_options": {}},
        }
    }


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(
    request: Any, pki: Pki, upstreams: dict[str, AlpnUpstream], tmp_path_factory: Any
) -> Iterator[Proxy]:
    clusters = []
    routes = []
    for name, up in upstreams.items():
        for kind, prefix in (("auto_config", "auto"), ("use_downstream_protocol_config", "follow")):
            cluster = f"{prefix}_{name}"
            clusters.append(
                static_cluster(
                    cluster,
                    [("127.0.0.1", up.port)],
                    transport_socket=upstream_tls_socket(pki),
                    typed_extension_protocol_options=_options(kind),
                )
            )
            routes.append(route({"prefix": f"/{cluster}/"}, cluster=cluster))
    # auto_config with a configured ALPN list: it offers that list.
    only_h1 = upstream_tls_socket(pki)
    only_h1["typed_config"]["common_tls_context"]["alpn_protocols"] = ["http/1.1"]  # type: ignore[index]
    clusters.append(
        static_cluster(
            "auto_listed",
            [("127.0.0.1", upstreams["both"].port)],
            transport_socket=only_h1,
            typed_extension_protocol_options=_options("auto_config"),
        )
    )
    routes.append(route({"prefix": "/auto_listed/"}, cluster="auto_listed"))
    rc = route_config([virtual_host("all", ["*"], routes)])
    running = start_proxy(
        request.param,
        bootstrap([http_listener("main", free_port(), rc)], clusters),
        tmp_path_factory,
    )
    yield running
    running.stop()


def curl(*args: str) -> tuple[str, str]:
    """(the `x-proto` response header, else the status line; the body) of one request."""
    out = subprocess.run(
        ["curl", "-s", "--max-time", "10", "-D", "-", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    head, _, body = out.partition("\n\n")
    proto = [
        line.split(":", 1)[1].strip()
        for line in head.split("\n")
        if line.lower().startswith("x-proto:")
    ]
    return (proto[0] if proto else head.split("\n")[0]), body


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [("h2only", "h2"), ("h1only", "http/1.1"), ("both", "h2"), ("none", "http/1.1")],
)
def test_auto_config_speaks_the_protocol_alpn_chose(
    proxy: Proxy, upstreams: dict[str, AlpnUpstream], upstream: str, expected: str
) -> None:
    url = f"http://127.0.0.1:{proxy.port}/auto_{upstream}"
    before = len(upstreams[upstream].protocols)
    assert curl(f"{url}/a") == (expected, f"{expected} /auto_{upstream}/a 0")
    assert curl("-d", "abc", f"{url}/b") == (expected, f"{expected} /auto_{upstream}/b 3")
    assert curl("--http2-prior-knowledge", f"{url}/c") == (
        expected,
        f"{expected} /auto_{upstream}/c 0",
    )
    # One handshake: later requests went to the connection the first one opened.
    assert upstreams[upstream].protocols[before:] == ["none" if upstream == "none" else expected]
    cluster = f"cluster.auto_{upstream}"
    http2 = 1 if expected == "h2" else 0
    assert proxy.counter(f"{cluster}.upstream_cx_http2_total") == http2
    assert proxy.counter(f"{cluster}.upstream_cx_http1_total") == 1 - http2
    assert proxy.counter(f"{cluster}.upstream_cx_active") == 1
    assert proxy.counter(f"{cluster}.upstream_rq_200") == 3
    # (Envoy counts `upstream_cx_total` twice for a mixed-pool connection; meshcore once.)
    assert proxy.counter(f"{cluster}.upstream_cx_total") == (2 if proxy.kind == "envoy" else 1)


# Upstream -> (what an HTTP/1.1 request gets, what an HTTP/2 one gets, the ALPN protocol
# the upstream saw chosen on each one's connection): each offers only its own protocol, so
# an upstream without it chooses nothing; an HTTP/2 request to an HTTP/1.1 server fails.
FOLLOW = {
    "both": ("http/1.1", "h2", ["http/1.1", "h2"]),
    "h1only": ("http/1.1", None, ["http/1.1", "none"]),
    "h2only": ("http/1.1", "h2", ["none", "h2"]),
}


@pytest.mark.parametrize("upstream", sorted(FOLLOW))
def test_follow_downstream_offers_the_downstream_protocol(
    proxy: Proxy, upstreams: dict[str, AlpnUpstream], upstream: str
) -> None:
    h1, h2, chosen = FOLLOW[upstream]
    url = f"http://127.0.0.1:{proxy.port}/follow_{upstream}"
    before = len(upstreams[upstream].protocols)
    assert curl(f"{url}/a") == (h1, f"{h1} /follow_{upstream}/a 0")
    got = curl("--http2-prior-knowledge", f"{url}/b")
    if h2 is not None:
        assert got == (h2, f"{h2} /follow_{upstream}/b 0")
    else:
        # Envoy: 502 (the codec's protocol error); meshcore: 503 (the stream closed first).
        assert got[0].startswith("HTTP/2 50")
    assert upstreams[upstream].protocols[before:] == chosen


def test_auto_config_offers_a_configured_alpn_list(
    proxy: Proxy, upstreams: dict[str, AlpnUpstream]
) -> None:
    url = f"http://127.0.0.1:{proxy.port}/auto_listed"
    before = len(upstreams["both"].protocols)
    assert curl("--http2-prior-knowledge", f"{url}/a") == ("http/1.1", "http/1.1 /auto_listed/a 0")
    assert upstreams["both"].protocols[before:] == ["http/1.1"]
    assert proxy.counter("cluster.auto_listed.upstream_cx_http1_total") == 1
