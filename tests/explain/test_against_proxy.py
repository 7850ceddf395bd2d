"""explain against a running meshcore: its chosen cluster is the backend that really answers
the same request, and the admin `/explain` endpoint explains against the running config."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import trio
from meshcore.explain.request_line import ExplainOptions
from meshcore.explain.run import explain

from tests.explain.configs import CLUSTERS, explain_config
from tests.integration.test_routing import routing_config
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

pytestmark = pytest.mark.meshcore_only


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in CLUSTERS}


@pytest.fixture(scope="module")
def routing_proxy(upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy("meshcore", routing_config(free_port(), upstreams), tmp_path_factory)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def explain_proxy(upstreams, tmp_path_factory) -> Iterator[Proxy]:
    ports = {name: up.port for name, up in upstreams.items()}
    running = start_proxy("meshcore", explain_config(free_port(), ports), tmp_path_factory)
    yield running
    running.stop()


def explained(proxy: Proxy, host: str, path: str, headers: list[tuple[str, str]]) -> Any:
    from meshcore.config import load_file

    config = load_file(proxy.config_path)
    opts = ExplainOptions(
        request=f"GET http://{host}{path}", headers=[f"{n}: {v}" for n, v in headers]
    )
    return explain(config.snapshot, opts)


# (host, path, headers): the routing tests' config, every matcher kind and action.
REQUESTS = [
    ("exact.example.com", "/", []),
    ("x.suffix.example.com", "/", []),
    ("x.deep.suffix.example.com", "/", []),
    ("prefix.anything", "/", []),
    ("unknown.test", "/", []),
    ("ported.example.com:8080", "/", []),
    ("features.test", "/exact", []),
    ("features.test", "/CASE/x", []),
    ("features.test", "/regex/123", []),
    ("features.test", "/regex/abc", []),
    ("features.test", "/hdr", [("x-prefix", "prefix")]),
    ("features.test", "/hdr", [("x-suffix", "suffix")]),
    ("features.test", "/hdr", [("x-regex", "v12")]),
    ("features.test", "/hdr", [("x-invert", "yes")]),
    ("features.test", "/hdr", [("x-both-1", "1"), ("x-both-2", "2")]),
    ("features.test", "/query?debug", []),
    ("features.test", "/query?v=2", []),
    ("features.test", "/query?v=3", []),
    ("features.test", "/rewrite/x", []),
    ("features.test", "/direct", []),
    ("features.test", "/redirect/path", []),
    ("features.test", "/nothing-here", []),
]


@pytest.mark.parametrize(("host", "path", "headers"), REQUESTS)
async def test_explained_cluster_is_the_backend_that_answers(routing_proxy, host, path, headers):
    data = explained(routing_proxy, host, path, headers)
    with trio.fail_after(5):
        response = await get(routing_proxy.port, path, host=host, headers=headers)
    outcome = data["outcome"]
    if outcome["kind"] == "forward":
        assert response.upstream == data["action"]["picked"]["cluster"], data["routes"]
    else:
        assert response.upstream is None
        assert response.status == outcome["status"], outcome
        if outcome["kind"] == "redirect":
            assert response.header("location") == data["action"]["location"]


async def test_weighted_choice_lands_on_a_listed_cluster(explain_proxy):
    data = explained(explain_proxy, "api.example.com", "/v1/orders", [])
    weights = {c["name"]: c["weight"] for c in data["action"]["clusters"]}
    seen = set()
    with trio.fail_after(10):
        for _ in range(20):
            response = await get(explain_proxy.port, "/v1/orders", host="api.example.com")
            seen.add(response.upstream)
    assert seen <= {name for name, weight in weights.items() if weight > 0}
    assert seen, "no request was answered"


def admin_get(proxy: Proxy, **params: str) -> tuple[int, str]:
    return proxy.admin("GET", "/explain?" + urllib.parse.urlencode(params))


def admin_post(proxy: Proxy, body: Any) -> tuple[int, bytes, str]:
    request = urllib.request.Request(
        f"http://{proxy.admin_address}/explain", data=orjson.dumps(body), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), response.headers["content-type"]
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers["content-type"]


def test_admin_explain_get_and_post(explain_proxy):
    status, text = admin_get(
        explain_proxy, request="GET http://api.example.com/v1/users", header="x-canary: 2"
    )
    assert status == 200, text
    assert "near miss: the path matched, headers[0] did not" in text
    assert 'Outcome       forward: forwarded to cluster "a"' in text
    assert f"127.0.0.1:{explain_proxy.port}" in text

    status, body, content_type = admin_post(
        explain_proxy,
        {
            "request": "GET http://api.example.com/v1/x",
            "headers": ["x-canary: 1"],
            "format": "json",
        },
    )
    assert status == 200, body
    assert content_type == "application/json"
    data = orjson.loads(body)
    assert data["route"]["name"] == "canary"
    assert data["listener"]["port"] == explain_proxy.port

    status, body, _ = admin_post(
        explain_proxy, {"request": "GET http://x/", "sni": "secure.example.com", "format": "json"}
    )
    assert status == 200, body
    assert orjson.loads(body)["filter_chain"]["name"] == "secure"


def test_admin_explain_errors(explain_proxy):
    status, text = admin_get(explain_proxy)
    assert status == 400 and "request: required" in text
    status, text = admin_get(explain_proxy, request="GET nope")
    assert status == 400 and "must be http://host/path" in text
    status, text = admin_get(explain_proxy, request="GET http://a/", port="x")
    assert status == 400 and "port: expected an integer" in text
    status, body, _ = admin_post(explain_proxy, {"request": "GET http://a/", "bogus": 1})
    assert status == 400 and b"unknown field(s): bogus" in body
    status, body, _ = admin_post(explain_proxy, [1])
    assert status == 400 and b"JSON object" in body
    status, text = admin_get(explain_proxy, request="GET http://a/", format="xml")
    assert status == 400 and "format:" in text
