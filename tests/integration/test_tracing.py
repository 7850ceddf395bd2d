"""Tracing on real Envoy and meshcore with the same bootstrap: the same scripted requests
give spans with the same tags at a small collector (ids and times excluded), the upstream
sees the same propagation headers (B3 multi and single, W3C traceparent), 0 % sampling sends
no span but still propagates `sampled=0`, and two sidecars in a row report spans of one
trace, parent and child."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

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
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.trace_collector import Collector, GrpcCollector
from tests.support.upstream import Upstream, UpstreamServer

ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
OTEL = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HEX16 = re.compile(r"^[0-9a-f]{16}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
SAMPLED_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-9[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
TRACE = "463ac35c9f6413ad48485a3953bb6124"
CALLER = "a2fb4a1d1a96d312"


def _zipkin(**extra: Any) -> dict[str, Any]:
    return {
        "name": "envoy.tracers.zipkin",
        "typed_config": {
            "@type": ZIPKIN,
            "collector_cluster": "collector",
            "collector_endpoint": "/api/v2/spans",
            "collector_endpoint_version": "HTTP_JSON",
            **extra,
        },
    }


def _otel() -> dict[str, Any]:
    return {
        "name": "envoy.tracers.opentelemetry",
        "typed_config": {
            "@type": OTEL,
            "service_name": "mesh-svc",
            "http_service": {
                "http_uri": {
                    "uri": "http://collector/v1/traces",
                    "cluster": "collector",
                    "timeout": "1s",
                }
            },
        },
    }


def _tracing(provider: dict[str, Any], percent: float = 100) -> dict[str, Any]:
    return {
        "random_sampling": {"value": percent},
        "custom_tags": [
            {"tag": "lit", "literal": {"value": "v1"}},
            {"tag": "hdr", "request_header": {"name": "x-foo", "default_value": "none"}},
        ],
        "provider": provider,
    }


def _listener(name: str, port: int, cluster: str, tracing: dict[str, Any], **extra: Any) -> Any:
    routes = [
        route({"prefix": "/nowhere"}, direct_response={"status": 404}),
        route({"prefix": "/empty"}, cluster="empty"),
        route({"prefix": "/"}, cluster=cluster),
    ]
    listener = http_listener(
        name,
        port,
        route_config([virtual_host("all", ["*"], routes)]),
        stat_prefix=name,
        tracing=tracing,
    )
    listener.update(extra)
    return listener


def _config(listeners: list[Any], upstream: Upstream, collector: Collector) -> Any:
    config = bootstrap(
        listeners,
        [
            static_cluster("live", [("127.0.0.1", upstream.port)]),
            static_cluster("empty", []),
            static_cluster("collector", [("127.0.0.1", collector.port)]),
        ],
    )
    config["node"] = {"id": "node-a", "cluster": "svc-a", "locality": {"zone": "z1"}}
    return config


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module")
def collector(upstream_server: UpstreamServer) -> Collector:
    return Collector(upstream_server)


@pytest.fixture(scope="module", params=proxy_kinds())
def zipkin_proxy(request, upstream, collector, tmp_path_factory) -> Iterator[Proxy]:
    config = _config(
        [
            _listener(
                "ingress", free_port(), "live", _tracing(_zipkin()), traffic_direction="INBOUND"
            ),
            _listener("unsampled", free_port(), "live", _tracing(_zipkin(), 0)),
        ],
        upstream,
        collector,
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


def _by_url(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{s['tags']['http.method']} {s['tags']['http.url']}": s for s in spans}


def _common(status: str, agent: str = "meshtest/1.0") -> dict[str, str]:
    return {
        "component": "proxy",
        "node_id": "node-a",
        "zone": "z1",
        "http.protocol": "HTTP/1.1",
        "downstream_cluster": "-",
        "user_agent": agent,
        "peer.address": "127.0.0.1",
        "lit": "v1",
        "hdr": "none",
        "http.status_code": status,
        "response_flags": "-",
    }


def test_zipkin_spans_tags_and_b3_propagation(zipkin_proxy, upstream, collector) -> None:
    port = zipkin_proxy.listener_ports()[0]
    agent = ("user-agent", "meshtest/1.0")

    async def send() -> None:
        with trio.fail_after(10):
            r = await get(
                port,
                "/live?q=1",
                headers=[agent, ("x-foo", "bar"), ("x-envoy-downstream-service-cluster", "dsc")],
            )
            assert r.status == 200
            assert (await get(port, "/nowhere", headers=[agent])).status == 404
            assert (await get(port, "/empty", headers=[agent])).status == 503
            post = await get(port, "/post", method="POST", body=b"hello-body", headers=[agent])
            assert post.status == 200
            multi = [agent, ("x-b3-traceid", TRACE), ("x-b3-spanid", CALLER), ("x-b3-sampled", "1")]
            assert (await get(port, "/multi", headers=multi)).status == 200
            single = [agent, ("b3", f"{TRACE}-{CALLER}-1")]
            assert (await get(port, "/single", headers=single)).status == 200

    trio.run(send)
    spans = _by_url(collector.wait_spans(6))
    assert len(spans) == 6, spans
    base = "http://example.com"
    live = spans[f"GET {base}/live?q=1"]
    expect = {
        **_common("200"),
        "hdr": "bar",
        "downstream_cluster": "dsc",
        "http.url": f"{base}/live?q=1",
        "http.method": "GET",
        "request_size": "0",
        "response_size": "4",
        "upstream_cluster": "live",
        "upstream_cluster.name": "live",
    }
    rid = live["tags"].pop("guid:x-request-id")
    assert SAMPLED_ID.match(rid), rid
    assert live["tags"] == expect
    assert live["kind"] == "SERVER" and live["name"] == "example.com"
    assert live.get("shared") is True and "parentId" not in live
    assert HEX16.match(live["traceId"]) and live["id"] == live["traceId"][-16:]
    assert live["localEndpoint"]["serviceName"] == "svc-a"
    assert live["duration"] >= 0 and live["timestamp"] > 1_600_000_000_000_000

    nowhere = spans[f"GET {base}/nowhere"]["tags"]
    nowhere.pop("guid:x-request-id")
    assert nowhere == {
        **_common("404"),
        "http.url": f"{base}/nowhere",
        "http.method": "GET",
        "request_size": "0",
        "response_size": "0",
    }
    empty = spans[f"GET {base}/empty"]["tags"]
    empty.pop("guid:x-request-id")
    assert empty == {
        **_common("503"),
        "http.url": f"{base}/empty",
        "http.method": "GET",
        "request_size": "0",
        "response_size": "19",
        "upstream_cluster": "empty",
        "upstream_cluster.name": "empty",
        "response_flags": "UH",
        "error": "true",
    }
    post = spans[f"POST {base}/post"]["tags"]
    assert (post["request_size"], post["response_size"]) == ("10", "4")

    # An incoming B3 context is continued: the ingress span shares the caller's span id
    # (shared_span_context, Zipkin's default), the upstream sees it as the current span.
    multi = spans[f"GET {base}/multi"]
    assert (multi["traceId"], multi["id"]) == (TRACE, CALLER)
    single = spans[f"GET {base}/single"]
    assert (single["traceId"], single["id"]) == (TRACE, CALLER)
    seen = {r.target: r for r in upstream.requests}
    m = seen["/multi"]
    assert (m.header("x-b3-traceid"), m.header("x-b3-spanid"), m.header("x-b3-sampled")) == (
        TRACE,
        CALLER,
        "1",
    )
    assert not seen["/single"].has_header("x-b3-traceid")
    assert seen["/single"].header_values("b3") == [f"{TRACE}-{CALLER}-1"]
    fresh = seen["/live?q=1"]
    assert fresh.header("x-b3-traceid") == live["traceId"]
    assert fresh.header("x-b3-spanid") == live["id"]
    assert fresh.header("x-b3-sampled") == "1"
    assert fresh.header("x-request-id") == rid

    # A report is counted sent once the collector answered.
    deadline = time.monotonic() + 10
    while zipkin_proxy.counter("tracing.zipkin.reports_sent") < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    stats = zipkin_proxy.stats()
    assert int(stats["http.ingress.tracing.random_sampling"]) >= 4
    assert int(stats["tracing.zipkin.spans_sent"]) >= 6
    assert int(stats["tracing.zipkin.reports_sent"]) >= 1
    assert stats["tracing.zipkin.reports_failed"] == "0"


def test_zero_percent_sends_no_span_but_propagates(zipkin_proxy, upstream, collector) -> None:
    port = zipkin_proxy.listener_ports()[1]

    async def send() -> None:
        with trio.fail_after(10):
            for _ in range(3):
                assert (await get(port, "/quiet")).status == 200

    trio.run(send)
    for r in upstream.requests:
        assert r.header("x-b3-sampled") == "0"
        assert HEX16.match(r.header("x-b3-traceid") or "")
        assert (r.header("x-request-id") or "")[14] == "4"
    assert zipkin_proxy.counter("http.unsampled.tracing.not_traceable") == 3
    trio.run(trio.sleep, 2.5)
    assert not [s for s in collector.spans() if "/quiet" in s["tags"]["http.url"]]


@pytest.mark.parametrize("kind", proxy_kinds())
def test_two_sidecars_join_one_trace(kind, upstream, collector, tmp_path_factory) -> None:
    front, back = free_port(), free_port()
    config = _config(
        [
            _listener("front", front, "back", _tracing(_zipkin()), traffic_direction="OUTBOUND"),
            _listener(
                "back",
                back,
                "live",
                _tracing(_zipkin(shared_span_context=False)),
                traffic_direction="INBOUND",
            ),
        ],
        upstream,
        collector,
    )
    config["static_resources"]["clusters"].append(static_cluster("back", [("127.0.0.1", back)]))
    proxy = start_proxy(kind, config, tmp_path_factory)
    try:
        trio.run(get, front, "/hop")
        spans = [s for s in collector.wait_spans(2) if s["tags"]["http.url"].endswith("/hop")]
        by_kind = {s["kind"]: s for s in spans}
        client, server = by_kind["CLIENT"], by_kind["SERVER"]
        assert client["traceId"] == server["traceId"]
        assert "parentId" not in client
        assert server["parentId"] == client["id"] != server["id"]
        (hop,) = [r for r in upstream.requests if r.target == "/hop"]
        assert hop.header("x-b3-traceid") == client["traceId"]
        assert hop.header("x-b3-spanid") == server["id"]
        assert hop.header("x-b3-parentspanid") == client["id"]
        assert proxy.counter("http.back.tracing.random_sampling") == 1
    finally:
        proxy.stop()


@pytest.mark.parametrize("kind", proxy_kinds())
def test_opentelemetry_traceparent_and_otlp(kind, upstream, collector, tmp_path_factory) -> None:
    port = free_port()
    config = _config([_listener("otel", port, "live", _tracing(_otel()))], upstream, collector)
    proxy = start_proxy(kind, config, tmp_path_factory)
    caller = f"00-{TRACE}-{CALLER}-01"
    try:

        async def send() -> None:
            with trio.fail_after(10):
                assert (await get(port, "/o1")).status == 200
                headers = [("traceparent", caller), ("tracestate", "k=v")]
                assert (await get(port, "/o2", headers=headers)).status == 200

        trio.run(send)
        spans = _by_url(collector.wait_spans(2))
        fresh, child = spans["GET http://example.com/o1"], spans["GET http://example.com/o2"]
        assert HEX32.match(fresh["traceId"]) and "parentId" not in fresh
        assert child["traceId"] == TRACE and child["parentId"] == CALLER
        assert child["kind"] == "SERVER" and child["name"] == "ingress"
        assert child["resource"]["service.name"] == "mesh-svc"
        for key in ("component", "http.method", "http.status_code", "upstream_cluster", "lit"):
            assert key in child["tags"], key
        seen = {r.target: r for r in upstream.requests}
        assert seen["/o1"].header("traceparent") == f"00-{fresh['traceId']}-{fresh['id']}-01"
        assert seen["/o2"].header("traceparent") == f"00-{TRACE}-{child['id']}-01"
        assert seen["/o2"].header("tracestate") == "k=v"
        assert collector.reports()[0].header("content-type") == "application/x-protobuf"
    finally:
        proxy.stop()


@pytest.mark.parametrize("kind", proxy_kinds())
def test_opentelemetry_over_grpc(kind, upstream, collector, tmp_path_factory) -> None:
    grpc_collector = GrpcCollector()
    port = free_port()
    provider = {
        "name": "envoy.tracers.opentelemetry",
        "typed_config": {
            "@type": OTEL,
            "service_name": "grpc-svc",
            "grpc_service": {"envoy_grpc": {"cluster_name": "otlp"}, "timeout": "1s"},
        },
    }
    config = _config([_listener("otel", port, "live", _tracing(provider))], upstream, collector)
    otlp = static_cluster(
        "otlp",
        [("127.0.0.1", grpc_collector.port)],
        typed_extension_protocol_options={
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    )
    config["static_resources"]["clusters"].append(otlp)
    proxy = start_proxy(kind, config, tmp_path_factory)
    try:
        trio.run(get, port, "/g1")
        spans = grpc_collector.wait_spans(1)
        matching = [s for s in spans if s["tags"].get("http.url", "").endswith("/g1")]
        assert len(matching) == 1, spans
        span = matching[0]
        assert span["name"] == "ingress", span
        assert span["resource"]["service.name"] == "grpc-svc", span
        assert span["tags"]["http.url"] == "http://example.com/g1"
        (seen,) = [r for r in upstream.requests if r.target == "/g1"]
        assert seen.header("traceparent") == f"00-{span['traceId']}-{span['id']}-01"
    finally:
        proxy.stop()
        grpc_collector.stop()
