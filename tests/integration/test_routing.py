"""Routing: virtual hosts by domain, route matchers, and every route action."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    header_value,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

NAMES = ["a", "b", "c", "fallback"]


def routing_config(port: int, upstreams: dict[str, Upstream]) -> dict:
    hdr = "/hdr"
    features = [
        route({"path": "/exact"}, cluster="a"),
        route({"prefix": "/case/", "case_sensitive": False}, cluster="b"),
        route({"safe_regex": {"regex": "/regex/[0-9]+"}}, cluster="c"),
        route(
            {"prefix": hdr, "headers": [{"name": "x-exact", "string_match": {"exact": "yes"}}]},
            cluster="a",
        ),
        route(
            {"prefix": hdr, "headers": [{"name": "x-prefix", "string_match": {"prefix": "pre"}}]},
            cluster="b",
        ),
        route(
            {"prefix": hdr, "headers": [{"name": "x-suffix", "string_match": {"suffix": "fix"}}]},
            cluster="c",
        ),
        route(
            {"prefix": hdr, "headers": [{"name": "x-present", "present_match": True}]}, cluster="a"
        ),
        route(
            {
                "prefix": hdr,
                "headers": [
                    {"name": "x-regex", "string_match": {"safe_regex": {"regex": "v[0-9]+"}}}
                ],
            },
            cluster="b",
        ),
        route(
            {
                "prefix": hdr,
                "headers": [
                    {"name": "x-invert", "string_match": {"exact": "no"}, "invert_match": True}
                ],
            },
            cluster="c",
        ),
        route(
            {
                "prefix": hdr,
                "headers": [
                    {"name": "x-both-1", "string_match": {"exact": "1"}},
                    {"name": "x-both-2", "string_match": {"exact": "2"}},
                ],
            },
            cluster="b",
        ),
        route(
            {"prefix": "/query", "query_parameters": [{"name": "debug", "present_match": True}]},
            cluster="a",
        ),
        route(
            {
                "prefix": "/query",
                "query_parameters": [{"name": "v", "string_match": {"exact": "2"}}],
            },
            cluster="b",
        ),
        route({"prefix": "/query"}, cluster="c"),
        route({"prefix": "/rewrite/"}, cluster="a", prefix_rewrite="/new/"),
        route({"prefix": "/hostrw"}, cluster="a", host_rewrite_literal="rewritten.internal"),
        route(
            {"prefix": "/direct"},
            direct_response={"status": 418, "body": {"inline_string": "teapot"}},
        ),
        route({"prefix": "/nobody"}, direct_response={"status": 503}),
        route({"prefix": "/redirect/https"}, redirect={"https_redirect": True}),
        route(
            {"prefix": "/redirect/host"},
            redirect={"host_redirect": "other.example.com", "response_code": "FOUND"},
        ),
        route({"path": "/redirect/path"}, redirect={"path_redirect": "/elsewhere"}),
        route(
            {"prefix": "/redirect/prefix/"},
            redirect={
                "prefix_rewrite": "/moved/",
                "response_code": "TEMPORARY_REDIRECT",
                "strip_query": True,
            },
        ),
        route(
            {"prefix": "/headers"},
            cluster="a",
            request_headers_to_add=[
                header_value("x-route", "r"),
                header_value("x-level", "route"),
                header_value("x-overwrite", "route", "OVERWRITE_IF_EXISTS_OR_ADD"),
                header_value("x-if-absent", "route", "ADD_IF_ABSENT"),
            ],
            request_headers_to_remove=["x-remove-me"],
            response_headers_to_add=[header_value("x-route-resp", "r")],
            response_headers_to_remove=["x-upstream-secret"],
        ),
        route({"prefix": "/slow"}, cluster="a", timeout="0.5s"),
    ]
    vhosts = [
        virtual_host("exact", ["exact.example.com"], [route({"prefix": "/"}, cluster="a")]),
        virtual_host("suffix", ["*.suffix.example.com"], [route({"prefix": "/"}, cluster="b")]),
        virtual_host(
            "deeper", ["*.deep.suffix.example.com"], [route({"prefix": "/"}, cluster="a")]
        ),
        virtual_host("prefix", ["prefix.*"], [route({"prefix": "/"}, cluster="c")]),
        virtual_host("ported", ["ported.example.com:8080"], [route({"prefix": "/"}, cluster="b")]),
        virtual_host(
            "features",
            ["features.test"],
            features,
            request_headers_to_add=[header_value("x-vhost", "v"), header_value("x-level", "vhost")],
            response_headers_to_add=[header_value("x-vhost-resp", "v")],
        ),
        virtual_host("fallback", ["*"], [route({"prefix": "/"}, cluster="fallback")]),
    ]
    rc = route_config(
        vhosts,
        request_headers_to_add=[header_value("x-rc", "rc"), header_value("x-level", "rc")],
        response_headers_to_add=[header_value("x-rc-resp", "rc")],
    )
    clusters = [static_cluster(name, [("127.0.0.1", up.port)]) for name, up in upstreams.items()]
    return bootstrap([http_listener("main", port, rc)], clusters)


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in NAMES}


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy(request.param, routing_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


def last_request(upstream: Upstream):
    requests = upstream.requests
    assert requests, f"upstream {upstream.name} saw no request"
    return requests[-1]


# ---- virtual hosts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("exact.example.com", "a"),
        ("EXACT.Example.COM", "a"),
        ("x.suffix.example.com", "b"),
        ("a.b.suffix.example.com", "b"),
        ("x.deep.suffix.example.com", "a"),
        ("suffix.example.com", "fallback"),
        ("prefix.anything", "c"),
        ("prefix.", "fallback"),
        ("unknown.test", "fallback"),
    ],
)
async def test_virtual_host_by_domain(proxy, host, expected):
    with trio.fail_after(5):
        response = await get(proxy.port, "/", host=host)
    assert response.status == 200
    assert response.upstream == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        # Envoy matches the Host header as sent, port included, unless the connection
        # manager sets strip_any_host_port / strip_matching_host_port.
        ("exact.example.com:8080", "fallback"),
        ("ported.example.com:8080", "b"),
        ("ported.example.com", "fallback"),
        ("ported.example.com:9090", "fallback"),
    ],
)
async def test_virtual_host_port_is_part_of_the_domain(proxy, host, expected):
    with trio.fail_after(5):
        response = await get(proxy.port, "/", host=host)
    assert response.status == 200
    assert response.upstream == expected


async def test_host_header_reaches_upstream_unchanged(proxy, upstreams):
    with trio.fail_after(5):
        response = await get(proxy.port, "/some/path?x=1", host="Exact.Example.com")
    assert response.upstream == "a"
    seen = last_request(upstreams["a"])
    assert seen.header("host") == "Exact.Example.com"
    assert seen.target == "/some/path?x=1"


# ---- route matchers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/exact", "a"),
        ("/exact?q=1", "a"),
        ("/exact/more", None),
        ("/EXACT", None),
        ("/case/x", "b"),
        ("/CASE/X", "b"),
        ("/regex/123", "c"),
        ("/regex/123?z=9", "c"),
        ("/regex/12a", None),
        ("/regex/", None),
        ("/missing", None),
    ],
)
async def test_path_matching(proxy, path, expected):
    with trio.fail_after(5):
        response = await get(proxy.port, path, host="features.test")
    if expected is None:
        assert response.status == 404
        assert response.upstream is None
    else:
        assert response.status == 200
        assert response.upstream == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("x-exact", "yes")], "a"),
        ([("X-Exact", "yes")], "a"),
        ([("x-exact", "yes!")], None),
        ([("x-prefix", "prefixed")], "b"),
        ([("x-prefix", "nope")], None),
        ([("x-suffix", "suffix")], "c"),
        ([("x-present", "")], "a"),
        ([("x-present", "anything")], "a"),
        ([("x-regex", "v42")], "b"),
        ([("x-regex", "v42x")], None),
        ([("x-invert", "yes")], "c"),
        ([("x-invert", "no")], None),
        ([("x-both-1", "1"), ("x-both-2", "2")], "b"),
        ([("x-both-1", "1")], None),
        ([], None),
    ],
)
async def test_header_matching(proxy, headers, expected):
    with trio.fail_after(5):
        response = await get(proxy.port, "/hdr", host="features.test", headers=headers)
    if expected is None:
        assert response.status == 404
    else:
        assert response.status == 200
        assert response.upstream == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/query?debug", "a"),
        ("/query?x=1&debug=0", "a"),
        ("/query?v=2", "b"),
        ("/query?v=3", "c"),
        ("/query?v=22", "c"),
        ("/query", "c"),
    ],
)
async def test_query_parameter_matching(proxy, target, expected):
    with trio.fail_after(5):
        response = await get(proxy.port, target, host="features.test")
    assert response.status == 200
    assert response.upstream == expected


# ---- actions ----------------------------------------------------------------------------


async def test_prefix_rewrite(proxy, upstreams):
    with trio.fail_after(5):
        response = await get(proxy.port, "/rewrite/deep/path?k=v", host="features.test")
    assert response.upstream == "a"
    assert last_request(upstreams["a"]).target == "/new/deep/path?k=v"


async def test_host_rewrite_literal(proxy, upstreams):
    with trio.fail_after(5):
        response = await get(proxy.port, "/hostrw", host="features.test")
    assert response.upstream == "a"
    assert last_request(upstreams["a"]).header("host") == "rewritten.internal"


async def test_direct_response(proxy, upstream_server):
    with trio.fail_after(5):
        response = await get(proxy.port, "/direct", host="features.test")
    assert response.status == 418
    assert response.body == b"teapot"
    assert response.header("content-length") == "6"
    assert all(not up.requests for up in upstream_server.upstreams)


async def test_direct_response_without_body(proxy):
    with trio.fail_after(5):
        response = await get(proxy.port, "/nobody", host="features.test")
    assert response.status == 503
    assert response.body == b""


@pytest.mark.parametrize(
    ("target", "status", "location"),
    [
        ("/redirect/https?a=1", 301, "https://features.test/redirect/https?a=1"),
        ("/redirect/host/x", 302, "http://other.example.com/redirect/host/x"),
        ("/redirect/path?keep=1", 301, "http://features.test/elsewhere?keep=1"),
        ("/redirect/prefix/rest?gone=1", 307, "http://features.test/moved/rest"),
    ],
)
async def test_redirect(proxy, upstream_server, target, status, location):
    with trio.fail_after(5):
        response = await get(proxy.port, target, host="features.test")
    assert response.status == status
    assert response.header("location") == location
    assert all(not up.requests for up in upstream_server.upstreams)


async def test_request_header_mutations(proxy, upstreams):
    with trio.fail_after(5):
        response = await get(
            proxy.port,
            "/headers",
            host="features.test",
            headers=[
                ("x-remove-me", "secret"),
                ("x-overwrite", "client"),
                ("x-if-absent", "client"),
            ],
        )
    assert response.status == 200
    seen = last_request(upstreams["a"])
    assert seen.header("x-route") == "r"
    assert seen.header("x-vhost") == "v"
    assert seen.header("x-rc") == "rc"
    assert seen.header_values("x-level") == ["route", "vhost", "rc"]
    assert seen.header_values("x-overwrite") == ["route"]
    assert seen.header_values("x-if-absent") == ["client"]
    assert not seen.has_header("x-remove-me")


async def test_response_header_mutations(proxy):
    with trio.fail_after(5):
        response = await get(
            proxy.port,
            "/headers",
            host="features.test",
            headers=[("x-mc-response-header", "x-upstream-secret: s3cr3t")],
        )
    assert response.status == 200
    assert response.header("x-route-resp") == "r"
    assert response.header("x-vhost-resp") == "v"
    assert response.header("x-rc-resp") == "rc"
    assert response.header("x-upstream-secret") is None


async def test_no_header_mutations_outside_their_scope(proxy, upstreams):
    with trio.fail_after(5):
        response = await get(proxy.port, "/", host="exact.example.com")
    seen = last_request(upstreams["a"])
    assert seen.header("x-rc") == "rc"
    assert not seen.has_header("x-vhost")
    assert not seen.has_header("x-route")
    assert response.header("x-rc-resp") == "rc"
    assert response.header("x-vhost-resp") is None


async def test_route_timeout(proxy, upstreams):
    with trio.fail_after(5):
        response = await get(
            proxy.port, "/slow", host="features.test", headers=[("x-mc-behavior", "hang")]
        )
    assert response.status == 504
    assert response.body == b"upstream request timeout"
    assert len(upstreams["a"].requests) == 1


@pytest.mark.parametrize(
    ("target", "headers", "status"),
    [
        ("/headers", [("x-mc-behavior", "close")], 503),
        ("/direct", [], 418),
        ("/redirect/https", [], 301),
    ],
)
async def test_response_header_mutations_apply_to_local_replies(proxy, target, headers, status):
    """Envoy adds the matched route's response headers to its own answers too."""
    with trio.fail_after(5):
        response = await get(proxy.port, target, host="features.test", headers=headers)
    assert response.status == status
    assert response.upstream is None
    assert response.header("x-vhost-resp") == "v"
    assert response.header("x-rc-resp") == "rc"
    if target == "/headers":
        assert response.header("x-route-resp") == "r"


async def test_no_route_reply_has_no_configured_response_headers(proxy):
    with trio.fail_after(5):
        response = await get(proxy.port, "/missing", host="features.test")
    assert response.status == 404
    assert response.header("x-vhost-resp") is None
    assert response.header("x-rc-resp") is None


async def test_without_use_remote_address_x_forwarded_for_is_not_appended(proxy, upstreams):
    with trio.fail_after(5):
        await get(proxy.port, "/", host="exact.example.com")
        await get(
            proxy.port, "/", host="exact.example.com", headers=[("x-forwarded-for", "198.51.100.1")]
        )
    first, second = upstreams["a"].requests
    assert not first.has_header("x-forwarded-for")
    assert second.header_values("x-forwarded-for") == ["198.51.100.1"]
    assert first.header("x-forwarded-proto") == "http"
