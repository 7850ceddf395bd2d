"""The xDS client's timers and sources: initial_fetch_timeout, resource TTLs and heartbeats,
reconnect back-off, watched files (path_config_source), and the stats and /config_dump
data it keeps."""

from __future__ import annotations

from pathlib import Path

import trio
import yaml
from google.protobuf import json_format

from .ads_server import AdsServer
from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    listener_json,
    route_config,
    routes_json,
    static_cluster,
)
from .fakes import FakeSink
from .harness import acked, request, running_client, until


async def test_initial_fetch_timeout_lets_the_server_start_without_the_control_plane(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    ads_server.auto_respond = False
    async with running_client(
        ads_server, sink, initial_fetch_timeout="0.2s", wait_initialized=False
    ) as client:
        with trio.fail_after(5):
            await client.initialized.wait()
        assert client.stats.control.get("cluster_manager.cds.init_fetch_timeout") == 1
        assert client.stats.control.get("listener_manager.lds.init_fetch_timeout") == 1
        assert sink.configs == []


async def test_initialization_waits_for_warming_clusters(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    version = ads_server.set_resources(CLUSTER, [eds_cluster("a")])
    ads_server.set_resources(LISTENER, [])
    async with running_client(ads_server, sink, wait_initialized=False) as client:
        await request(ads_server, acked(CLUSTER, version))
        await request(ads_server, lambda r: r.type_url == ASSIGNMENT)
        await trio.sleep(0.1)
        assert not client.initialized.is_set()
        assert client.store.warming()
        ads_server.set_resources(ASSIGNMENT, [assignment("a", [("127.0.0.1", 1)])])
        with trio.fail_after(5):
            await client.initialized.wait()
        assert "a" in sink.cluster_names()


async def test_a_resource_whose_ttl_runs_out_is_removed_unless_refreshed(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    ads_server.set_resources(LISTENER, [])
    ads_server.set_resources(CLUSTER, [static_cluster("short", [("127.0.0.1", 1)])], ttl_s=0.6)
    async with running_client(ads_server, sink) as client:
        await until(lambda: sink.configs and "short" in sink.cluster_names())
        for _ in range(3):  # heartbeats keep it
            await trio.sleep(0.3)
            ads_server.heartbeat(CLUSTER, ["short"])
        assert "short" in sink.cluster_names()
        assert "short" in client.store.accepted[CLUSTER]
        await until(lambda: "short" not in sink.cluster_names(), timeout=5)
        assert "short" not in client.store.accepted[CLUSTER]


async def test_delta_ttl_and_heartbeat(ads_server: AdsServer, sink: FakeSink) -> None:
    ads_server.set_resources(LISTENER, [])
    ads_server.set_resources(CLUSTER, [static_cluster("short", [("127.0.0.1", 1)])], ttl_s=0.6)
    async with running_client(ads_server, sink, delta=True):
        await until(lambda: sink.configs and "short" in sink.cluster_names())
        for _ in range(3):
            await trio.sleep(0.3)
            ads_server.heartbeat(CLUSTER, ["short"])
        assert "short" in sink.cluster_names()
        await until(lambda: "short" not in sink.cluster_names(), timeout=5)


async def test_reconnects_after_the_server_closes_the_stream(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    ads_server.set_resources(LISTENER, [])
    version = ads_server.set_resources(CLUSTER, [static_cluster("a", [("127.0.0.1", 1)])])
    async with running_client(ads_server, sink) as client:
        await request(ads_server, acked(CLUSTER, version))
        await until(lambda: client.connected)
        assert client.stats.control.gauge("control_plane.connected_state") == 1
        mark = len(ads_server.recorded)
        ads_server.close_streams()
        again = await request(ads_server, lambda r: r.type_url == CLUSTER, mark)
        # SotW: the last accepted version, so an unchanged server sends nothing again.
        assert again.request.version_info == version
        assert again.nonce == ""
        assert client.stats.control.get("cluster_manager.cds.update_failure") >= 1
        await until(lambda: client.connected)


async def test_connected_state_is_zero_while_the_server_is_down(sink: FakeSink) -> None:
    server = AdsServer().start()
    port = server.port
    server.stop()
    down = AdsServer()
    down.port = port
    async with running_client(down, sink, wait_initialized=False) as client:
        await trio.sleep(0.3)
        assert not client.connected
        assert client.stats.control.gauge("control_plane.connected_state") == 0
        assert client.stats.control.get("cluster_manager.cds.update_failure") >= 1


def write_response(path: Path, version: str, resources: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"version_info": version, "resources": resources}))
    tmp.replace(path)


def typed(type_url: str, data: dict) -> dict:
    return {"@type": type_url, **data}


async def test_listeners_and_clusters_from_watched_files(
    ads_server: AdsServer, sink: FakeSink, tmp_path: Path
) -> None:
    lds_file, cds_file = tmp_path / "lds.yaml", tmp_path / "cds.yaml"
    write_response(
        cds_file,
        "c1",
        [typed(CLUSTER, json_format.MessageToDict(static_cluster("a", [("127.0.0.1", 1)])))],
    )
    write_response(
        lds_file, "l1", [typed(LISTENER, listener_json("ingress", 0, routes=routes_json("r", "a")))]
    )
    sources = {
        "lds": {
            "path_config_source": {
                "path": str(lds_file),
                "watched_directory": {"path": str(tmp_path)},
            }
        },
        "cds": {"path_config_source": {"path": str(cds_file)}},
    }
    async with running_client(ads_server, sink, **sources) as client:
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        assert "a" in sink.cluster_names()
        assert client.versions[LISTENER] == "l1"
        bad = listener_json("ingress", 0, routes=routes_json("r", "a"))
        bad["per_connection_buffer_limit_bytes"] = "lots"
        write_response(lds_file, "l2", [typed(LISTENER, bad)])
        await until(lambda: client.stats.control.get("listener_manager.lds.update_rejected"))
        assert client.rejections[LISTENER][0] == (
            f"{lds_file}: resources[0].per_connection_buffer_limit_bytes: expected an integer, "
            'got "lots"'
        )
        write_response(lds_file, "l3", [])
        await until(lambda: "ingress" not in sink.listener_names())
        assert client.versions[LISTENER] == "l3"


async def test_config_dump_and_stats_after_updates(ads_server: AdsServer, sink: FakeSink) -> None:
    ads_server.set_resources(CLUSTER, [eds_cluster("a")], version="c-1")
    ads_server.set_resources(ASSIGNMENT, [assignment("a", [("127.0.0.1", 1)])], version="e-1")
    ads_server.set_resources(LISTENER, [listener("ingress", 0, rds="r")], version="l-1")
    ads_server.set_resources(ROUTE_CONFIG, [route_config("r", "a")], version="r-1")
    async with running_client(ads_server, sink) as client:
        await request(ads_server, acked(ROUTE_CONFIG, "r-1"))
        dump = client.dump(include_eds=True)
        assert dump["clusters"]["version_info"] == "c-1"
        active = dump["clusters"]["dynamic_active_clusters"]
        assert [c["cluster"]["name"] for c in active] == ["a"]
        assert active[0]["version_info"] == "c-1"
        assert active[0]["cluster"]["@type"] == CLUSTER
        assert active[0]["last_updated"].endswith("Z")
        listeners = dump["listeners"]["dynamic_listeners"]
        assert listeners[0]["name"] == "ingress"
        assert listeners[0]["active_state"]["version_info"] == "l-1"
        routes = dump["routes"]["dynamic_route_configs"]
        assert routes[0]["route_config"]["name"] == "r"
        assert routes[0]["version_info"] == "r-1"
        eds = dump["endpoints"]["dynamic_endpoint_configs"]
        assert eds[0]["endpoint_config"]["cluster_name"] == "a"
        control = client.stats.control
        for scope in (
            "cluster_manager.cds",
            "listener_manager.lds",
            "http.ingress.rds.r",
            "cluster.a",
        ):
            assert control.get(f"{scope}.update_success") == 1, scope
            assert control.get(f"{scope}.update_attempt") == 1, scope
            assert control.gauge(f"{scope}.version"), scope
        assert control.gauge("cluster_manager.active_clusters") == 2  # xds_cluster and a
        assert control.gauge("listener_manager.total_listeners_active") == 1
        assert control.get("cluster_manager.cluster_added") == 1
        versions = {control.gauge("cluster_manager.cds.version")}
        ads_server.set_resources(CLUSTER, [eds_cluster("a", lb_policy="RANDOM")], version="c-2")
        await request(ads_server, acked(CLUSTER, "c-2"))
        await until(lambda: control.get("cluster_manager.cluster_modified") == 1)
        assert control.gauge("cluster_manager.cds.version") not in versions


async def test_eds_update_stats_are_named_by_the_alt_stat_name(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    ads_server.set_resources(CLUSTER, [eds_cluster("a", alt_stat_name="a_stats")], version="c-1")
    ads_server.set_resources(ASSIGNMENT, [assignment("a", [("127.0.0.1", 1)])], version="e-1")
    ads_server.set_resources(LISTENER, [listener("ingress", 0, rds="r")], version="l-1")
    ads_server.set_resources(ROUTE_CONFIG, [route_config("r", "a")], version="r-1")
    async with running_client(ads_server, sink) as client:
        await request(ads_server, acked(ROUTE_CONFIG, "r-1"))
        control = client.stats.control
        assert control.get("cluster.a_stats.update_success") == 1
        assert control.get("cluster.a_stats.update_attempt") == 1
        assert control.get("cluster.a.update_success") == 0


async def test_a_listener_from_a_watched_file_inherits_the_bootstrap_tracing(
    ads_server: AdsServer, sink: FakeSink, tmp_path: Path
) -> None:
    lds_file, cds_file = tmp_path / "lds.yaml", tmp_path / "cds.yaml"
    write_response(
        cds_file,
        "c1",
        [typed(CLUSTER, json_format.MessageToDict(static_cluster("a", [("127.0.0.1", 1)])))],
    )
    traced = listener_json(
        "ingress", 0, routes=routes_json("r", "a"), tracing={"random_sampling": {"value": 1}}
    )
    write_response(lds_file, "l1", [typed(LISTENER, traced)])
    zipkin = {
        "name": "envoy.tracers.zipkin",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
            "collector_cluster": "a",
            "collector_endpoint": "/api/v2/spans",
            "collector_endpoint_version": "HTTP_JSON",
        },
    }
    sources = {
        "lds": {"path_config_source": {"path": str(lds_file)}},
        "cds": {"path_config_source": {"path": str(cds_file)}},
    }
    async with running_client(ads_server, sink, tracing={"http": zipkin}, **sources):
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        chain = sink.listener("ingress")["filter_chains"][0]
        t = chain["filter"]["http_connection_manager"]["tracing"]
        assert (t["provider"], t["random_sampling"]) == ("zipkin", 100)
        assert (t["export"]["cluster"], t["export"]["path"]) == ("a", "/api/v2/spans")
    async with running_client(ads_server, sink, wait_initialized=False, **sources) as client:
        await until(lambda: client.rejections.get(LISTENER))
        assert client.rejections[LISTENER][0] == (
            "listeners[ingress].filter_chains[0].filters[0].typed_config.tracing"
            ".provider: a tracing provider is required (here or in the bootstrap's "
            "`tracing.http`)"
        )
