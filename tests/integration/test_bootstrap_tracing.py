"""The bootstrap's `tracing.http` on real Envoy and meshcore with the same bootstrap: a
connection manager whose `tracing` names no provider reports its spans through the
bootstrap's (Zipkin here), one that names its own (OpenTelemetry) uses that one instead; a
listener pushed over ADS (state of the world and delta) inherits it too."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.integration.test_tracing import _config, _listener, _otel, _zipkin
from tests.support import bootstrap as b
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import proxy_kinds, start_proxy
from tests.support.trace_collector import Collector
from tests.support.upstream import Upstream, UpstreamServer
from tests.xds.ads_server import AdsServer
from tests.xds.builders import CLUSTER, LISTENER, listener, xds_bootstrap
from tests.xds.traffic import until_answers


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module")
def collector(upstream_server: UpstreamServer) -> Collector:
    return Collector(upstream_server)


def _tracing(provider: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"custom_tags": [{"tag": "lit", "literal": {"value": "v1"}}]}
    if provider is not None:
        out["provider"] = provider
    return out


@pytest.mark.parametrize("kind", proxy_kinds())
def test_bootstrap_provider_and_the_managers_own(
    kind, upstream, collector, tmp_path_factory
) -> None:
    inherits, own = free_port(), free_port()
    config = _config(
        [
            _listener("inherits", inherits, "live", _tracing(None)),
            _listener("own", own, "live", _tracing(_otel())),
        ],
        upstream,
        collector,
    )
    config["tracing"] = {"http": _zipkin()}
    proxy = start_proxy(kind, config, tmp_path_factory)
    try:

        async def send() -> None:
            with trio.fail_after(10):
                assert (await get(inherits, "/via-bootstrap")).status == 200
                assert (await get(own, "/via-manager")).status == 200

        trio.run(send)
        spans = collector.wait_spans(2)
        by_url = {s["tags"]["http.url"].removeprefix("http://example.com"): s for s in spans}
        assert set(by_url) == {"/via-bootstrap", "/via-manager"}, spans
        for span in by_url.values():
            assert span["tags"]["lit"] == "v1" and span["tags"]["upstream_cluster"] == "live"
        paths = {r.target: r.header("content-type") for r in collector.reports()}
        # The inheriting manager's span went to the bootstrap's Zipkin endpoint as JSON, the
        # other's to its own OTLP/HTTP endpoint.
        assert paths == {
            "/api/v2/spans": "application/json",
            "/v1/traces": "application/x-protobuf",
        }
        zipkin = by_url["/via-bootstrap"]
        assert zipkin["kind"] == "SERVER" and zipkin.get("shared") is True
        otel = by_url["/via-manager"]
        assert otel["resource"]["service.name"] == "mesh-svc"
    finally:
        proxy.stop()


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
@pytest.mark.parametrize("kind", proxy_kinds())
def test_an_ads_listener_without_provider_reports_through_the_bootstraps(
    kind, delta, upstream, collector, tmp_path_factory
) -> None:
    port = free_port()
    routes = b.route_config(
        [b.virtual_host("all", ["*"], [b.route({"prefix": "/"}, cluster="live")])]
    )
    server = AdsServer().start()
    proxy = None
    try:
        server.set_resources(CLUSTER, [], node=kind)
        server.set_resources(
            LISTENER, [listener("pushed", port, routes=routes, tracing=_tracing(None))], node=kind
        )
        config = xds_bootstrap(
            server.port,
            node=kind,
            delta=delta,
            clusters=[
                b.static_cluster("live", [("127.0.0.1", upstream.port)]),
                b.static_cluster("collector", [("127.0.0.1", collector.port)]),
            ],
        )
        config["tracing"] = {"http": _zipkin()}
        collector.clear()
        proxy = start_proxy(kind, config, tmp_path_factory)
        target = f"/pushed-{kind}-{'delta' if delta else 'sotw'}"

        async def send() -> None:
            await until_answers(port, [target], ["live"])

        trio.run(send)
        spans = [
            s
            for s in collector.wait_spans(1)
            if s["tags"]["http.url"] == f"http://example.com{target}"
        ]
        assert spans, collector.spans()
        span = spans[0]
        assert span["tags"]["lit"] == "v1" and span["tags"]["upstream_cluster"] == "live"
        # Zipkin JSON to the bootstrap's endpoint: the only provider there is.
        assert {(r.target, r.header("content-type")) for r in collector.reports()} == {
            ("/api/v2/spans", "application/json")
        }
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
        collector.clear()
