"""10,000 clusters via CDS+EDS, one proxy at a time: the time from the CDS push until the
proxy ACKs the EDS update that warms them all (then checked once on the admin API:
`cluster_manager.active_clusters`, no warming ones), the memory it took per cluster, and
the time to apply one cluster's endpoint change (from the server sending it to the ACK)
while they are loaded, and then route changes while they are loaded (a listener with RDS
whose route config flips between two of the clusters, each with its own upstream: push →
ACK, server send → ACK, push → routed, as in `push_latency`), and one cluster's settings
changes while they are loaded (server send → ACK of the CDS update). The
admin API is not polled while timing: with 10,000 clusters a /stats call is itself work
for the proxy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from tests.support.ports import free_port
from tests.support.upstream import UpstreamServer
from tests.xds.ads_server import AdsServer
from tests.xds.builders import (
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

from .common import ack_times, percentile, rss_bytes, start, summary
from .push_latency import routed_at


def _active(proxy: Any) -> int:
    try:
        status, body = proxy.admin(
            "GET", "/stats?filter=cluster_manager\\.(active|warming)_clusters", timeout=30
        )
    except OSError:  # a busy control loop answers late
        return 0
    values = dict(line.split(": ") for line in body.splitlines() if ": " in line)
    if int(values.get("cluster_manager.warming_clusters", "1")):
        return 0
    return int(values.get("cluster_manager.active_clusters", "0"))


def _wait_active(proxy: Any, wanted: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _active(proxy) >= wanted:
            return time.monotonic()
        time.sleep(0.5)
    raise TimeoutError(f"{proxy.kind}: {wanted} clusters not active after {timeout}s")


def _acked_names(server: AdsServer, request: Any) -> set[str]:
    """The EDS names the stream of `request` subscribed to (SotW: all in each request)."""
    if not request.delta:
        return set(request.request.resource_names)
    names: set[str] = set()
    for r in server.requests(ASSIGNMENT):
        if r.stream == request.stream:
            names |= set(r.request.resource_names_subscribe)
    return names


def _route_changes(server: AdsServer, names: list[str], rounds: int) -> dict[str, Any]:
    """A listener routing by RDS to names[0] (upstream "u"), then `rounds` route changes
    between names[1] (upstream "v") and names[0], each timed as in `push_latency`."""
    port = free_port()
    server.set_resources(ROUTE_CONFIG, [route_config("r", names[0])])
    server.set_resources(LISTENER, [listener("ingress", port, rds="r")])
    deadline = time.monotonic() + 60
    while True:  # until the listener is bound and routes
        try:
            trio.from_thread.run(routed_at, port, "u", 60.0)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    acks: list[float] = []
    turnarounds: list[float] = []
    routed: list[float] = []
    for i in range(rounds):
        target, upstream = (names[1], "v") if i % 2 == 0 else (names[0], "u")
        mark = len(server.recorded)
        pushed = time.monotonic()
        version = server.set_resources(ROUTE_CONFIG, [route_config("r", target)])
        done = trio.from_thread.run(routed_at, port, upstream, 60.0)
        ack, sent = ack_times(server, None, ROUTE_CONFIG, version, mark)
        acks.append((ack - pushed) * 1000)
        turnarounds.append((ack - sent) * 1000)
        routed.append((done - pushed) * 1000)
        time.sleep(0.02)
    return {
        "ack_ms": summary(acks),
        "sent_to_ack_ms": summary(turnarounds),
        "routed_ms": summary(routed),
        "rounds": rounds,
    }


def _cluster_changes(
    server: AdsServer, cluster_list: list[Any], host: tuple[str, int], rounds: int
) -> dict[str, Any]:
    """One cluster's settings change among all loaded: the middle one made STATIC (its host
    inline, so that neither proxy waits for EDS to warm it; not timed), then its
    `connect_timeout` flipped between 1.5 s and 1 s per push; server send → ACK."""
    clusters = list(cluster_list)
    at = len(clusters) // 2

    def push(timeout_ms: int) -> float:
        mark = len(server.recorded)
        cluster = static_cluster(clusters[at].name, [host])
        cluster.connect_timeout.FromMilliseconds(timeout_ms)
        clusters[at] = cluster
        version = server.set_resources(CLUSTER, clusters)
        ack, sent = ack_times(server, None, CLUSTER, version, mark, timeout=120)
        return (ack - sent) * 1000

    push(1000)
    times = [push(1500 if i % 2 == 0 else 1000) for i in range(rounds)]
    return {
        "sent_to_ack_ms": summary(times),
        "rounds": rounds,
    }


def run_one(
    kind: str,
    clusters: int,
    workdir: Path,
    delta: bool,
    changes: int,
    route_changes: int = 0,
    cluster_changes: int = 0,
) -> dict[str, Any]:
    server = AdsServer().start()
    upstreams = UpstreamServer()
    proxy = None
    try:
        host = ("127.0.0.1", upstreams.start("u").port)
        other = ("127.0.0.1", upstreams.start("v").port)  # names[1]'s, for the route changes
        names = [f"service-{i:05d}" for i in range(clusters)]

        def hosts(n: str) -> list[tuple[str, int]]:
            return [other] if n == names[1] else [host]

        server.set_resources(LISTENER, [])
        server.set_resources(CLUSTER, [])
        proxy = start(kind, server.port, workdir, delta=delta)
        _wait_active(proxy, 1, 30)
        time.sleep(0.5)
        before = rss_bytes(proxy.pid)
        eds_version = server.set_resources(
            ASSIGNMENT, [assignment(n, hosts(n)) for n in names], push=False
        )
        cluster_list = [eds_cluster(n) for n in names]
        mark = len(server.recorded)
        pushed = time.monotonic()
        server.set_resources(CLUSTER, cluster_list)
        ack = server.wait_request(
            lambda r: (
                r.type_url == ASSIGNMENT
                and r.is_ack()
                and (r.delta or r.request.version_info == eds_version)
                and (len(_acked_names(server, r)) >= clusters)
            ),
            timeout=600,
            after=mark,
        )
        done = ack.at
        time.sleep(1.0)
        after = rss_bytes(proxy.pid)  # before any admin call: /stats itself takes memory
        _wait_active(proxy, clusters + 1, 600)
        change_ms = []
        for i in range(changes):
            name = names[(i * 7919) % clusters]
            mark = len(server.recorded)
            moved = [assignment(n, hosts(n)) for n in names]
            moved[(i * 7919) % clusters] = assignment(name, [(host[0], host[1]), ("127.0.0.1", 1)])
            started = time.monotonic()
            version = server.set_resources(ASSIGNMENT, moved)
            ack = server.wait_request(
                lambda r, v=version: (
                    r.type_url == ASSIGNMENT
                    and r.is_ack()
                    and (r.delta or r.request.version_info == v)
                ),
                timeout=120,
                after=mark,
            )
            sent = server.sent_at.get(ack.nonce, started)
            change_ms.append((ack.at - sent) * 1000)
        out: dict[str, Any] = {
            "clusters": clusters,
            "apply_s": done - pushed,
            "rss_before_mib": before / 2**20,
            "rss_after_mib": after / 2**20,
            "bytes_per_cluster": (after - before) / clusters,
            "endpoint_change_ms": {
                "p50": percentile(change_ms, 50),
                "max": max(change_ms),
                "samples": len(change_ms),
            },
        }
        if route_changes:
            out["route_change"] = _route_changes(server, names, route_changes)
        if cluster_changes:
            out["cluster_change"] = _cluster_changes(server, cluster_list, host, cluster_changes)
        return out
    finally:
        if proxy is not None:
            proxy.stop()
        upstreams.close()
        server.stop()


async def run(
    kinds: list[str],
    clusters: int,
    workdir: Path,
    delta: bool,
    changes: int,
    route_changes: int = 0,
    cluster_changes: int = 0,
) -> dict[str, Any]:
    return {
        kind: await trio.to_thread.run_sync(
            run_one, kind, clusters, workdir, delta, changes, route_changes, cluster_changes
        )
        for kind in kinds
    }
