"""TLS on real Envoy and meshcore with the same bootstrap: termination serving HTTP/1.1
keep-alive to Python `ssl`, curl and `openssl s_client` (TLS 1.2 and 1.3, ALPN); mutual TLS
with SPIFFE URI SANs accepted and rejected (no certificate, another CA, a SAN mismatch) with
the `ssl.*` stats; x-forwarded-client-cert per `forward_client_cert_details`; origination to
a Python `ssl` upstream with SNI, SAN verification and a client certificate, and a failed
verification (503 UF)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.certs import (
    OTHER_ID,
    PROXY_ID,
    WEB_ID,
    Pair,
    Pki,
    make_pki,
    tls_socket,
    upstream_tls_socket,
)
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.tcp import TcpUpstream, network_listener, pattern, tcp_proxy_filter
from tests.support.tls_upstream import TlsUpstream
from tests.support.upstream import Upstream, UpstreamServer

LISTENERS = ("term", "mtls", "append", "fwd", "tls12", "up", "tcp_tls", "tcp_up")
XFCC = "x-forwarded-client-cert"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def echo(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("echo")


@pytest.fixture(scope="module")
def tcp_echo() -> Iterator[TcpUpstream]:
    up = TcpUpstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def tls_upstreams(pki: Pki) -> Iterator[tuple[TlsUpstream, TlsUpstream]]:
    plain = TlsUpstream(pki.server.cert, pki.server.key)
    mutual = TlsUpstream(pki.server.cert, pki.server.key, client_ca=pki.ca.path)
    yield plain, mutual
    plain.close()
    mutual.close()


def _listener(name: str, port: int, socket_: dict[str, Any], **hcm: Any) -> dict[str, Any]:
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="echo")])])
    listener = http_listener(name, port, rc, stat_prefix=name, **hcm)
    listener["filter_chains"][0]["transport_socket"] = socket_
    return listener


def config(
    pki: Pki,
    ports: dict[str, int],
    echo: Upstream,
    ups: tuple[TlsUpstream, TlsUpstream],
    tcp_echo: TcpUpstream,
) -> dict[str, Any]:
    plain, mutual = ups
    details = {"subject": True, "uri": True, "dns": True}
    up_rc = route_config(
        [
            virtual_host(
                "all",
                ["*"],
                [
                    route({"prefix": "/ok"}, cluster="tls_ok"),
                    route({"prefix": "/mtls"}, cluster="tls_mtls"),
                    route({"prefix": "/badsan"}, cluster="tls_badsan"),
                ],
            )
        ]
    )
    listeners = [
        _listener("term", ports["term"], tls_socket(pki, alpn=("h2", "http/1.1"))),
        _listener(
            "mtls",
            ports["mtls"],
            tls_socket(pki, require_client_certificate=True, sans=(("URI", WEB_ID),)),
            forward_client_cert_details="SANITIZE_SET",
            set_current_client_cert_details=details,
        ),
        _listener(
            "append",
            ports["append"],
            tls_socket(pki, validate=True),
            forward_client_cert_details="APPEND_FORWARD",
            set_current_client_cert_details={"uri": True},
        ),
        _listener(
            "fwd",
            ports["fwd"],
            tls_socket(pki, sans=(("URI", WEB_ID),)),
            forward_client_cert_details="FORWARD_ONLY",
        ),
        _listener(
            "tls12",
            ports["tls12"],
            tls_socket(
                pki, alpn=("http/1.1",), tls_params={"tls_maximum_protocol_version": "TLSv1_2"}
            ),
        ),
        http_listener("up", ports["up"], up_rc, stat_prefix="up"),
        network_listener(
            "tcp_tls", ports["tcp_tls"], [tcp_proxy_filter("tcp_tls", cluster="tcp_echo")]
        ),
        network_listener("tcp_up", ports["tcp_up"], [tcp_proxy_filter("tcp_up", cluster="tls_ok")]),
    ]
    listeners[-2]["filter_chains"][0]["transport_socket"] = tls_socket(pki)
    clusters = [
        static_cluster("echo", [("127.0.0.1", echo.port)]),
        static_cluster("tcp_echo", [("127.0.0.1", tcp_echo.port)]),
        static_cluster(
            "tls_ok",
            [("127.0.0.1", plain.port)],
            transport_socket=upstream_tls_socket(
                pki, sni="backend.test", sans=(("DNS", "backend.test"),)
            ),
        ),
        static_cluster(
            "tls_mtls",
            [("127.0.0.1", mutual.port)],
            transport_socket=upstream_tls_socket(pki, sni="backend.test", client=pki.web),
        ),
        static_cluster(
            "tls_badsan",
            [("127.0.0.1", plain.port)],
            transport_socket=upstream_tls_socket(pki, sans=(("DNS", "other.test"),)),
        ),
    ]
    return bootstrap(listeners, clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(
    request: Any,
    pki: Pki,
    echo: Upstream,
    tls_upstreams: Any,
    tcp_echo: TcpUpstream,
    tmp_path_factory: Any,
) -> Iterator[Proxy]:
    ports = {name: free_port() for name in LISTENERS}
    cfg = config(pki, ports, echo, tls_upstreams, tcp_echo)
    p = start_proxy(request.param, cfg, tmp_path_factory)
    p.ports = ports  # type: ignore[attr-defined]
    yield p
    p.stop()


def port(proxy: Proxy, name: str) -> int:
    ports: dict[str, int] = proxy.ports  # type: ignore[attr-defined]
    return ports[name]


def client_context(pki: Pki, cert: Pair | None = None, **kw: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca.path))
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def connect(p: int, ctx: ssl.SSLContext) -> http.client.HTTPConnection:
    """An HTTP/1.1 connection over TLS to 127.0.0.1:`p` with SNI `localhost`."""
    raw = socket.create_connection(("127.0.0.1", p), timeout=5)
    conn = http.client.HTTPConnection("localhost", p, timeout=5)
    conn.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    return conn


def get(
    conn: http.client.HTTPConnection, path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def last_header(echo: Upstream, name: str) -> list[str]:
    assert echo.wait_until(lambda u: bool(u.requests))
    return echo.requests[-1].header_values(name)


def rejected(p: int, ctx: ssl.SSLContext) -> bool:
    """The proxy refused the handshake (with TLS 1.3 the client learns it on its first read)."""
    try:
        conn = connect(p, ctx)
        get(conn)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
        return True
    return False


def ssl_stat(proxy: Proxy, listener: str, name: str) -> int:
    return proxy.counter(f"listener.127.0.0.1_{port(proxy, listener)}.ssl.{name}")


def test_termination_serves_keep_alive_and_sanitizes_xfcc(
    proxy: Proxy, pki: Pki, echo: Upstream
) -> None:
    echo.clear()
    conn = connect(port(proxy, "term"), client_context(pki))
    assert conn.sock.version() == "TLSv1.3"
    for _ in range(3):
        status, _ = get(conn, "/", {XFCC: "By=spoofed;Hash=00"})
        assert status == 200
    conn.close()
    reqs = echo.requests
    assert len(reqs) == 3
    assert len({r.connection for r in reqs}) == 1
    assert all(r.header("x-forwarded-proto") == "https" for r in reqs)
    assert all(not r.has_header(XFCC) for r in reqs)
    assert ssl_stat(proxy, "term", "handshake") >= 1
    assert ssl_stat(proxy, "term", "no_certificate") >= 1
    assert ssl_stat(proxy, "term", "versions.TLSv1.3") >= 1


def test_alpn_and_versions_with_openssl_and_curl(proxy: Proxy, pki: Pki) -> None:
    for listener, flag, version, alpn in (
        ("term", "-tls1_3", "TLSv1.3", "http/1.1"),
        ("term", "-tls1_2", "TLSv1.2", "http/1.1"),
        ("tls12", "-tls1_2", "TLSv1.2", "http/1.1"),
    ):
        out = subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{port(proxy, listener)}",
                "-servername",
                "localhost",
                flag,
                "-alpn",
                "http/1.1",
                "-CAfile",
                str(pki.ca.path),
            ],
            input=b"",
            capture_output=True,
            timeout=10,
        )
        text = (out.stdout + out.stderr).decode()
        assert f"New, {version}, Cipher is" in text, text
        assert f"ALPN protocol: {alpn}" in text, text
        assert "Verify return code: 0 (ok)" in text, text
    refused = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port(proxy, 'tls12')}",
            "-tls1_3",
            "-CAfile",
            str(pki.ca.path),
        ],
        input=b"",
        capture_output=True,
        timeout=10,
    )
    assert b"New, TLSv1.3" not in refused.stdout + refused.stderr
    p = port(proxy, "mtls")
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--resolve",
            f"localhost:{p}:127.0.0.1",
            "--cacert",
            str(pki.ca.path),
            "--cert",
            str(pki.web.cert),
            "--key",
            str(pki.web.key),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"https://localhost:{p}/",
        ],
        capture_output=True,
        timeout=10,
    )
    assert out.stdout == b"200", out.stderr


def test_mutual_tls_accepts_the_spiffe_id_and_sets_xfcc(
    proxy: Proxy, pki: Pki, echo: Upstream
) -> None:
    echo.clear()
    conn = connect(port(proxy, "mtls"), client_context(pki, pki.web))
    status, _ = get(conn, "/", {XFCC: "By=spoofed"})
    assert status == 200
    conn.close()
    assert last_header(echo, XFCC) == [
        f'By={PROXY_ID};Hash={pki.web.sha256};Subject="CN=web,O=meshcore test";'
        f"URI={WEB_ID};DNS=web.default.svc"
    ]


def test_mutual_tls_rejections_are_counted(proxy: Proxy, pki: Pki) -> None:
    p = port(proxy, "mtls")
    names = (
        "connection_error",
        "fail_verify_no_cert",
        "fail_verify_san",
        "fail_verify_error",
        "handshake",
    )
    before = {n: ssl_stat(proxy, "mtls", n) for n in names}
    assert rejected(p, client_context(pki))  # no certificate
    assert rejected(p, client_context(pki, pki.other))  # SAN mismatch
    assert rejected(p, client_context(pki, pki.rogue))  # another CA
    after = {n: ssl_stat(proxy, "mtls", n) for n in names}
    # As Envoy: a failed verification counts its `fail_verify_*`, not `connection_error`.
    assert {n: after[n] - before[n] for n in names} == {
        "connection_error": 0,
        "fail_verify_no_cert": 1,
        "fail_verify_san": 1,
        "fail_verify_error": 1,
        "handshake": 0,
    }


def test_append_forward_and_forward_only(proxy: Proxy, pki: Pki, echo: Upstream) -> None:
    echo.clear()
    conn = connect(port(proxy, "append"), client_context(pki, pki.web))
    assert get(conn, "/", {XFCC: "By=earlier"})[0] == 200
    assert last_header(echo, XFCC) == [
        f"By=earlier,By={PROXY_ID};Hash={pki.web.sha256};URI={WEB_ID}"
    ]
    # Without a client certificate the connection is not mutual TLS: the header is removed.
    echo.clear()
    conn = connect(port(proxy, "append"), client_context(pki))
    assert get(conn, "/", {XFCC: "By=earlier"})[0] == 200
    assert last_header(echo, XFCC) == []
    echo.clear()
    conn = connect(port(proxy, "fwd"), client_context(pki, pki.web))
    assert get(conn, "/", {XFCC: "By=earlier"})[0] == 200
    assert last_header(echo, XFCC) == ["By=earlier"]


def test_origination_with_sni_san_checks_and_client_certificates(
    proxy: Proxy, tls_upstreams: Any
) -> None:
    plain, mutual = tls_upstreams
    conn = http.client.HTTPConnection("127.0.0.1", port(proxy, "up"), timeout=5)
    status, body = get(conn, "/ok")
    assert status == 200
    assert json.loads(body) == {"sni": "backend.test", "client_uris": []}
    # The pooled TLS connection is reused (TLS 1.3 session tickets do not make it look dead).
    opened = proxy.counter("cluster.tls_ok.upstream_cx_total")
    assert get(conn, "/ok")[0] == 200
    assert proxy.counter("cluster.tls_ok.upstream_cx_total") == opened
    status, body = get(conn, "/mtls")
    assert status == 200
    assert json.loads(body) == {"sni": "backend.test", "client_uris": [WEB_ID]}
    conn.request("GET", "/badsan")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 503
    assert proxy.counter("cluster.tls_badsan.upstream_cx_connect_fail") >= 1
    assert proxy.counter("cluster.tls_badsan.ssl.fail_verify_san") >= 1
    assert proxy.counter("cluster.tls_ok.ssl.handshake") >= 1
    assert not any(n in (OTHER_ID,) for n in plain.snis)


def test_tcp_proxy_behind_termination_and_to_a_tls_cluster(proxy: Proxy, pki: Pki) -> None:
    data = pattern(1 << 20)
    raw = socket.create_connection(("127.0.0.1", port(proxy, "tcp_tls")), timeout=10)
    with client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(data)
        got = bytearray()
        while len(got) < len(data):
            chunk = tls.recv(65536)
            assert chunk, "closed early"
            got += chunk
    assert bytes(got) == data
    with socket.create_connection(("127.0.0.1", port(proxy, "tcp_up")), timeout=10) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        reply = b""
        while b"}" not in reply:
            chunk = plain.recv(65536)
            assert chunk, reply
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body) == {"sni": "backend.test", "client_uris": []}
