"""The small mesh that the admin page and `meshcore top` tests watch: a healthy upstream
(`svc`), one that answers 503 (`flaky`, outlier detection on), and a cluster whose only host
is down (`down`, TCP health checks); `/bad` routes to `flaky`, everything else to `svc`."""

from __future__ import annotations

from collections.abc import Iterator

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.ports import dead_port, free_port
from tests.support.upstream import Upstream, UpstreamServer

CHECK = {
    "timeout": "0.5s",
    "interval": "0.1s",
    "no_traffic_interval": "0.1s",
    "unhealthy_threshold": 1,
    "healthy_threshold": 1,
    "tcp_health_check": {},
}
DETECTION = {
    "consecutive_5xx": 3,
    "interval": "0.2s",
    "base_ejection_time": "60s",
    "max_ejection_percent": 100,
}


def start_upstreams(upstream_server: UpstreamServer) -> Iterator[dict[str, Upstream]]:
    """`svc` and `flaky`, stopped when the generator resumes (use it as a fixture body)."""
    ups = {
        "svc": upstream_server.start("svc"),
        "flaky": upstream_server.start("flaky", default_behavior="status=503"),
    }
    yield ups
    for up in ups.values():
        upstream_server.stop_upstream(up)


def mesh_config(ups: dict[str, Upstream]) -> dict:
    """One HTTP listener on a free port over the three clusters."""
    clusters = [
        static_cluster("svc", [("127.0.0.1", ups["svc"].port)]),
        static_cluster("flaky", [("127.0.0.1", ups["flaky"].port)], outlier_detection=DETECTION),
        static_cluster("down", [("127.0.0.1", dead_port())], health_checks=[CHECK]),
    ]
    routes = [route({"prefix": "/bad"}, cluster="flaky"), route({"prefix": "/"}, cluster="svc")]
    rc = route_config([virtual_host("all", ["*"], routes)])
    return bootstrap([http_listener("main", free_port(), rc)], clusters)
