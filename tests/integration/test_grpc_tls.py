"""gRPC to an upstream over mutual TLS with HTTP/2 (ALPN `h2`), as sidecars talk to each
other in a mesh: a grpcio server that requires a client certificate, a cluster whose
UpstreamTlsContext presents one, checks the server's SAN and sends SNI; the same
expectations on Envoy and meshcore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.certs import Pki, make_pki, upstream_tls_socket
from tests.support.grpc_echo import assert_bidi_interleaves, channel, method, start_server
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("grpc-pki")))


@pytest.fixture(scope="module")
def tls_grpc_port(pki: Pki) -> Iterator[int]:
    credentials = grpc.ssl_server_credentials(
        [(pki.server.key.read_bytes(), pki.server.cert.read_bytes())],
        root_certificates=pki.ca.path.read_bytes(),
        require_client_auth=True,
    )
    server, port = start_server(credentials)
    yield port
    server.stop(0)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, pki, tls_grpc_port, tmp_path_factory) -> Iterator[tuple[Proxy, int]]:
    port = free_port()
    cluster = static_cluster(
        "secure",
        [("127.0.0.1", tls_grpc_port)],
        transport_socket=upstream_tls_socket(
            pki, sni="backend.test", client=pki.web, sans=(("DNS", "backend.test"),)
        ),
        typed_extension_protocol_options={
            UPSTREAM_OPTIONS: {
                "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    )
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="secure")])])
    config = bootstrap([http_listener("grpc", port, rc, stat_prefix="grpc_in")], [cluster])
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, port
    running.stop()


def test_unary_and_bidi_over_mutual_tls(proxy):
    running, port = proxy
    with channel(port) as chan:
        response, outcome = chan.unary_unary(method("Unary")).with_call(b"secret", timeout=10)
        assert response == b"secret" and outcome.code() == grpc.StatusCode.OK
        assert ("x-echo-len", "6") in tuple(outcome.trailing_metadata())

        assert_bidi_interleaves(chan, 5)
    stats = running.stats()
    # One TLS connection carried both calls (multiplexed), verified and over HTTP/2.
    assert stats["cluster.secure.ssl.handshake"] == "1"
    assert stats["cluster.secure.upstream_cx_http2_total"] == "1"
    assert stats["cluster.secure.upstream_rq_200"] == "2"
