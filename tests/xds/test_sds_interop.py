"""SDS interop: one ADS test server pushes the same secrets to real Envoy and to meshcore;
after each push both serve the same certificate to a new TLS client, both NACK the same
bad secret and keep the certificate they had, and both show the secret in /config_dump
with the private key redacted the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from tests.support import bootstrap as b
from tests.support.certs import Pki, make_pki
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

from .ads_server import AdsServer
from .builders import ADS_SOURCE, CLUSTER, LISTENER, xds_bootstrap
from .harness import WAIT_S, request
from .sds import (
    SECRET,
    OpenTls,
    api_source,
    mismatched_secret,
    sds_cluster,
    secret,
    served_certificate,
    tls_listener,
    tls_listener_json,
    write_sds_file,
)
from .traffic import config_dump_section


@pytest.fixture
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("a")


async def until_all_serve(ports: dict[str, int], pki: Pki, fingerprint: str) -> None:
    for kind, port in ports.items():
        got = ""
        with trio.move_on_after(WAIT_S):
            while got != fingerprint:
                got = await trio.to_thread.run_sync(served_certificate, port, pki.ca)
                if got != fingerprint:
                    await trio.sleep(0.05)
        assert got == fingerprint, f"{kind} serves {got!r}, expected {fingerprint}"


def active_secret(proxy: Proxy) -> dict[str, Any]:
    status, body = proxy.admin("GET", "/config_dump")
    assert status == 200
    [active] = config_dump_section(body, "Secrets")["dynamic_active_secrets"]
    found: dict[str, Any] = active
    return found


@pytest.mark.parametrize("source", ["ads", "api"])
@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_envoy_and_meshcore_serve_the_same_certificate_after_each_push(
    ads_server: AdsServer,
    upstream: Upstream,
    proxies_by_kind: dict[str, Proxy],
    tmp_path: Path,
    tmp_path_factory: Any,
    delta: bool,
    source: str,
) -> None:
    """`source`: the secret over the ADS stream, or over a separate SDS stream to another
    server (`api_config_source`)."""
    sds_server = AdsServer().start() if source == "api" else ads_server
    try:
        await _serve_the_same_certificate(
            ads_server, sds_server, upstream, proxies_by_kind, tmp_path, tmp_path_factory, delta
        )
    finally:
        if sds_server is not ads_server:
            sds_server.stop()


async def _serve_the_same_certificate(
    ads_server: AdsServer,
    sds_server: AdsServer,
    upstream: Upstream,
    proxies_by_kind: dict[str, Proxy],
    tmp_path: Path,
    tmp_path_factory: Any,
    delta: bool,
) -> None:
    pki = make_pki(tmp_path)
    kinds = proxy_kinds()
    ports = {kind: free_port() for kind in kinds}
    ads_server.set_resources(CLUSTER, [])
    separate = sds_server is not ads_server
    sds = api_source(delta) if separate else ADS_SOURCE
    for kind, port in ports.items():
        listener = tls_listener("tls", port, "up", "server", sds)
        ads_server.set_resources(LISTENER, [listener], node=kind)
    sds_server.set_resources(SECRET, [secret("server", pki.server)])
    clusters = [b.static_cluster("up", [("127.0.0.1", upstream.port)])]
    if separate:
        clusters.append(sds_cluster(sds_server.port))
    for kind in kinds:
        config = xds_bootstrap(ads_server.port, node=kind, delta=delta, clusters=clusters)
        proxies_by_kind[kind] = await trio.to_thread.run_sync(
            start_proxy, kind, config, tmp_path_factory
        )
    await until_all_serve(ports, pki, pki.server.sha256)
    opened = {
        kind: await trio.to_thread.run_sync(OpenTls, port, pki.ca) for kind, port in ports.items()
    }

    rotated = pki.ca.issue("server2", "proxy-2", ("localhost",), ip=True)
    version = sds_server.set_resources(SECRET, [secret("server", rotated)])
    await until_all_serve(ports, pki, rotated.sha256)
    for kind, conn in opened.items():
        assert await trio.to_thread.run_sync(conn.get) == (200, "a"), kind

    mark = len(sds_server.recorded)
    sds_server.set_resources(SECRET, [mismatched_secret("server", pki.server, pki.web)])
    for kind in kinds:
        nack = await request(
            sds_server, lambda r, k=kind: r.node == k and r.type_url == SECRET and r.is_nack(), mark
        )
        assert nack.error, kind  # Envoy's text is BoringSSL's; meshcore's names the field
        if kind == "meshcore":
            assert nack.error == (
                "secrets[server].tls_certificate.private_key: "
                "does not match the certificate in certificate_chain"
            )
    await until_all_serve(ports, pki, rotated.sha256)
    for kind, conn in opened.items():
        assert await trio.to_thread.run_sync(conn.get) == (200, "a"), kind
        conn.close()

    dumps = {kind: active_secret(proxy) for kind, proxy in proxies_by_kind.items()}
    for kind, dump in dumps.items():
        assert dump["name"] == "server", kind
        certificate = dump["secret"]["tls_certificate"]
        assert certificate["private_key"] == {"inline_string": "[redacted]"}, kind
    # Envoy's dump shows the version it NACKed (SdsApi records a secret before its TLS
    # context refuses it) while it serves the one before; meshcore shows what it serves.
    if "meshcore" in dumps:
        assert dumps["meshcore"]["version_info"] == version
        served = dumps["meshcore"]["secret"]["tls_certificate"]["certificate_chain"]
        assert served["inline_string"] == rotated.cert.read_text()
    for kind, proxy in proxies_by_kind.items():
        stats = proxy.stats()
        assert stats.get("sds.server.update_success") == "2", kind
        assert stats.get("sds.server.update_rejected") == "1", kind


async def test_static_listeners_rotate_a_file_secret_the_same_way(
    upstream: Upstream, proxies_by_kind: dict[str, Proxy], tmp_path: Path, tmp_path_factory: Any
) -> None:
    """No xDS server: a static listener whose certificate is an SDS file (a mounted secret
    replaced by a rename), on both proxies_by_kind."""
    pki = make_pki(tmp_path)
    sds_file = tmp_path / "server-secret.yaml"
    write_sds_file(sds_file, "f1", [secret("server", pki.server)])
    source = {"path_config_source": {"path": str(sds_file)}, "resource_api_version": "V3"}
    ports = {kind: free_port() for kind in proxy_kinds()}
    for kind, port in ports.items():
        config = b.bootstrap(
            [tls_listener_json("tls", port, "up", "server", source)],
            [b.static_cluster("up", [("127.0.0.1", upstream.port)])],
        )
        config["node"] = {"id": kind, "cluster": "test-mesh"}  # Envoy's SDS needs it
        proxies_by_kind[kind] = await trio.to_thread.run_sync(
            start_proxy, kind, config, tmp_path_factory
        )
    await until_all_serve(ports, pki, pki.server.sha256)
    opened = {
        kind: await trio.to_thread.run_sync(OpenTls, port, pki.ca) for kind, port in ports.items()
    }

    rotated = pki.ca.issue("server2", "proxy-2", ("localhost",), ip=True)
    write_sds_file(sds_file, "f2", [secret("server", rotated)])
    await until_all_serve(ports, pki, rotated.sha256)
    for kind, conn in opened.items():
        assert await trio.to_thread.run_sync(conn.get) == (200, "a"), kind

    write_sds_file(sds_file, "f3", [mismatched_secret("server", pki.server, pki.web)])
    if "meshcore" in proxies_by_kind:
        with trio.fail_after(WAIT_S):
            while proxies_by_kind["meshcore"].counter("sds.server.update_rejected") < 1:
                await trio.sleep(0.05)
    await until_all_serve(ports, pki, rotated.sha256)
    for kind, conn in opened.items():
        assert await trio.to_thread.run_sync(conn.get) == (200, "a"), kind
        conn.close()
