"""The bootstrap's `tracing.http` on real Envoy and meshcore with the same bootstrap: a
connection manager whose `tracing` names no provider reports its spans through the
bootstrap's (Zipkin here), one that names its own (OpenTelemetry) uses that one instead."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from tests.integration.test_tracing import _config, _listener, _otel, _zipkin
from tests.support.client import get
from tests.support.ports import free_port
from tests.support.proxy import proxy_kinds, start_proxy
from tests.support.trace_collector import Collector
from tests.support.upstream import Upstream, UpstreamServer


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
