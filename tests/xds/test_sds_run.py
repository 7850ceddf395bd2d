"""SDS on `meshcore run`, driven by the test ADS server and by files: a listener whose
certificate is an SDS secret warms until the secret arrives, a pushed secret version is
served to new handshakes while an open connection keeps working, a bad secret is NACKed
naming its field and the old certificate keeps serving, and a file's secret rotates when
the file is replaced; asserted with real TLS clients, on stats and on /config_dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from envoy.config.cluster.v3 import cluster_pb2

from tests.support import bootstrap as b
from tests.support.certs import OTHER_ID, WEB_ID, Pki, make_pki
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.tls_upstream import TlsUpstream
from tests.support.upstream import Upstream, UpstreamServer

from .ads_server import AdsServer
from .builders import ADS_SOURCE, CLUSTER, LISTENER, listener, parse, routes_json, xds_bootstrap
from .harness import WAIT_S, request
from .sds import (
    SECRET,
    OpenTls,
    mismatched_secret,
    secret,
    served_certificate,
    tls_listener,
    write_sds_file,
)
from .traffic import answer, config_dump_section

UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

pytestmark = pytest.mark.meshcore_only


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("a")


def bootstrap(ads_port: int, upstream: Upstream, delta: bool = False) -> dict[str, Any]:
    return xds_bootstrap(
        ads_port,
        node="meshcore",
        delta=delta,
        clusters=[b.static_cluster("up", [("127.0.0.1", upstream.port)])],
        initial_fetch_timeout="1s",
    )


async def start(proxies: list[Proxy], config: dict[str, Any], tmp_path_factory: Any) -> Proxy:
    proxy = await trio.to_thread.run_sync(start_proxy, "meshcore", config, tmp_path_factory)
    proxies.append(proxy)
    return proxy


async def served(port: int, pki: Pki) -> str:
    return await trio.to_thread.run_sync(served_certificate, port, pki.ca)


async def until_served(port: int, pki: Pki, fingerprint: str) -> None:
    got = ""
    with trio.move_on_after(WAIT_S):
        while got != fingerprint:
            got = await served(port, pki)
            if got == fingerprint:
                return
            await trio.sleep(0.05)
    raise AssertionError(f"port {port} serves {got!r}, expected {fingerprint}")


async def until_counter(proxy: Proxy, name: str, value: int) -> None:
    got = -1
    with trio.move_on_after(WAIT_S):
        while got != value:
            got = await trio.to_thread.run_sync(proxy.counter, name)
            if got != value:
                await trio.sleep(0.05)
    assert got == value, f"{name} = {got}, expected {value}"


def secrets_dump(proxy: Proxy) -> Any:
    status, body = proxy.admin("GET", "/config_dump")
    assert status == 200
    return config_dump_section(body, "Secrets")


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_ads_secret_warms_rotates_and_a_bad_one_is_nacked(
    ads_server: AdsServer,
    upstream: Upstream,
    pki: Pki,
    proxies: list[Proxy],
    tmp_path_factory: Any,
    delta: bool,
) -> None:
    port = free_port()
    ads_server.set_resources(CLUSTER, [])
    ads_server.set_resources(LISTENER, [tls_listener("tls", port, "up", "server", ADS_SOURCE)])
    proxy = await start(proxies, bootstrap(ads_server.port, upstream, delta), tmp_path_factory)

    # Warming: the listener waits for its secret (subscribed by name), nothing listens.
    subscribed = await request(ads_server, lambda r: r.type_url == SECRET)
    names = (
        subscribed.request.resource_names_subscribe if delta else subscribed.request.resource_names
    )
    assert list(names) == ["server"]
    assert await served(port, pki) == ""
    stats = proxy.stats()
    assert stats["listener_manager.total_listeners_warming"] == "1"
    assert secrets_dump(proxy)["dynamic_warming_secrets"] == [{"name": "server"}]

    # The secret arrives: the listener serves it.
    first = ads_server.set_resources(SECRET, [secret("server", pki.server)])
    await until_served(port, pki, pki.server.sha256)
    await until_counter(proxy, "sds.server.update_success", 1)
    opened = await trio.to_thread.run_sync(OpenTls, port, pki.ca)
    assert opened.certificate == pki.server.sha256
    assert await trio.to_thread.run_sync(opened.get) == (200, "a")

    # Rotation: new handshakes get the new certificate, the open connection keeps working.
    rotated = pki.ca.issue("server2", "proxy-2", ("localhost",), ip=True)
    second = ads_server.set_resources(SECRET, [secret("server", rotated)])
    assert second != first
    await until_served(port, pki, rotated.sha256)
    assert await trio.to_thread.run_sync(opened.get) == (200, "a")
    await until_counter(proxy, "sds.server.update_success", 2)

    # A key that does not match its certificate: NACKed naming the secret and the field;
    # the rotated certificate keeps serving, the open connection too.
    ads_server.set_resources(SECRET, [mismatched_secret("server", pki.server, pki.web)])
    nack = await request(ads_server, lambda r: r.type_url == SECRET and r.is_nack())
    assert nack.error == (
        "secrets[server].tls_certificate.private_key: "
        "does not match the certificate in certificate_chain"
    )
    await until_counter(proxy, "sds.server.update_rejected", 1)
    assert await served(port, pki) == rotated.sha256
    assert await trio.to_thread.run_sync(opened.get) == (200, "a")
    opened.close()

    dump = secrets_dump(proxy)
    [active] = dump["dynamic_active_secrets"]
    assert active["name"] == "server"
    assert active["version_info"] == second
    certificate = active["secret"]["tls_certificate"]
    assert certificate["private_key"] == {"inline_string": "[redacted]"}
    assert certificate["certificate_chain"]["inline_string"] == rotated.cert.read_text()
    assert "PRIVATE KEY" not in proxy.admin("GET", "/config_dump")[1]

    # The listener goes away: the secret is unsubscribed.
    mark = len(ads_server.recorded)
    ads_server.set_resources(LISTENER, [])
    if delta:
        gone = await request(
            ads_server,
            lambda r: r.type_url == SECRET and bool(r.request.resource_names_unsubscribe),
            mark,
        )
        assert list(gone.request.resource_names_unsubscribe) == ["server"]
    else:
        await request(
            ads_server, lambda r: r.type_url == SECRET and not r.request.resource_names, mark
        )
    assert await served(port, pki) == ""


async def test_file_secret_rotates_when_the_file_is_replaced(
    ads_server: AdsServer,
    upstream: Upstream,
    pki: Pki,
    proxies: list[Proxy],
    tmp_path: Path,
    tmp_path_factory: Any,
) -> None:
    port = free_port()
    sds_file = tmp_path / "server-secret.yaml"
    write_sds_file(sds_file, "f1", [secret("server", pki.server)])
    source = {"path_config_source": {"path": str(sds_file)}, "resource_api_version": "V3"}
    ads_server.set_resources(CLUSTER, [])
    ads_server.set_resources(LISTENER, [tls_listener("tls", port, "up", "server", source)])
    proxy = await start(proxies, bootstrap(ads_server.port, upstream), tmp_path_factory)
    await until_served(port, pki, pki.server.sha256)
    opened = await trio.to_thread.run_sync(OpenTls, port, pki.ca)

    rotated = pki.ca.issue("server2", "proxy-2", ("localhost",), ip=True)
    write_sds_file(sds_file, "f2", [secret("server", rotated)])
    await until_served(port, pki, rotated.sha256)
    assert await trio.to_thread.run_sync(opened.get) == (200, "a")

    # A bad file is rejected (no stream to NACK on): the rotated certificate keeps serving.
    write_sds_file(sds_file, "f3", [mismatched_secret("server", pki.server, pki.web)])
    await until_counter(proxy, "sds.server.update_rejected", 1)
    assert await served(port, pki) == rotated.sha256
    assert proxy.counter("sds.server.update_success") == 2
    [active] = secrets_dump(proxy)["dynamic_active_secrets"]
    assert active["version_info"] == "f2"
    opened.close()


async def test_an_upstream_client_certificate_from_sds_rotates(
    ads_server: AdsServer, pki: Pki, proxies: list[Proxy], tmp_path_factory: Any
) -> None:
    """Mutual TLS to an upstream with the client certificate from SDS: the cluster (and the
    listener routing to it) warms until the secret comes; a new version is presented on the
    next upstream connections (the upstream reports the client certificate's URI SAN)."""
    upstream = TlsUpstream(pki.server.cert, pki.server.key, client_ca=pki.ca.path)
    try:
        port = free_port()
        cluster = b.static_cluster("secure", [("127.0.0.1", upstream.port)])
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": UPSTREAM_TLS,
                "common_tls_context": {
                    "tls_certificate_sds_secret_configs": [
                        {"name": "client", "sds_config": ADS_SOURCE}
                    ],
                    "validation_context": {"trusted_ca": {"filename": str(pki.ca.path)}},
                },
            },
        }
        ads_server.set_resources(CLUSTER, [parse(cluster_pb2.Cluster, cluster)])
        routes = routes_json("r", "secure")
        ads_server.set_resources(LISTENER, [listener("ingress", port, routes=routes)])
        config = xds_bootstrap(ads_server.port, node="meshcore", initial_fetch_timeout="1s")
        proxy = await start(proxies, config, tmp_path_factory)
        await request(ads_server, lambda r: r.type_url == SECRET)
        assert proxy.stats()["cluster_manager.warming_clusters"] == "1"
        assert await answer(port) == "error:OSError"  # nothing listens

        ads_server.set_resources(SECRET, [secret("client", pki.web)])
        assert await until_client_uris(port, [WEB_ID])
        ads_server.set_resources(SECRET, [secret("client", pki.other)])
        assert await until_client_uris(port, [OTHER_ID])
    finally:
        upstream.close()


async def until_client_uris(port: int, uris: list[str]) -> bool:
    got: Any = None
    with trio.move_on_after(WAIT_S):
        while True:
            try:
                response = await get(port)
                got = orjson.loads(response.body) if response.status == 200 else response.status
            except OSError as exc:
                got = repr(exc)
            if isinstance(got, dict) and got["client_uris"] == uris:
                return True
            await trio.sleep(0.05)
    raise AssertionError(f"the upstream saw {got!r}, expected client URIs {uris}")
