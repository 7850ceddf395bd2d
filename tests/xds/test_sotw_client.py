"""The state-of-the-world ADS client against the test server: first requests, ACKs, NACKs,
warming, removals and subscriptions (the engine is a fake sink; traffic tests run the real
one in test_meshcore_run.py)."""

from __future__ import annotations

import logging

import pytest
import trio

from .ads_server import AdsServer
from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
    static_cluster,
)
from .fakes import FakeSink
from .harness import acked, nacked, request, running_client, until


def serve_basic(server: AdsServer) -> dict[str, str]:
    """CDS backend (EDS), EDS 1 host, LDS ingress (RDS routes), RDS routes -> backend."""
    return {
        CLUSTER: server.set_resources(CLUSTER, [eds_cluster("backend")]),
        ASSIGNMENT: server.set_resources(
            ASSIGNMENT, [assignment("backend", [("127.0.0.1", 9001)])]
        ),
        LISTENER: server.set_resources(LISTENER, [listener("ingress", 0, rds="routes")]),
        ROUTE_CONFIG: server.set_resources(ROUTE_CONFIG, [route_config("routes", "backend")]),
    }


async def test_first_requests_carry_the_node_and_every_type_is_acked(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    versions = serve_basic(ads_server)
    async with running_client(ads_server, sink):
        for type_url, version in versions.items():
            ack = await request(ads_server, acked(type_url, version))
            assert ack.nonce
        first = ads_server.recorded[0]
        assert first.type_url == CLUSTER
        assert first.request.node.id == "meshcore"
        assert first.request.node.cluster == "test-mesh"
        assert first.request.node.user_agent_name == "meshcore"
        assert first.request.version_info == ""
        assert first.nonce == ""
        eds = await request(ads_server, lambda r: r.type_url == ASSIGNMENT)
        assert list(eds.request.resource_names) == ["backend"]
        rds = await request(ads_server, lambda r: r.type_url == ROUTE_CONFIG)
        assert list(rds.request.resource_names) == ["routes"]
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        ingress = sink.listener("ingress")
        routes = ingress["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"]
        assert routes["name"] == "routes"
        assert routes["virtual_hosts"][0]["routes"][0]["action"]["route"]["target"] == {
            "cluster": "backend"
        }
        assert sink.cluster("backend")["endpoints"] == [
            {"address": "127.0.0.1", "port": 9001, "weight": 1, "healthy": True, "priority": 0}
        ]


async def test_applied_lines_log_routes_and_endpoints_at_debug_as_envoy(
    ads_server: AdsServer, sink: FakeSink, caplog: pytest.LogCaptureFixture
) -> None:
    versions = serve_basic(ads_server)
    caplog.set_level(logging.DEBUG, logger="meshcore.xds.client")
    async with running_client(ads_server, sink):
        for type_url, version in versions.items():
            await request(ads_server, acked(type_url, version))
    levels = {
        r.args[0]: r.levelno  # type: ignore[index]
        for r in caplog.records
        if r.getMessage().startswith("xDS ") and " applied (" in r.getMessage()
    }
    assert levels == {
        "Cluster": logging.INFO,
        "ClusterLoadAssignment": logging.DEBUG,
        "Listener": logging.INFO,
        "RouteConfiguration": logging.DEBUG,
    }


async def test_a_bad_cluster_is_nacked_with_its_path_and_the_old_config_stays(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    versions = serve_basic(ads_server)
    async with running_client(ads_server, sink) as client:
        await request(ads_server, acked(CLUSTER, versions[CLUSTER]))
        applied = len(sink.configs)
        bad = eds_cluster("backend", lb_policy="CLUSTER_PROVIDED")
        ads_server.set_resources(CLUSTER, [bad, static_cluster("other", [("127.0.0.1", 1)])])
        nack = await request(ads_server, nacked(CLUSTER))
        assert nack.request.version_info == versions[CLUSTER]
        assert nack.request.error_detail.code == 3
        assert nack.error == "clusters[backend].lb_policy: CLUSTER_PROVIDED is not supported"
        assert len(sink.configs) == applied
        assert "other" not in sink.cluster_names()
        assert client.stats.control.get("cluster_manager.cds.update_rejected") == 1
        good = ads_server.set_resources(
            CLUSTER, [eds_cluster("backend"), static_cluster("other", [("127.0.0.1", 1)])]
        )
        await request(ads_server, acked(CLUSTER, good))
        await until(lambda: "other" in sink.cluster_names())
        assert client.stats.control.get("cluster_manager.cds.update_success") == 2


async def test_an_absent_cluster_is_removed_once_no_route_uses_it(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    ads_server.set_resources(
        CLUSTER, [static_cluster("a", [("127.0.0.1", 1)]), static_cluster("b", [("127.0.0.1", 2)])]
    )
    ads_server.set_resources(LISTENER, [listener("ingress", 0, rds="routes")])
    ads_server.set_resources(ROUTE_CONFIG, [route_config("routes", "a")])
    async with running_client(ads_server, sink):
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        assert {"a", "b"} <= set(sink.cluster_names())
        # CDS drops both; the route still sends to a, so a stays until RDS moves off it.
        ads_server.set_resources(CLUSTER, [static_cluster("c", [("127.0.0.1", 3)])])
        await until(lambda: "c" in sink.cluster_names())
        assert "b" not in sink.cluster_names()
        assert "a" in sink.cluster_names()
        ads_server.set_resources(ROUTE_CONFIG, [route_config("routes", "c")])
        await until(lambda: "a" not in sink.cluster_names())


async def test_an_eds_cluster_warms_until_its_endpoints_arrive(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve_basic(ads_server)
    async with running_client(ads_server, sink) as client:
        await until(lambda: sink.configs and "backend" in sink.cluster_names())
        ads_server.set_resources(CLUSTER, [eds_cluster("backend"), eds_cluster("fresh")])
        await request(ads_server, lambda r: "fresh" in r.request.resource_names)
        await trio.sleep(0.1)
        assert "fresh" not in sink.cluster_names()
        assert client.dump()["clusters"]["dynamic_warming_clusters"][0]["cluster"]["name"] == (
            "fresh"
        )
        ads_server.set_resources(
            ASSIGNMENT,
            [
                assignment("backend", [("127.0.0.1", 9001)]),
                assignment("fresh", [("127.0.0.1", 9002)]),
            ],
        )
        await until(lambda: "fresh" in sink.cluster_names())
        assert sink.cluster("fresh")["endpoints"][0]["port"] == 9002


async def test_endpoint_changes_are_endpoint_updates_not_new_snapshots(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve_basic(ads_server)
    async with running_client(ads_server, sink):
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        applied = len(sink.configs)
        ads_server.set_resources(
            ASSIGNMENT, [assignment("backend", [("127.0.0.1", 9001), ("127.0.0.1", 9003)])]
        )
        await until(lambda: sink.endpoint_updates)
        assert [e["port"] for e in sink.endpoint_updates[-1]["backend"]] == [9001, 9003]
        assert len(sink.configs) == applied


async def test_a_route_change_tells_the_server_clusters_are_unchanged(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve_basic(ads_server)
    ads_server.set_resources(
        CLUSTER, [eds_cluster("backend"), static_cluster("other", [("127.0.0.1", 2)])]
    )
    async with running_client(ads_server, sink):
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        applied = len(sink.configs)
        ads_server.set_resources(ROUTE_CONFIG, [route_config("routes", "other")])
        await until(lambda: len(sink.configs) > applied)
        assert sink.clusters_changed[-1] is False
        ads_server.set_resources(CLUSTER, [eds_cluster("backend"), eds_cluster("other")])
        ads_server.set_resources(
            ASSIGNMENT,
            [assignment("backend", [("127.0.0.1", 1)]), assignment("other", [("127.0.0.1", 3)])],
        )
        await until(lambda: sink.cluster("other")["endpoints"][0]["port"] == 3)
        assert sink.clusters_changed[-1] is True


async def test_node_on_every_request_unless_asked_and_initial_metadata(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve_basic(ads_server)
    services = [
        {
            "envoy_grpc": {"cluster_name": "xds_cluster"},
            "initial_metadata": [{"key": "X-Mesh-Token", "value": "secret"}],
        }
    ]
    async with running_client(ads_server, sink, ads_extra={"grpc_services": services}):
        await request(ads_server, lambda r: r.type_url == ROUTE_CONFIG and r.is_ack())
        assert all(r.request.node.id == "meshcore" for r in ads_server.recorded)
        assert ads_server.streams_seen[0].metadata["x-mesh-token"] == "secret"
    mark = len(ads_server.recorded)
    async with running_client(ads_server, sink, ads_extra={"set_node_on_first_message_only": True}):
        await request(ads_server, lambda r: r.type_url == ROUTE_CONFIG and r.is_ack(), mark)
        mine = ads_server.recorded[mark:]
        assert mine[0].request.HasField("node")
        assert not any(r.request.HasField("node") for r in mine[1:])


async def test_malformed_responses_are_nacked(ads_server: AdsServer, sink: FakeSink) -> None:
    from envoy.service.discovery.v3 import discovery_pb2
    from google.protobuf.any_pb2 import Any as AnyMessage

    serve_basic(ads_server)
    async with running_client(ads_server, sink) as client:
        await request(ads_server, lambda r: r.type_url == ROUTE_CONFIG and r.is_ack())
        wrong = AnyMessage()
        wrong.Pack(listener("sneaky", 0, rds="routes"))
        ads_server.push_raw(
            discovery_pb2.DiscoveryResponse(type_url=CLUSTER, version_info="x1", resources=[wrong])
        )
        nack = await request(ads_server, nacked(CLUSTER))
        assert nack.error == "Cluster response: resources[0]: a Listener in a Cluster response"
        garbage = AnyMessage(type_url=CLUSTER, value=b"\xff\xff\xff")
        ads_server.push_raw(
            discovery_pb2.DiscoveryResponse(
                type_url=CLUSTER, version_info="x2", resources=[garbage]
            )
        )
        nack = await request(
            ads_server, lambda r: r.is_nack() and "cannot decode Cluster" in r.error
        )
        assert nack.error.startswith("Cluster response: resources[0]: cannot decode Cluster")
        runtime = "type.googleapis.com/envoy.service.runtime.v3.Runtime"
        ads_server.push_raw(discovery_pb2.DiscoveryResponse(type_url=runtime, version_info="s"))
        # A type nobody asked for is ignored (as Envoy): no request names it.
        await until(lambda: runtime in client.rejections)
        assert client.rejections[runtime][0] == f"unknown type {runtime}"
        assert not ads_server.requests(runtime)
        assert "backend" in sink.cluster_names()


async def test_an_update_the_engine_refuses_is_nacked(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve_basic(ads_server)
    async with running_client(ads_server, sink):
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        sink.refuse = ValueError("listeners[0]: cannot bind 127.0.0.1:1: permission denied")
        ads_server.set_resources(CLUSTER, [eds_cluster("backend"), static_cluster("x", [])])
        nack = await request(ads_server, nacked(CLUSTER))
        assert nack.error == (
            "the engine refused the update: listeners[0]: cannot bind 127.0.0.1:1: permission "
            "denied"
        )
        sink.refuse = RuntimeError("a bug")
        ads_server.set_resources(CLUSTER, [eds_cluster("backend"), static_cluster("y", [])])
        nack = await request(ads_server, lambda r: r.is_nack() and "internal error" in r.error)
        assert nack.error == "internal error while applying the update: RuntimeError('a bug')"


async def test_rds_names_follow_the_listeners(ads_server: AdsServer, sink: FakeSink) -> None:
    serve_basic(ads_server)
    async with running_client(ads_server, sink):
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        mark = len(ads_server.recorded)
        ads_server.set_resources(LISTENER, [listener("ingress", 0, rds="next")])
        both = await request(
            ads_server,
            lambda r: (
                r.type_url == ROUTE_CONFIG
                and set(r.request.resource_names)
                == {
                    "routes",
                    "next",
                }
            ),
            mark,
        )
        assert both.nonce  # a subscription change carries the last nonce
        # The old listener (and its route config) serves until "next" arrives...
        assert (
            sink.listener("ingress")["filter_chains"][0]["filter"]["http_connection_manager"][
                "route_config"
            ]["name"]
            == "routes"
        )
        ads_server.set_resources(
            ROUTE_CONFIG, [route_config("routes", "backend"), route_config("next", "backend")]
        )
        # ...then "routes" is no longer needed.
        await request(
            ads_server,
            lambda r: r.type_url == ROUTE_CONFIG and list(r.request.resource_names) == ["next"],
            mark,
        )
        assert (
            sink.listener("ingress")["filter_chains"][0]["filter"]["http_connection_manager"][
                "route_config"
            ]["name"]
            == "next"
        )
