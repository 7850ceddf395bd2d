"""Identity end to end, on real Envoy and meshcore with the same bootstrap: mutual TLS whose
client SPIFFE ID decides HTTP RBAC (`authenticated.principal_name`) and network RBAC, and
TLS termination on several filter chains of one listener chosen by SNI (TLS inspector),
each chain with its own certificate validation."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bootstrap import (
    TLS_INSPECTOR_TYPE,
    bootstrap,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.certs import WEB_ID, Pair, Pki, make_pki, tls_socket
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
RBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def only(principal_uri: str) -> dict[str, Any]:
    """RBAC rules allowing only the client certificate with URI SAN `principal_uri`."""
    return {
        "action": "ALLOW",
        "policies": {
            "web-only": {
                "permissions": [{"any": True}],
                "principals": [{"authenticated": {"principal_name": {"exact": principal_uri}}}],
            }
        },
    }


def manager(prefix: str, filters: list[dict[str, Any]], body: str = "") -> dict[str, Any]:
    action: dict[str, Any] = (
        {"direct_response": {"status": 200, "body": {"inline_string": body}}}
        if body
        else {"cluster": "echo"}
    )
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, **action)])])
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": HCM + "HttpConnectionManager",
            "stat_prefix": prefix,
            "route_config": rc,
            "http_filters": [
                *filters,
                {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}},
            ],
        },
    }


def listener(name: str, port: int, chains: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": chains,
        **extra,
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def echo(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("echo")


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, pki, echo, tmp_path_factory) -> Iterator[tuple[Proxy, dict[str, int]]]:
    ports = {"http_rbac": free_port(), "net_rbac": free_port(), "sni": free_port()}
    mtls = tls_socket(pki, require_client_certificate=True)
    http_rbac = {
        "name": "envoy.filters.http.rbac",
        "typed_config": {"@type": RBAC, "rules": only(WEB_ID)},
    }
    network_rbac = {
        "name": "envoy.filters.network.rbac",
        "typed_config": {"@type": NETWORK_RBAC, "stat_prefix": "net", "rules": only(WEB_ID)},
    }
    listeners = [
        listener(
            "http_rbac",
            ports["http_rbac"],
            [{"transport_socket": mtls, "filters": [manager("identity", [http_rbac])]}],
        ),
        listener(
            "net_rbac",
            ports["net_rbac"],
            [{"transport_socket": mtls, "filters": [network_rbac, manager("netid", [])]}],
        ),
        listener(
            "sni",
            ports["sni"],
            [
                {
                    "filter_chain_match": {"server_names": ["localhost"]},
                    "transport_socket": tls_socket(pki),
                    "filters": [manager("open", [], body="open chain")],
                },
                {
                    "filter_chain_match": {"server_names": ["backend.test"]},
                    "transport_socket": mtls,
                    "filters": [manager("closed", [], body="mtls chain")],
                },
            ],
            listener_filters=[
                {
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {"@type": TLS_INSPECTOR_TYPE},
                }
            ],
        ),
    ]
    config = bootstrap(listeners, [static_cluster("echo", [("127.0.0.1", echo.port)])])
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, ports
    running.stop()


def request(
    port: int, pki: Pki, cert: Pair | None, server_name: str = "localhost"
) -> tuple[int, bytes] | None:
    """GET / over TLS; None when the proxy refused the handshake or closed unanswered."""
    ctx = ssl.create_default_context(cafile=str(pki.ca.path))
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn = http.client.HTTPConnection(server_name, port, timeout=5)
        conn.sock = ctx.wrap_socket(raw, server_hostname=server_name)
        conn.request("GET", "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
        return None


def test_http_rbac_allows_only_the_web_identity(
    proxy: tuple[Proxy, dict[str, int]], pki: Pki, echo: Upstream
) -> None:
    running, ports = proxy
    echo.clear()
    assert request(ports["http_rbac"], pki, pki.web) == (200, b"echo")
    assert request(ports["http_rbac"], pki, pki.other) == (403, b"RBAC: access denied")
    assert len(echo.requests) == 1
    assert running.counter("http.identity.rbac.allowed") == 1
    assert running.counter("http.identity.rbac.denied") == 1


def test_network_rbac_closes_other_identities(
    proxy: tuple[Proxy, dict[str, int]], pki: Pki, echo: Upstream
) -> None:
    running, ports = proxy
    echo.clear()
    assert request(ports["net_rbac"], pki, pki.web) == (200, b"echo")
    assert request(ports["net_rbac"], pki, pki.other) is None
    assert len(echo.requests) == 1
    assert running.counter("net.rbac.denied") == 1
    assert running.counter("net.rbac.allowed") == 1


def test_sni_picks_the_chain_and_its_tls_settings(
    proxy: tuple[Proxy, dict[str, int]], pki: Pki
) -> None:
    _, ports = proxy
    assert request(ports["sni"], pki, None, "localhost") == (200, b"open chain")
    # The mTLS chain wants a client certificate: refused without one, served with one.
    assert request(ports["sni"], pki, None, "backend.test") is None
    assert request(ports["sni"], pki, pki.web, "backend.test") == (200, b"mtls chain")
