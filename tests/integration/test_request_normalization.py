"""Request normalization before routing, differential over real Envoy and meshcore on the same
config: `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action` (forward, reject,
redirect), `headers_with_underscores_action` (reject, drop) and `max_headers_count`. Each case
asserts the client's status, whether the connection closed, and what the upstream received
(the normalized request line, the dropped header) — the same on both proxies."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

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
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

# Listener options, by name.
LISTENERS = {
    # All three path options: unescape, then normalize, then merge.
    "all": {
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD",
    },
    "normalize": {"normalize_path": True},
    "reject": {
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "common_http_protocol_options": {
            "headers_with_underscores_action": "REJECT_REQUEST",
            "max_headers_count": 3,
        },
    },
    "redirect": {
        "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
        "common_http_protocol_options": {"headers_with_underscores_action": "DROP_HEADER"},
    },
}


@dataclass(frozen=True)
class Case:
    listener: str
    target: str
    status: int
    # The request line's target the upstream received (None: the upstream saw nothing).
    forwarded: str | None
    closes: bool = False
    headers: tuple[str, ...] = ()
    location: str | None = None


# Expected values read from Envoy 1.40 on the same requests.
CASES = [
    Case("normalize", "/a/./b", 200, "/a/b"),
    Case("normalize", "/a/b/../c?x=/../", 200, "/a/c?x=/../"),
    Case("normalize", "/..", 200, "/"),
    Case("normalize", "/a/%2E%2E/b", 200, "/b"),
    Case("normalize", "/%41%7e", 200, "/A~"),
    Case("normalize", "/a\\b", 200, "/a/b"),
    Case("normalize", "/a%2Fb", 200, "/a%2Fb"),
    Case("normalize", "/a{b}", 200, "/a%7Bb%7D"),
    Case("normalize", "/a//b", 200, "/a//b"),
    Case("all", "//a///b?x=//y", 200, "/a/b?x=//y"),
    Case("all", "/a/%2e%2e%2fb", 200, "/b"),
    Case("all", "/a%5Cb", 200, "/a/b"),
    Case("reject", "/a%2fb", 400, None, closes=True),
    Case("reject", "/a%20b", 200, "/a%20b"),
    Case("reject", "/x", 400, None, closes=True, headers=("x_y: 1",)),
    Case("reject", "/x", 431, None, closes=True, headers=("a: 1", "b: 2", "c: 3")),
    Case("reject", "/x", 200, "/x", headers=("a: 1",)),
    Case("redirect", "/a%2Fb?q", 307, None, location="/a/b?q"),
    Case("redirect", "/x", 200, "/x", headers=("x_y: 1", "z: 2")),
]


@dataclass
class Seen:
    status: int | None
    closed: bool
    head: str


async def exchange(port: int, data: bytes) -> Seen:
    """Sends one request and reads the response head; `closed` if the proxy then closes."""
    got = b""
    closed = False
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(data)
        with trio.move_on_after(2):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    closed = True
                    break
                got += chunk
    head = got.partition(b"\r\n\r\n")[0].decode("latin-1")
    first = head.split(" ")
    return Seen(int(first[1]) if len(first) > 1 else None, closed, head)


@pytest.fixture(scope="module")
def backend(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("backend")


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, backend, tmp_path_factory) -> Iterator[tuple[Proxy, dict[str, int]]]:
    ports = {name: free_port() for name in LISTENERS}
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="backend")])])
    listeners = [
        http_listener(name, ports[name], rc, stat_prefix=name, **options)
        for name, options in LISTENERS.items()
    ]
    config = bootstrap(listeners, [static_cluster("backend", [("127.0.0.1", backend.port)])])
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running, ports
    running.stop()


def request_bytes(case: Case, n: int) -> bytes:
    lines = [f"GET {case.target} HTTP/1.1", "Host: h", f"x-case: {n}", *case.headers]
    if case.headers and case.status == 431:
        lines.remove(f"x-case: {n}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.mark.parametrize("n", range(len(CASES)), ids=[f"{c.listener}:{c.target}" for c in CASES])
async def test_case(proxy: tuple[Proxy, dict[str, int]], backend: Upstream, n: int) -> None:
    running, ports = proxy
    case = CASES[n]
    backend.clear()
    seen = await exchange(ports[case.listener], request_bytes(case, n))
    assert seen.status == case.status, seen.head
    assert seen.closed == case.closes, seen.head
    if case.location is not None:
        assert f"location: {case.location}" in seen.head.lower()
    got = [r for r in backend.requests if r.header("x-case") in (str(n), None)]
    if case.forwarded is None:
        assert got == [], [r.target for r in got]
        return
    assert [r.target for r in got] == [case.forwarded]
    for line in case.headers:
        name = line.split(":")[0]
        # A dropped underscore header never reaches the upstream; the others do.
        assert got[0].has_header(name) == ("_" not in name), got[0].headers


async def test_underscore_stats(proxy: tuple[Proxy, dict[str, int]], backend: Upstream) -> None:
    """Envoy's HTTP/1 codec counts them in the global `http1.*` scope."""
    running, ports = proxy
    before = running.stats()
    await exchange(ports["reject"], b"GET /x HTTP/1.1\r\nHost: h\r\nx_y: 1\r\n\r\n")
    await exchange(ports["redirect"], b"GET /x HTTP/1.1\r\nHost: h\r\nx_y: 1\r\nq_r: 2\r\n\r\n")
    after = running.stats()

    def delta(name: str) -> int:
        return int(after.get(name, "0")) - int(before.get(name, "0"))

    assert delta("http1.requests_rejected_with_underscores_in_headers") == 1
    assert delta("http1.dropped_headers_with_underscores") == 2
    assert delta("http.reject.downstream_rq_4xx") == 1
