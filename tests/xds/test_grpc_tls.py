"""TLS to the management server: the xDS cluster's `UpstreamTlsContext` loaded into what
grpcio takes (each field grpcio cannot honour named by its path), and an ADS stream over
TLS with a client certificate that Envoy and meshcore both open from the same bootstrap."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import trio

from tests.support import bootstrap as b
from tests.support.certs import Pki, make_pki, upstream_tls_socket
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

from .ads_server import AdsServer
from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
    xds_bootstrap,
)
from .harness import WAIT_S, load_bootstrap
from .sds import SECRET, api_source, sds_cluster, secret, served_certificate, tls_listener_json
from .test_bootstrap import problems
from .traffic import answer

COMMON = "static_resources.clusters[0].transport_socket.typed_config.common_tls_context"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_bootstrap(port: int, pki: Pki, node: str = "n", **socket: Any) -> dict[str, Any]:
    data = xds_bootstrap(port, node=node, initial_fetch_timeout="2s")
    data["static_resources"]["clusters"][0]["transport_socket"] = upstream_tls_socket(pki, **socket)
    return data


def common_of(data: dict[str, Any]) -> dict[str, Any]:
    return data["static_resources"]["clusters"][0]["transport_socket"]["typed_config"][
        "common_tls_context"
    ]


def test_tls_loads_into_grpc_credentials(pki: Pki) -> None:
    tls = load_bootstrap(
        tls_bootstrap(18000, pki, sni="backend.test", client=pki.web)
    ).dynamic.ads.tls
    assert tls.root_certificates == pki.ca.path.read_text()
    assert tls.certificate_chain == pki.web.cert.read_text()
    assert tls.private_key == pki.web.key.read_text()
    assert tls.server_name == "backend.test"


def test_an_exact_dns_san_matcher_is_the_name_checked(pki: Pki) -> None:
    tls = load_bootstrap(tls_bootstrap(18000, pki, sans=(("DNS", "localhost"),))).dynamic.ads.tls
    assert (tls.server_name, tls.private_key, tls.certificate_chain) == ("localhost", None, None)


def test_without_a_transport_socket_the_stream_is_plain_text() -> None:
    assert load_bootstrap(xds_bootstrap(18000, node="n")).dynamic.ads.tls is None


def _sds_validation(common: dict[str, Any]) -> None:
    common.pop("validation_context")
    common["validation_context_sds_secret_config"] = {"name": "ca"}


@pytest.mark.parametrize(
    ("socket", "change", "expected"),
    [
        (
            {"sans": (("URI", "spiffe://cluster.local/ns/istio-system/sa/istiod"),)},
            None,
            f"{COMMON}.validation_context.match_typed_subject_alt_names: only one exact DNS or "
            "IP_ADDRESS matcher is supported on the cluster of an xDS stream",
        ),
        (
            {"sans": (("DNS", "localhost"), ("DNS", "backend.test"))},
            None,
            f"{COMMON}.validation_context.match_typed_subject_alt_names: only one exact DNS",
        ),
        (
            {"sans": (("DNS", "localhost"),), "sni": "backend.test"},
            None,
            f"{COMMON}.validation_context.match_typed_subject_alt_names: the matcher's "
            "'localhost' differs from sni 'backend.test'",
        ),
        (
            {},
            lambda c: c.update(tls_params={"tls_minimum_protocol_version": "TLSv1_3"}),
            f"{COMMON}.tls_params: is not supported on the cluster of an xDS stream",
        ),
        (
            {},
            lambda c: c.update(alpn_protocols=["http/1.1"]),
            f"{COMMON}.alpn_protocols: only h2 is supported on the cluster of an xDS stream",
        ),
        (
            {},
            lambda c: c.pop("validation_context"),
            f"{COMMON}.validation_context: is required on the cluster of an xDS stream",
        ),
        (
            {},
            _sds_validation,
            f"{COMMON}.validation_context: an SDS secret is not supported on the cluster of an "
            "xDS stream",
        ),
    ],
)
def test_what_grpcio_cannot_do_is_named_by_path(
    pki: Pki,
    socket: dict[str, Any],
    change: Callable[[dict[str, Any]], Any] | None,
    expected: str,
) -> None:
    data = tls_bootstrap(18000, pki, **socket)
    if change is not None:
        change(common_of(data))
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


@pytest.fixture
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {"a": upstream_server.start("a")}


def tls_server(pki: Pki) -> AdsServer:
    """The test ADS server over TLS with the `server` certificate, requiring a client one."""
    credentials = grpc.ssl_server_credentials(
        [(pki.server.key.read_bytes(), pki.server.cert.read_bytes())],
        root_certificates=pki.ca.path.read_bytes(),
        require_client_auth=True,
    )
    return AdsServer().start(tls=credentials)


@pytest.fixture
def tls_ads(pki: Pki) -> Iterator[AdsServer]:
    server = tls_server(pki)
    yield server
    server.stop()


def serve(server: AdsServer, port: int, upstream: Upstream) -> None:
    server.set_resources(CLUSTER, [eds_cluster("a")])
    server.set_resources(ASSIGNMENT, [assignment("a", [("127.0.0.1", upstream.port)])])
    server.set_resources(LISTENER, [listener("ingress", port, rds="r")])
    server.set_resources(ROUTE_CONFIG, [route_config("r", "a")])


async def run(kind: str, config: dict[str, Any], tmp: pytest.TempPathFactory) -> Proxy:
    return await trio.to_thread.run_sync(start_proxy, kind, config, tmp)


@pytest.mark.parametrize("trusted", ["ca", "rogue_ca"])
@pytest.mark.parametrize("kind", proxy_kinds())
async def test_an_ads_stream_over_mutual_tls(
    kind: str,
    trusted: str,
    pki: Pki,
    tls_ads: AdsServer,
    upstreams: dict[str, Upstream],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Trusting the server's CA, the stream opens and routes; trusting another CA, no stream
    opens (the proxy goes live after `initial_fetch_timeout`, with no listener)."""
    port = free_port()
    serve(tls_ads, port, upstreams["a"])
    config = tls_bootstrap(tls_ads.port, pki, node=kind, sni="backend.test", client=pki.web)
    ca = getattr(pki, trusted).path
    common_of(config)["validation_context"]["trusted_ca"] = {"filename": str(ca)}
    proxy = await run(kind, config, tmp_path_factory)
    try:
        stats = await trio.to_thread.run_sync(proxy.stats)
        if trusted == "ca":
            assert await answer(port) == "a"
            assert stats["control_plane.connected_state"] == "1"
            assert tls_ads.streams_opened >= 1
        else:
            assert stats["control_plane.connected_state"] == "0"
            assert tls_ads.streams_opened == 0
            assert (await answer(port)).startswith("error:")
    finally:
        proxy.stop()


@pytest.mark.parametrize("kind", proxy_kinds())
async def test_a_separate_sds_stream_over_tls(
    kind: str,
    pki: Pki,
    tls_ads: AdsServer,
    upstreams: dict[str, Upstream],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A static listener's certificate from `api_config_source` to a TLS SDS server."""
    tls_ads.set_resources(SECRET, [secret("server", pki.server)])
    cluster = sds_cluster(tls_ads.port)
    cluster["transport_socket"] = upstream_tls_socket(pki, sni="backend.test", client=pki.web)
    port = free_port()
    config = b.bootstrap(
        [tls_listener_json("tls", port, "up", "server", api_source(delta=False))],
        [b.static_cluster("up", [("127.0.0.1", upstreams["a"].port)]), cluster],
    )
    config["node"] = {"id": kind, "cluster": "test-mesh"}
    proxy = await run(kind, config, tmp_path_factory)
    try:
        got = ""
        with trio.move_on_after(WAIT_S):
            while got != pki.server.sha256:
                got = await trio.to_thread.run_sync(served_certificate, port, pki.ca)
                await trio.sleep(0.05)
        assert got == pki.server.sha256
        assert tls_ads.streams_opened >= 1
    finally:
        proxy.stop()
