"""10,000 clusters via CDS+EDS, one proxy at a time: the time from the CDS push until the
proxy ACKs the EDS update that warms them all (then checked once on the admin API:
`cluster_manager.active_clusters`, no warming ones), the memory it took per cluster, and
the time to apply one cluster's endpoint change (from the server sending it to the ACK)
while they are loaded. The
admin API is not polled while timing: with 10,000 clusters a /stats call is itself work
for the proxy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

from tests.support.upstream import UpstreamServer
from tests.xds.ads_server import AdsServer
from tests.xds.builders import ASSIGNMENT, CLUSTER, LISTENER, assignment, eds_cluster

from .common import percentile, rss_bytes, start


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


def run_one(kind: str, clusters: int, workdir: Path, delta: bool, changes: int) -> dict[str, Any]:
    server = AdsServer().start()
    upstreams = UpstreamServer()
    proxy = None
    try:
        host = ("127.0.0.1", upstreams.start("u").port)
        names = [f"service-{i:05d}" for i in range(clusters)]
        server.set_resources(LISTENER, [])
        server.set_resources(CLUSTER, [])
        proxy = start(kind, server.port, workdir, delta=delta)
        _wait_active(proxy, 1, 30)
        time.sleep(0.5)
        before = rss_bytes(proxy.pid)
        eds_version = server.set_resources(
            ASSIGNMENT, [assignment(n, [host]) for n in names], push=False
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
            moved = [assignment(n, [host]) for n in names]
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
        return {
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
    finally:
        if proxy is not None:
            proxy.stop()
        upstreams.close()
        server.stop()


async def run(
    kinds: list[str], clusters: int, workdir: Path, delta: bool, changes: int
) -> dict[str, Any]:
    return {
        kind: await trio.to_thread.run_sync(run_one, kind, clusters, workdir, delta, changes)
        for kind in kinds
    }
