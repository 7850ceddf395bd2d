"""Several filter chains per listener, on Envoy and meshcore with the same bootstrap: chains
chosen by destination port, source prefix, transport protocol (TLS inspector) and SNI
(exact and wildcard), `default_filter_chain`, no match (closed, counted), SNI passthrough of
real TLS to backends whose certificates the client sees; and (meshcore only) a config update
that moves an open connection to another chain."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.bootstrap import (
    HCM_TYPE,
    ROUTER_TYPE,
    TLS_INSPECTOR,
    bootstrap,
    route,
    route_config,
    socket_address,
    static_cluster,
    virtual_host,
)
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.sni_certs import Ca, TlsBackend, make_ca, make_server_cert
from tests.support.tcp import tcp_proxy_filter

LISTENERS = (
    "byport",
    "otherport",
    "bysource",
    "mixed",
    "sni",
    "dflt",
    "noinspector",
    "alpn",
    "order",
)


def answer_chain(body: str, match: dict[str, Any] | None = None) -> dict[str, Any]:
    """A chain whose connection manager answers every request with `body`."""
    rc = route_config(
        [
            virtual_host(
                "all",
                ["*"],
                [
                    route(
                        {"prefix": "/"},
                        direct_response={"status": 200, "body": {"inline_string": body}},
                    )
                ],
            )
        ]
    )
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": f"hcm_{body.replace('-', '_')}",
        "route_config": rc,
        "http_filters": [
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}
        ],
    }
    chain: dict[str, Any] = {
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    }
    if match is not None:
        chain["filter_chain_match"] = match
    return chain


def relay_chain(cluster: str, match: dict[str, Any], stat_prefix: str = "") -> dict[str, Any]:
    relay = tcp_proxy_filter(stat_prefix or f"relay_{cluster}", cluster=cluster)
    return {"filter_chain_match": match, "filters": [relay]}


def listener(
    name: str, port: int, chains: list[dict[str, Any]], inspector: bool = False, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "stat_prefix": name,
        "address": socket_address("127.0.0.1", port),
        "filter_chains": chains,
        **extra,
    }
    if inspector:
        out["listener_filters"] = [TLS_INSPECTOR]
    return out


class Backends:
    def __init__(self, directory: Path) -> None:
        self.ca: Ca = make_ca(directory)
        self.a = TlsBackend(*make_server_cert(self.ca, directory, "backend.example.com"), "A")
        self.b = TlsBackend(*make_server_cert(self.ca, directory, "api.wild.example"), "B")

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture(scope="module")
def backends(tmp_path_factory) -> Iterator[Backends]:
    out = Backends(tmp_path_factory.mktemp("certs"))
    yield out
    out.close()


def config(ports: dict[str, int], backends: Backends) -> dict[str, Any]:
    unused_port = free_port()
    listeners = [
        listener(
            "byport",
            ports["byport"],
            [
                answer_chain("port-match", {"destination_port": ports["byport"]}),
                answer_chain("any-port"),
            ],
        ),
        listener(
            "otherport",
            ports["otherport"],
            [
                answer_chain("wrong-port", {"destination_port": unused_port}),
                answer_chain("any-port"),
            ],
        ),
        listener(
            "bysource",
            ports["bysource"],
            [
                answer_chain(
                    "from-two",
                    {"source_prefix_ranges": [{"address_prefix": "127.0.0.2", "prefix_len": 32}]},
                ),
                answer_chain("from-other"),
            ],
        ),
        listener(
            "mixed",
            ports["mixed"],
            [relay_chain("tls_a", {"transport_protocol": "tls"}), answer_chain("plain")],
            inspector=True,
        ),
        listener(
            "sni",
            ports["sni"],
            [
                relay_chain("tls_a", {"server_names": ["backend.example.com"]}),
                relay_chain("tls_b", {"server_names": ["*.wild.example"]}),
            ],
            inspector=True,
        ),
        listener(
            "dflt",
            ports["dflt"],
            [relay_chain("tls_a", {"server_names": ["backend.example.com"]})],
            inspector=True,
            default_filter_chain=answer_chain("default"),
        ),
        listener(
            "noinspector",
            ports["noinspector"],
            [
                relay_chain("tls_a", {"server_names": ["backend.example.com"]}, "relay_blind"),
                answer_chain("no-sni"),
            ],
        ),
        listener(
            "alpn",
            ports["alpn"],
            [
                relay_chain(
                    "tls_b", {"transport_protocol": "tls", "application_protocols": ["h2"]}
                ),
                relay_chain("tls_a", {"transport_protocol": "tls"}),
            ],
            inspector=True,
        ),
        # Step 4 (transport protocol) comes before step 5 (ALPN): the `tls` chain wins even
        # for a client offering h2, and the ALPN chain is dropped.
        listener(
            "order",
            ports["order"],
            [
                relay_chain("tls_b", {"application_protocols": ["h2"]}),
                relay_chain("tls_a", {"transport_protocol": "tls"}),
            ],
            inspector=True,
        ),
    ]
    clusters = [
        static_cluster("tls_a", [("127.0.0.1", backends.a.port)]),
        static_cluster("tls_b", [("127.0.0.1", backends.b.port)]),
    ]
    return bootstrap(listeners, clusters)


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, backends, tmp_path_factory) -> Iterator[tuple[Proxy, dict[str, int]]]:
    ports = {name: free_port() for name in LISTENERS}
    running = start_proxy(request.param, config(ports, backends), tmp_path_factory)
    yield running, ports
    running.stop()


# ---- clients ---------------------------------------------------------------------------------


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:length]


def get(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    return read_response(sock)


def get_body(port: int, source: str = "127.0.0.1") -> bytes:
    with connect(port, source) as sock:
        status, _, body = get(sock)
    assert status == 200
    return body


def tls_exchange(
    port: int, backends: Backends, server_name: str, alpn: list[str] | None = None
) -> tuple[str, bytes]:
    """A TLS session through the proxy to `server_name` (offering `alpn`): (the subject CN
    the client saw, the bytes it got back)."""
    context = ssl.create_default_context(cafile=str(backends.ca.pem_path))
    if alpn:
        context.set_alpn_protocols(alpn)
    with connect(port) as raw, context.wrap_socket(raw, server_hostname=server_name) as tls:
        cert = tls.getpeercert()
        tls.sendall(b"hello over tls\n")
        got = b""
        while True:
            chunk = tls.recv(4096)
            if not chunk:
                break
            got += chunk
    subject = dict(item[0] for item in cert["subject"])
    return subject["commonName"], got


def closed_without_data(port: int, payload: bytes) -> bool:
    with connect(port) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(payload)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


def client_hello(server_name: str) -> bytes:
    """The ClientHello Python's `ssl` sends for `server_name` (never completed)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def wait_counter(proxy: Proxy, name: str, want: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        value = proxy.counter(name)
        if value >= want or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


# ---- chain selection ---------------------------------------------------------------------------


def test_destination_port_chain_beats_the_catch_all(proxy):
    _, ports = proxy
    assert get_body(ports["byport"]) == b"port-match"
    # A chain for another port never matches; the catch-all takes the connection.
    assert get_body(ports["otherport"]) == b"any-port"


def test_source_prefix_picks_the_chain(proxy):
    _, ports = proxy
    assert get_body(ports["bysource"], source="127.0.0.2") == b"from-two"
    assert get_body(ports["bysource"], source="127.0.0.1") == b"from-other"


def test_tls_and_plain_on_one_port_by_transport_protocol(proxy, backends):
    running, ports = proxy
    assert get_body(ports["mixed"]) == b"plain"
    subject, got = tls_exchange(ports["mixed"], backends, "backend.example.com")
    assert subject == "backend.example.com"
    assert got == b"A backend.example.com hello over tls\n"
    assert wait_counter(running, "tls_inspector.tls_found", 1) >= 1
    assert running.counter("tls_inspector.tls_not_found") >= 1


def test_sni_passthrough_reaches_the_backend_that_owns_the_name(proxy, backends):
    running, ports = proxy
    subject, got = tls_exchange(ports["sni"], backends, "backend.example.com")
    # The client's TLS session ended at the backend: its certificate, its bytes.
    assert subject == "backend.example.com"
    assert got == b"A backend.example.com hello over tls\n"
    assert wait_counter(running, "tcp.relay_tls_a.downstream_cx_total", 1) >= 1
    assert running.counter("tls_inspector.sni_found") >= 1


def test_wildcard_server_name(proxy, backends):
    _, ports = proxy
    subject, got = tls_exchange(ports["sni"], backends, "api.wild.example")
    assert subject == "api.wild.example"
    assert got == b"B api.wild.example hello over tls\n"


def test_no_match_closes_and_counts(proxy):
    running, ports = proxy
    before = running.counter("listener.sni.no_filter_chain_match")
    accepted = running.counter("listener.sni.downstream_cx_total")
    assert closed_without_data(ports["sni"], client_hello("nomatch.example"))
    # Plain text: not TLS, no server name: no chain either.
    assert closed_without_data(ports["sni"], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_counter(running, "listener.sni.no_filter_chain_match", before + 2) == before + 2
    # No connection was made for a chain, so none is counted as accepted (as in Envoy).
    assert running.counter("listener.sni.downstream_cx_total") == accepted


def test_default_filter_chain_takes_what_no_chain_matches(proxy, backends):
    _, ports = proxy
    assert get_body(ports["dflt"]) == b"default"
    subject, _ = tls_exchange(ports["dflt"], backends, "backend.example.com")
    assert subject == "backend.example.com"


def test_server_names_without_the_tls_inspector(proxy, backends):
    """As Envoy 1.40: no inspector, no server name known, so a `server_names` chain never
    matches; the TLS client lands on the HTTP chain, which gives it no ServerHello (Envoy
    answers 400 at the first byte, meshcore waits for a request head: either way the
    handshake fails)."""
    running, ports = proxy
    assert get_body(ports["noinspector"]) == b"no-sni"
    context = ssl.create_default_context(cafile=str(backends.ca.pem_path))
    with connect(ports["noinspector"]) as raw:
        raw.settimeout(2)
        with pytest.raises((ssl.SSLError, TimeoutError, ConnectionError)):
            context.wrap_socket(raw, server_hostname="backend.example.com")
    assert wait_counter(running, "http.hcm_no_sni.downstream_cx_total", 2) == 2
    assert running.counter("tcp.relay_blind.downstream_cx_total") == 0


def test_application_protocols_any_offered(proxy, backends):
    _, ports = proxy
    subject, _ = tls_exchange(ports["alpn"], backends, "api.wild.example", ["spdy/1", "h2"])
    assert subject == "api.wild.example"
    subject, _ = tls_exchange(ports["alpn"], backends, "backend.example.com", ["http/1.1"])
    assert subject == "backend.example.com"
    subject, _ = tls_exchange(ports["alpn"], backends, "backend.example.com")
    assert subject == "backend.example.com"


def test_transport_protocol_is_matched_before_application_protocols(proxy, backends):
    running, ports = proxy
    subject, _ = tls_exchange(ports["order"], backends, "backend.example.com", ["h2"])
    assert subject == "backend.example.com"
    assert wait_counter(running, "tls_inspector.alpn_found", 1) >= 1


# ---- config update (meshcore) ----------------------------------------------------------------


def moving_config(port: int, version: str, catch_all: bool) -> dict[str, Any]:
    chains = [
        answer_chain(
            f"{version}-loopback-one",
            {"source_prefix_ranges": [{"address_prefix": "127.0.0.1", "prefix_len": 32}]},
        )
        if version == "v2"
        else answer_chain(
            f"{version}-two",
            {"source_prefix_ranges": [{"address_prefix": "127.0.0.2", "prefix_len": 32}]},
        )
    ]
    if catch_all:
        chains.append(answer_chain(f"{version}-any"))
    return bootstrap([listener("moving", port, chains)], [])


@pytest.mark.meshcore_only
def test_config_update_moves_an_open_connection_to_its_new_chain(tmp_path_factory):
    port = free_port()
    running = start_proxy("meshcore", moving_config(port, "v1", True), tmp_path_factory)
    try:
        with connect(port) as kept:
            assert get(kept)[2] == b"v1-any"
            running.replace_config(moving_config(port, "v2", True))
            running.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while get_body(port) != b"v2-loopback-one":
                assert time.monotonic() < deadline, "reload not applied"
                time.sleep(0.05)
            # The open connection chose again with its own source address.
            status, headers, body = get(kept)
            assert (status, body) == (200, b"v2-loopback-one")
            assert headers.get("connection") != "close"
            # No chain matches it any more: the request is served, then the connection closes.
            running.replace_config(moving_config(port, "v1", False))
            running.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while not closed_without_data(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
                assert time.monotonic() < deadline, "reload not applied"
                time.sleep(0.05)
            status, headers, body = get(kept)
            assert (status, body) == (200, b"v2-loopback-one")
            assert headers.get("connection") == "close"
            assert kept.recv(1) == b""
    finally:
        running.stop()
