"""Cluster `alt_stat_name`, on real Envoy and meshcore with the same bootstrap and the same
traffic (two HTTP requests through an HTTP cluster, one `tcp_proxy` connection through
another): the clusters' stats move to `cluster.<alt_stat_name>.*` (none stay under the
name), the Prometheus label `envoy_cluster_name` is the `alt_stat_name`, `/clusters` keeps
the name and shows the `alt_stat_name` as `observability_name`, and `%UPSTREAM_CLUSTER%`
logs the `alt_stat_name` while `%UPSTREAM_CLUSTER_RAW%` logs the name; a span's
`upstream_cluster` tag is the name and `upstream_cluster.name` the `alt_stat_name`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from tests.support.access_logs import file_log, log_lines
from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import RawConnection
from tests.support.ports import free_port
from tests.support.proxy import start_proxy
from tests.support.tcp import TcpUpstream, exchange, network_listener, tcp_proxy_filter
from tests.support.trace_collector import Collector
from tests.support.upstream import Upstream, UpstreamServer

ALT = {"web": "web_stats", "echo": "echo_stats"}
LOG_FORMAT = {
    "text_format_source": {"inline_string": "%UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW%\n"}
}
PAYLOAD = b"alt-stat-name" * 100
ZIPKIN = {
    "name": "envoy.tracers.zipkin",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
        "collector_cluster": "collector",
        "collector_endpoint": "/api/v2/spans",
        "collector_endpoint_version": "HTTP_JSON",
    },
}
# Stats whose values both proxies must agree on after the traffic.
COMPARED = [
    "cluster.web_stats.upstream_rq_total",
    "cluster.web_stats.upstream_rq_200",
    "cluster.web_stats.upstream_rq_2xx",
    "cluster.web_stats.upstream_rq_completed",
    "cluster.web_stats.upstream_cx_total",
    "cluster.web_stats.upstream_cx_http1_total",
    "cluster.web_stats.membership_total",
    "cluster.web_stats.circuit_breakers.default.cx_open",
    "cluster.echo_stats.upstream_cx_total",
    "cluster.echo_stats.upstream_cx_rx_bytes_total",
    "cluster.echo_stats.upstream_cx_tx_bytes_total",
    "cluster.echo_stats.membership_total",
]


@dataclass
class Seen:
    stats: dict[str, str]
    prometheus: list[str]
    clusters: list[str]
    http_log: list[str]
    tcp_log: list[str]
    span_tags: list[tuple[str, str]]


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("web")


@pytest.fixture(scope="module")
def collector(upstream_server: UpstreamServer) -> Collector:
    return Collector(upstream_server)


@pytest.fixture(scope="module")
def echo() -> Iterator[TcpUpstream]:
    up = TcpUpstream()
    yield up
    up.close()


def _config(
    upstream: Upstream, echo: TcpUpstream, collector: Collector, logs: Any, ports: dict[str, int]
) -> Any:
    routes = [route({"prefix": "/"}, cluster="web")]
    http = http_listener(
        "http",
        ports["http"],
        route_config([virtual_host("all", ["*"], routes)]),
        access_log=[file_log(logs / "http.log", LOG_FORMAT)],
        tracing={"random_sampling": {"value": 100}, "provider": ZIPKIN},
    )
    tcp_log = [file_log(logs / "tcp.log", LOG_FORMAT)]
    tcp = network_listener(
        "tcp", ports["tcp"], [tcp_proxy_filter("relay", cluster="echo", access_log=tcp_log)]
    )
    return bootstrap(
        [http, tcp],
        [
            static_cluster("web", [("127.0.0.1", upstream.port)], alt_stat_name=ALT["web"]),
            static_cluster("echo", [("127.0.0.1", echo.port)], alt_stat_name=ALT["echo"]),
            static_cluster("collector", [("127.0.0.1", collector.port)]),
        ],
    )


async def _traffic(port: int) -> list[int]:
    async with await RawConnection.open(port) as conn:
        return [(await conn.request("GET", f"/{i}", host="web.test")).status for i in range(2)]


def _observe(
    kind: str, upstream: Upstream, echo: TcpUpstream, collector: Collector, tmp_path_factory: Any
) -> Seen:
    logs = tmp_path_factory.mktemp(f"alt-stat-{kind}")
    ports = {"http": free_port(), "tcp": free_port()}
    flush = ("--file-flush-interval-msec", "100") if kind == "envoy" else ()
    proxy = start_proxy(
        kind, _config(upstream, echo, collector, logs, ports), tmp_path_factory, extra_args=flush
    )
    try:
        assert trio.run(_traffic, ports["http"]) == [200, 200]
        assert exchange(ports["tcp"], PAYLOAD) == PAYLOAD
        http_log = log_lines(logs / "http.log", 2)
        tcp_log = log_lines(logs / "tcp.log", 1)
        spans = collector.wait_spans(2)
        collector.clear()
        stats = proxy.stats()
        status, prometheus = proxy.admin("GET", "/stats/prometheus")
        assert status == 200
        status, clusters = proxy.admin("GET", "/clusters")
        assert status == 200
    finally:
        proxy.stop()
    ours = re.compile(r"^(web|echo)::")
    return Seen(
        stats={k: v for k, v in stats.items() if re.match(r"^cluster\.(web|echo)", k)},
        prometheus=[line for line in prometheus.splitlines() if "envoy_cluster_name=" in line],
        clusters=[line for line in clusters.splitlines() if ours.match(line)],
        http_log=http_log,
        tcp_log=tcp_log,
        span_tags=[
            (s["tags"]["upstream_cluster"], s["tags"]["upstream_cluster.name"]) for s in spans
        ],
    )


@pytest.fixture(scope="module")
def seen(upstream, echo, collector, tmp_path_factory) -> dict[str, Seen]:
    return {
        kind: _observe(kind, upstream, echo, collector, tmp_path_factory)
        for kind in ("envoy", "meshcore")
    }


def test_cluster_stats_are_under_the_alt_stat_name(seen: dict[str, Seen]) -> None:
    for kind, s in seen.items():
        under_name = [k for k in s.stats if re.match(r"^cluster\.(web|echo)\.", k)]
        assert under_name == [], kind
    envoy, meshcore = seen["envoy"].stats, seen["meshcore"].stats
    assert {k: meshcore.get(k) for k in COMPARED} == {k: envoy.get(k) for k in COMPARED}
    assert envoy["cluster.web_stats.upstream_rq_total"] == "2"
    assert envoy["cluster.echo_stats.upstream_cx_tx_bytes_total"] == str(len(PAYLOAD))
    assert None not in {envoy.get(k) for k in COMPARED}


def test_prometheus_label_is_the_alt_stat_name(seen: dict[str, Seen]) -> None:
    expected = 'envoy_cluster_upstream_rq_total{envoy_cluster_name="web_stats"} 2'
    for kind, s in seen.items():
        assert expected in s.prometheus, kind
        names = {
            m for line in s.prometheus for m in re.findall(r'envoy_cluster_name="([^"]*)"', line)
        }
        assert names == {"web_stats", "echo_stats", "collector"}, (kind, names)


def test_clusters_keep_the_name_and_show_the_observability_name(seen: dict[str, Seen]) -> None:
    for kind, s in seen.items():
        assert "web::observability_name::web_stats" in s.clusters, kind
        assert "echo::observability_name::echo_stats" in s.clusters, kind
        assert any(line.startswith("web::127.0.0.1:") for line in s.clusters), kind


def test_upstream_cluster_logs_the_alt_stat_name_and_raw_the_name(seen: dict[str, Seen]) -> None:
    for kind, s in seen.items():
        assert s.http_log == ["web_stats web", "web_stats web"], kind
        assert s.tcp_log == ["echo_stats echo"], kind


def test_span_tags_name_the_cluster_and_its_alt_stat_name(seen: dict[str, Seen]) -> None:
    for kind, s in seen.items():
        assert s.span_tags == [("web", "web_stats"), ("web", "web_stats")], kind
