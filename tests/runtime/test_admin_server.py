"""The admin API over real sockets on 127.0.0.1, backed by a fake engine."""

from __future__ import annotations

import dataclasses

import httpx
import orjson
import pytest
import trio
from meshcore.admin.handlers import AdminApp, AdminContext
from meshcore.admin.server import bound_address, listen, serve_http
from meshcore.admin.stats_model import StatsCollector
from meshcore.lifecycle.control_stats import ControlStats
from meshcore.lifecycle.state import Phase, ServerOptions, ServerState

from tests.runtime.fakes import FakeConfig, FakeEngine, cluster, listener

BOOTSTRAP = {
    "node": {"id": "node-1"},
    "static_resources": {
        "listeners": [
            {
                "name": "main",
                "filter_chains": [
                    {"filters": [{"typed_config": {"route_config": {"name": "main_routes"}}}]}
                ],
            }
        ],
        "clusters": [{"name": "service_v1", "type": "STATIC"}],
    },
}


def make_engine() -> FakeEngine:
    engine = FakeEngine()
    engine.apply(
        orjson.dumps({"listeners": [listener("main", 10000)], "clusters": [cluster("service_v1")]})
    )
    engine.stats_doc = {
        "counters": {"cluster.service_v1.upstream_rq_total": 7},
        "gauges": {"cluster.service_v1.upstream_cx_active": 1},
        "histograms": {
            "cluster.service_v1.upstream_rq_time": {
                "counts": [0, 0, 2] + [0] * 17, "sum": 6.0, "count": 2,
            }
        },
    }  # fmt: skip
    engine.clusters_doc = [
        {
            "name": "service_v1",
            "hosts": [
                {"address": "127.0.0.1", "port": 8081, "weight": 1, "healthy": True,
                 "cx_active": 1, "cx_total": 3, "rq_active": 0, "rq_total": 7, "rq_error": 0},
                {"address": "::1", "port": 8082, "weight": 2, "healthy": False,
                 "cx_active": 0, "cx_total": 0, "rq_active": 0, "rq_total": 0, "rq_error": 1},
            ],
        },
        {"name": "from_xds", "hosts": []},
    ]  # fmt: skip
    return engine


class Admin:
    def __init__(self, engine: FakeEngine, state: ServerState, base: str) -> None:
        self.engine = engine
        self.state = state
        self.base = base


@pytest.fixture
async def admin(nursery):
    engine = make_engine()
    state = ServerState(ServerOptions(config_path="/etc/mesh.yaml", concurrency=3))
    state.set_config(
        FakeConfig(
            snapshot=engine.current, bootstrap=BOOTSTRAP, node_id="node-1", node_cluster="c1"
        )
    )
    state.phase = Phase.LIVE
    control = ControlStats()
    control.inc("cluster.service_v1.update_success", 2)
    hostnames = {("service_v1", "127.0.0.1", 8081): "backend.local"}
    ctx = AdminContext(
        engine,
        state,
        StatsCollector(engine, state, control),
        lambda c, a, p: hostnames.get((c, a, p), ""),
    )
    listeners = await listen("127.0.0.1", 0)
    host, port = bound_address(listeners)
    nursery.start_soon(serve_http, AdminApp(ctx), listeners)
    return Admin(engine, state, f"http://{host}:{port}")


async def get(admin: Admin, path: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(base_url=admin.base) as client:
        return await client.request(method, path)


async def test_ready_reports_the_state(admin):
    r = await get(admin, "/ready")
    assert (r.status_code, r.text) == (200, "LIVE\n")
    admin.state.phase = Phase.DRAINING
    r = await get(admin, "/ready")
    assert (r.status_code, r.text) == (503, "DRAINING\n")
    admin.state.phase = Phase.PRE_INITIALIZING
    assert (await get(admin, "/ready")).text == "PRE_INITIALIZING\n"


async def test_healthcheck_fail_and_ok(admin):
    r = await get(admin, "/healthcheck/fail", "POST")
    assert (r.status_code, r.text) == (200, "OK\n")
    r = await get(admin, "/ready")
    assert (r.status_code, r.text) == (503, "DRAINING\n")
    assert "server.live: 0\n" in (await get(admin, "/stats")).text
    assert orjson.loads((await get(admin, "/server_info")).content)["state"] == "DRAINING"
    await get(admin, "/healthcheck/ok", "POST")
    assert (await get(admin, "/ready")).status_code == 200
    assert "server.live: 1\n" in (await get(admin, "/stats")).text


async def test_mutating_endpoints_require_post(admin):
    for path in ("/healthcheck/fail", "/quitquitquit", "/logging"):
        r = await get(admin, path)
        assert (r.status_code, r.text) == (405, "Method GET not allowed, POST required.")
    assert not admin.state.healthcheck_failed
    assert not admin.state.shutdown_requested.is_set()


async def test_stats_text_merges_engine_control_and_server_stats(admin):
    r = await get(admin, "/stats")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=UTF-8"
    lines = r.text.splitlines()
    assert "cluster.service_v1.upstream_rq_total: 7" in lines
    assert "cluster.service_v1.update_success: 2" in lines
    assert "server.concurrency: 3" in lines
    assert "server.state: 0" in lines
    assert "server.version: 100" in lines
    assert lines[-1] == (
        "cluster.service_v1.upstream_rq_time: P0(nan,1) P25(nan,2) P50(nan,3) P75(nan,4) "
        "P90(nan,4.6) P95(nan,4.8) P99(nan,4.96) P99.5(nan,4.98) P99.9(nan,4.996) P100(nan,5)"
    )
    rss = next(int(x.split(": ")[1]) for x in lines if x.startswith("server.memory_physical_size"))
    assert rss > 1 << 20


async def test_stats_filter_type_and_formats(admin):
    r = await get(admin, "/stats?filter=upstream_rq_t")
    assert r.text.splitlines()[0] == "cluster.service_v1.upstream_rq_total: 7"
    assert len(r.text.splitlines()) == 2
    r = await get(admin, "/stats?filter=^server\\.live$&format=json")
    assert r.headers["content-type"] == "application/json"
    assert orjson.loads(r.content) == {"stats": [{"name": "server.live", "value": 1}]}
    r = await get(admin, "/stats?type=Counters&filter=service_v1")
    assert (
        r.text == "cluster.service_v1.update_success: 2\ncluster.service_v1.upstream_rq_total: 7\n"
    )
    r = await get(admin, "/stats?format=prometheus&filter=upstream_rq_total")
    assert r.text == (
        "# TYPE envoy_cluster_upstream_rq_total counter\n"
        'envoy_cluster_upstream_rq_total{envoy_cluster_name="service_v1"} 7\n'
    )


async def test_stats_bad_parameters_are_400(admin):
    r = await get(admin, "/stats?filter=(")
    assert r.status_code == 400
    assert r.text.startswith("Invalid regex: ")
    assert (await get(admin, "/stats?format=xml")).status_code == 400
    assert (await get(admin, "/stats?type=Meters")).status_code == 400


async def test_prometheus_endpoint(admin):
    r = await get(admin, "/stats/prometheus")
    assert r.status_code == 200
    text = r.text
    assert (
        "# TYPE envoy_cluster_upstream_cx_active gauge\n"
        'envoy_cluster_upstream_cx_active{envoy_cluster_name="service_v1"} 1\n'
    ) in text
    assert (
        'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="service_v1",le="5"} 2\n' in text
    )
    assert 'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="service_v1"} 2\n' in text
    assert "# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n" in text  # fmt: skip


async def test_clusters_text(admin):
    r = await get(admin, "/clusters")
    assert r.text.splitlines() == [
        "service_v1::observability_name::service_v1",
        "service_v1::added_via_api::false",
        "service_v1::127.0.0.1:8081::cx_active::1",
        "service_v1::127.0.0.1:8081::cx_total::3",
        "service_v1::127.0.0.1:8081::rq_active::0",
        "service_v1::127.0.0.1:8081::rq_error::0",
        "service_v1::127.0.0.1:8081::rq_total::7",
        "service_v1::127.0.0.1:8081::hostname::backend.local",
        "service_v1::127.0.0.1:8081::health_flags::healthy",
        "service_v1::127.0.0.1:8081::weight::1",
        "service_v1::127.0.0.1:8081::region::",
        "service_v1::127.0.0.1:8081::zone::",
        "service_v1::127.0.0.1:8081::sub_zone::",
        "service_v1::127.0.0.1:8081::canary::false",
        "service_v1::127.0.0.1:8081::priority::0",
        "service_v1::[::1]:8082::cx_active::0",
        "service_v1::[::1]:8082::cx_total::0",
        "service_v1::[::1]:8082::rq_active::0",
        "service_v1::[::1]:8082::rq_error::1",
        "service_v1::[::1]:8082::rq_total::0",
        "service_v1::[::1]:8082::hostname::",
        "service_v1::[::1]:8082::health_flags::/failed_eds_health",
        "service_v1::[::1]:8082::weight::2",
        "service_v1::[::1]:8082::region::",
        "service_v1::[::1]:8082::zone::",
        "service_v1::[::1]:8082::sub_zone::",
        "service_v1::[::1]:8082::canary::false",
        "service_v1::[::1]:8082::priority::0",
        "from_xds::observability_name::from_xds",
        "from_xds::added_via_api::true",
    ]
    filtered = await get(admin, "/clusters?filter=^from")
    assert (
        filtered.text == "from_xds::observability_name::from_xds\nfrom_xds::added_via_api::true\n"
    )


async def test_clusters_json(admin):
    doc = orjson.loads((await get(admin, "/clusters?format=json")).content)
    first, second = doc["cluster_statuses"]
    assert first["name"] == "service_v1" and "added_via_api" not in first
    assert second == {
        "name": "from_xds",
        "added_via_api": True,
        "host_statuses": [],
        "observability_name": "from_xds",
    }
    healthy, unhealthy = first["host_statuses"]
    assert healthy == {
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 8081}},
        "stats": [
            {"name": "cx_total", "value": "3"},
            {"name": "rq_error"},
            {"name": "rq_total", "value": "7"},
            {"name": "cx_active", "type": "GAUGE", "value": "1"},
            {"name": "rq_active", "type": "GAUGE"},
        ],
        "health_status": {"eds_health_status": "HEALTHY"},
        "weight": 1,
        "locality": {},
        "hostname": "backend.local",
    }
    assert unhealthy["health_status"] == {"eds_health_status": "UNHEALTHY"}
    assert "hostname" not in unhealthy


async def test_listeners(admin):
    assert (await get(admin, "/listeners")).text == "main::127.0.0.1:10000\n"
    doc = orjson.loads((await get(admin, "/listeners?format=json")).content)
    address = {"socket_address": {"address": "127.0.0.1", "port_value": 10000}}
    assert doc == {"listener_statuses": [{"name": "main", "local_address": address}]}


async def test_config_dump(admin):
    doc = orjson.loads((await get(admin, "/config_dump")).content)
    types = [c["@type"].rsplit(".", 1)[1] for c in doc["configs"]]
    assert types == [
        "BootstrapConfigDump",
        "ClustersConfigDump",
        "ListenersConfigDump",
        "ScopedRoutesConfigDump",
        "RoutesConfigDump",
        "SecretsConfigDump",
    ]
    bootstrap, clusters, listeners, _, routes, _ = doc["configs"]
    assert bootstrap["bootstrap"] == BOOTSTRAP
    assert bootstrap["last_updated"].endswith("Z")
    assert clusters["static_clusters"][0]["cluster"] == {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": "service_v1",
        "type": "STATIC",
    }
    assert listeners["static_listeners"][0]["listener"]["name"] == "main"
    route = routes["static_route_configs"][0]["route_config"]
    assert route["name"] == "main_routes"


async def test_server_info(admin):
    info = orjson.loads((await get(admin, "/server_info")).content)
    assert info["version"] == "meshcore/0.1.0"
    assert info["state"] == "LIVE"
    assert info["uptime_current_epoch"].endswith("s")
    assert info["command_line_options"]["concurrency"] == 3
    assert info["command_line_options"]["config_path"] == "/etc/mesh.yaml"
    # No --drain-time-s: meshcore's default, 5 s.
    assert info["command_line_options"]["drain_time"] == "5s"
    assert info["node"]["id"] == "node-1"
    assert info["node"]["cluster"] == "c1"


@pytest.mark.parametrize(("drain_time_s", "shown"), [(None, "5s"), (12.5, "12.500s")])
async def test_server_info_drain_time_is_the_option_not_the_hcm_drain_timeout(
    admin, drain_time_s, shown
):
    admin.state.options = dataclasses.replace(admin.state.options, drain_time_s=drain_time_s)
    admin.state.set_config(
        FakeConfig(snapshot={"listeners": [listener("main", 10000, drain_timeout_ms=60000)]})
    )
    info = orjson.loads((await get(admin, "/server_info")).content)
    assert info["command_line_options"]["drain_time"] == shown


async def test_quitquitquit_answers_then_requests_shutdown(admin):
    r = await get(admin, "/quitquitquit", "POST")
    assert (r.status_code, r.text) == (200, "OK\n")
    assert admin.state.shutdown_requested.is_set()


async def test_unknown_path_lists_the_endpoints(admin):
    r = await get(admin, "/nope")
    assert r.status_code == 404
    lines = r.text.splitlines()
    assert lines[0] == "invalid path. admin commands are:"
    assert "  /quitquitquit (POST): exit the server" in lines
    assert "  /stats/prometheus: print server stats in prometheus format" in lines
    home = await get(admin, "/")
    assert home.headers["content-type"] == "text/html; charset=UTF-8"
    assert "<a href='/stats'>/stats</a>" in home.text
    assert "<form action='/quitquitquit' method='post'>" in home.text


async def test_logging_level(admin):
    from meshcore.lifecycle import log_setup

    before = log_setup.current_level()
    try:
        r = await get(admin, "/logging?level=debug", "POST")
        assert r.text == "active loggers:\n  meshcore: debug\n"
        assert (await get(admin, "/logging?level=loud", "POST")).status_code == 400
    finally:
        log_setup.set_level(before)


async def test_a_failing_engine_call_is_a_500_and_the_server_lives_on(admin):
    admin.engine.raise_in_stats = RuntimeError("boom")
    r = await get(admin, "/stats")
    assert r.status_code == 500
    admin.engine.raise_in_stats = None
    assert (await get(admin, "/stats")).status_code == 200


async def raw_exchange(admin: Admin, data: bytes) -> bytes:
    host, port = admin.base.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(data)
        chunks = []
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                chunks.append(chunk)
    return b"".join(chunks)


async def test_keep_alive_serves_several_requests_on_one_connection(admin):
    reply = await raw_exchange(
        admin,
        b"GET /ready HTTP/1.1\r\nhost: x\r\n\r\n"
        b"HEAD /ready HTTP/1.1\r\nhost: x\r\n\r\n"
        b"GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 3
    # Two bodies: the HEAD response has none.
    assert reply.count(b"LIVE\n") == 2


async def test_malformed_request_gets_400_and_the_server_keeps_serving(admin):
    reply = await raw_exchange(admin, b"GARBAGE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert (await get(admin, "/ready")).status_code == 200


async def test_oversized_body_is_rejected(admin):
    body = b"x" * ((1 << 20) + 1)
    head = b"POST /healthcheck/fail HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(body)
    reply = await raw_exchange(admin, head + body)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert not admin.state.healthcheck_failed
