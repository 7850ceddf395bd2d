"""The delta ADS client against the test server: wildcard and named subscriptions,
removed_resources, NACKs, and reconnects that send initial_resource_versions."""

from __future__ import annotations

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
)
from .fakes import FakeSink
from .harness import delta_acked, nacked, request, running_client, until


def serve(server: AdsServer) -> None:
    server.set_resources(CLUSTER, [eds_cluster("a"), eds_cluster("b")])
    server.set_resources(
        ASSIGNMENT,
        [assignment("a", [("127.0.0.1", 9001)]), assignment("b", [("127.0.0.1", 9002)])],
    )
    server.set_resources(LISTENER, [listener("ingress", 0, rds="routes")])
    server.set_resources(ROUTE_CONFIG, [route_config("routes", "a")])


async def test_delta_subscribes_wildcard_then_names_and_acks_by_nonce(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve(ads_server)
    async with running_client(ads_server, sink, delta=True):
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        first = ads_server.recorded[0]
        assert first.delta
        assert first.type_url == CLUSTER
        assert first.request.node.id == "meshcore"
        assert list(first.request.resource_names_subscribe) == []  # wildcard
        eds = await request(ads_server, lambda r: r.type_url == ASSIGNMENT and not r.nonce)
        assert sorted(eds.request.resource_names_subscribe) == ["a", "b"]
        assert not eds.request.HasField("node")
        for type_url in (CLUSTER, ASSIGNMENT, LISTENER, ROUTE_CONFIG):
            await request(ads_server, delta_acked(type_url))
        sent = ads_server.sent_nonce_versions()
        ack = await request(ads_server, delta_acked(ROUTE_CONFIG))
        assert ack.nonce in sent


async def test_removed_resources_remove_clusters_and_unsubscribe_their_endpoints(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve(ads_server)
    async with running_client(ads_server, sink, delta=True):
        await until(lambda: sink.configs and {"a", "b"} <= set(sink.cluster_names()))
        mark = len(ads_server.recorded)
        ads_server.set_resources(CLUSTER, [eds_cluster("a")])
        unsubscribe = await request(
            ads_server, lambda r: list(r.request.resource_names_unsubscribe) == ["b"], mark
        )
        assert unsubscribe.type_url == ASSIGNMENT
        await until(lambda: "b" not in sink.cluster_names())
        assert "a" in sink.cluster_names()


def routed_to(sink: FakeSink) -> object:
    routes = sink.listener("ingress")["filter_chains"][0]["filter"]["http_connection_manager"][
        "route_config"
    ]
    return routes["virtual_hosts"][0]["routes"][0]["action"]["route"]["target"]["cluster"]


async def test_a_bad_route_is_nacked_in_delta(ads_server: AdsServer, sink: FakeSink) -> None:
    serve(ads_server)
    async with running_client(ads_server, sink, delta=True) as client:
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        bad = route_config("routes", "a")
        bad.virtual_hosts[0].routes[0].match.grpc.SetInParent()
        ads_server.set_resources(ROUTE_CONFIG, [bad])
        nack = await request(ads_server, nacked(ROUTE_CONFIG))
        assert nack.error == (
            "route_configs[routes].virtual_hosts[0].routes[0].match.grpc: grpc is not supported"
        )
        assert client.stats.control.get("http.ingress.rds.routes.update_rejected") == 1
        assert routed_to(sink) == "a"


async def test_a_route_to_a_cluster_not_sent_yet_waits_for_it(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve(ads_server)
    async with running_client(ads_server, sink, delta=True) as client:
        await request(ads_server, delta_acked(ROUTE_CONFIG))  # the first one
        mark = len(ads_server.recorded)
        ads_server.set_resources(ROUTE_CONFIG, [route_config("routes", "later")])
        await request(ads_server, delta_acked(ROUTE_CONFIG), after=mark)
        assert client.store.view.waiting == {"route_configs[routes]": frozenset({"later"})}
        assert routed_to(sink) == "a"  # the old version serves meanwhile
        ads_server.set_resources(
            CLUSTER, [eds_cluster("a"), eds_cluster("b"), eds_cluster("later")]
        )
        ads_server.set_resources(
            ASSIGNMENT,
            [
                assignment("a", [("127.0.0.1", 9001)]),
                assignment("b", [("127.0.0.1", 9002)]),
                assignment("later", [("127.0.0.1", 9003)]),
            ],
        )
        await until(lambda: routed_to(sink) == "later")
        assert client.store.view.waiting == {}


async def test_reconnect_sends_initial_resource_versions(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    serve(ads_server)
    async with running_client(ads_server, sink, delta=True) as client:
        await until(lambda: sink.configs and "ingress" in sink.listener_names())
        await request(ads_server, delta_acked(ROUTE_CONFIG))
        held = {
            t: {name: e.version for name, e in client.store.accepted[t].items()}
            for t in (CLUSTER, ASSIGNMENT, LISTENER, ROUTE_CONFIG)
        }
        applied = len(sink.configs)
        mark = len(ads_server.recorded)
        ads_server.close_streams()
        again = {}
        for type_url in (CLUSTER, ASSIGNMENT, LISTENER, ROUTE_CONFIG):
            again[type_url] = await request(
                ads_server, lambda r, t=type_url: r.type_url == t and not r.nonce, mark
            )
        for type_url, recorded in again.items():
            assert dict(recorded.request.initial_resource_versions) == held[type_url]
        assert again[CLUSTER].request.node.id == "meshcore"
        assert ads_server.streams_opened == 2
        await until(lambda: client.connected)
        # The server had nothing new: nothing was re-sent, nothing re-applied.
        assert len(sink.configs) == applied
