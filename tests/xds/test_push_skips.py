"""The per-update work the xDS client and the server skip when its inputs are the same
objects as last time (a route change), and do again when they change: resubscription,
the JWKS fetcher and span exporter, the RDS stats scopes, the listener-manager gauges, the
static cluster names, and a listener's serving entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshcore.config.xds_resources import SECRET
from meshcore.xds.client import XdsClient

from tests.support import bootstrap as b
from tests.support.certs import make_pki

from .builders import (
    ASSIGNMENT,
    CLUSTER,
    LISTENER,
    ROUTE_CONFIG,
    assignment,
    eds_cluster,
    listener,
    route_config,
    routes_json,
    xds_bootstrap,
)
from .fakes import FakeSink
from .harness import load_bootstrap
from .incremental import new_client, response
from .real_server import real_server
from .sds import secret

HOSTS = {"s0": [("10.0.0.1", 80)], "s1": [("10.0.0.2", 80)]}


async def _load(client: XdsClient, *, stat_prefix: str = "ingress") -> None:
    """Two clusters, listener `l` with RDS `r` (to s0) and `m` with inline routes to s1."""
    await client._on_response(response(CLUSTER, [eds_cluster(n) for n in HOSTS], "c"))
    assignments = [assignment(n, hosts) for n, hosts in HOSTS.items()]
    await client._on_response(response(ASSIGNMENT, assignments, "e"))
    listeners = [
        listener("l", 0, rds="r", stat_prefix=stat_prefix),
        listener("m", 0, routes=routes_json("inline", "s1")),
    ]
    await client._on_response(response(LISTENER, listeners, "l"))
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s0")], "r"))


def _counting(obj: Any, name: str) -> list[int]:
    """Counts the calls of `obj.name` (in the list's length) from now on."""
    calls: list[int] = []
    real = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


async def test_a_route_change_resubscribes_only_when_the_names_can_change() -> None:
    client, stream = new_client(FakeSink())
    await _load(client)
    refs = _counting(client.store, "secret_refs")
    sent = len(stream.sent)
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
    assert stream.acked("r2") and len(stream.sent) == sent + 1  # the ACK alone
    assert refs == []  # nothing the subscriptions are read from changed

    # A listener change: followed again, and its new route config subscribed to.
    listeners = [listener("l", 0, rds="r"), listener("n", 0, rds="r2")]
    await client._on_response(response(LISTENER, listeners, "l2"))
    assert stream.acked("l2") and refs
    assert client._subscribed[ROUTE_CONFIG] == {"r", "r2"}
    assert list(stream.sent[-1].resource_names_subscribe) == ["r2"]


async def test_a_listener_dropped_in_place_is_followed_again() -> None:
    client, stream = new_client(FakeSink())
    await _load(client)
    listeners = [listener("l", 0, rds="r"), listener("n", 0, rds="r2")]
    await client._on_response(response(LISTENER, listeners, "l2"))
    assert client.store.view.warming_listeners == {"n"}  # r2 has not come
    assert client._subscribed[ROUTE_CONFIG] == {"r", "r2"}
    client.store.drop(LISTENER, ["n"])  # `accepted` changed in place, the view as it was
    client._resubscribe()
    assert client._subscribed[ROUTE_CONFIG] == {"r"}
    assert list(stream.sent[-1].resource_names_unsubscribe) == ["r2"]


async def test_a_secret_nothing_names_is_still_forgotten(tmp_path: Path) -> None:
    client, stream = new_client(FakeSink())
    await _load(client)
    stray = secret("stray", make_pki(tmp_path).server)
    await client._on_response(response(SECRET, [stray], "s"))
    assert stream.acked("s")
    assert "stray" not in client.store.accepted[SECRET]


async def test_rds_stats_scopes_follow_the_listeners() -> None:
    client, _ = new_client(FakeSink())
    await _load(client)
    control = client.stats.control
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
    assert control.get("http.ingress.rds.r.update_success") == 2
    await client._on_response(
        response(LISTENER, [listener("l", 0, rds="r", stat_prefix="x")], "l2")
    )
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s0")], "r3"))
    assert control.get("http.ingress.rds.r.update_success") == 2
    assert control.get("http.x.rds.r.update_success") == 1
    assert control.gauge("http.x.rds.r.version") is not None


async def test_listener_gauges_follow_a_route_config_that_warms_a_listener() -> None:
    client, _ = new_client(FakeSink())
    await _load(client)
    control = client.stats.control
    listeners = [listener("l", 0, rds="r"), listener("n", 0, rds="r2")]
    await client._on_response(response(LISTENER, listeners, "l2"))
    assert control.gauge("listener_manager.total_listeners_warming") == 1
    active = control.gauge("listener_manager.total_listeners_active")
    await client._on_response(response(ROUTE_CONFIG, [route_config("r2", "s1")], "r2"))
    assert control.gauge("listener_manager.total_listeners_warming") == 0
    assert control.gauge("listener_manager.total_listeners_active") == (active or 0) + 1


async def test_a_route_change_keeps_the_other_listeners_serving_entries() -> None:
    client, _ = new_client(FakeSink())
    await _load(client)
    before = dict(client.store.view.listeners)
    await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
    after = client.store.view.listeners
    assert after["m"] is before["m"]  # nothing it is built from changed
    assert after["l"] is not before["l"]
    route = after["l"].snapshot["filter_chains"][0]["filter"]["http_connection_manager"]
    assert "s1" in str(route["route_config"])
    listeners = [listener("l", 0, rds="r"), listener("m", 0, routes=routes_json("i", "s0"))]
    await client._on_response(response(LISTENER, listeners, "l2"))
    assert client.store.view.listeners["m"] is not after["m"]
    assert client.store.view.listeners["l"] is after["l"]


async def test_static_cluster_names_follow_a_reloaded_bootstrap() -> None:
    client, _ = new_client(FakeSink())
    assert "extra" not in client.store._static_clusters()[0]
    extra = b.static_cluster("extra", [("127.0.0.1", 1)])
    client.store.set_static(load_bootstrap(xds_bootstrap(18000, node="n", clusters=[extra])))
    assert "extra" in client.store._static_clusters()[0]


async def test_jwks_and_spans_follow_only_a_change_of_what_they_read() -> None:
    async with real_server() as (server, client, _):
        await _load(client)
        restarts = _counting(server.jwks, "restart")
        configures = _counting(server.spans, "configure")
        await client._on_response(response(ROUTE_CONFIG, [route_config("r", "s1")], "r2"))
        assert server.state.config is not None
        assert (restarts, configures) == ([], [])
        listeners = [
            listener("l", 0, rds="r", stat_prefix="renamed"),
            listener("m", 0, routes=routes_json("inline", "s1")),
        ]
        await client._on_response(response(LISTENER, listeners, "l2"))
        assert (len(restarts), len(configures)) == (1, 1)
