"""The scenarios of the end-to-end suite: what wrk (or the idle-connection client) does."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.backend import DOWNLOAD_PATH


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    measures: str
    kind: str = "wrk"  # "wrk" or "idle"
    connections: int = 50
    path: str = "/"
    lua: str | None = None
    headers: tuple[str, ...] = ()
    per_mib: bool = False  # also report proxy CPU per MiB transferred


ALL: tuple[Scenario, ...] = (
    Scenario(
        "get_c1",
        "small GET, keep-alive, 1 connection",
        "latency of one request at a time through the proxy (no queueing)",
        connections=1,
    ),
    Scenario(
        "get_c50",
        "small GET, keep-alive, 50 connections",
        "throughput, CPU per request and tail latency at moderate concurrency",
    ),
    Scenario(
        "get_c200",
        "small GET, keep-alive, 200 connections",
        "tail latency and fairness under heavier concurrency",
        connections=200,
    ),
    Scenario(
        "post_64k",
        "POST with a 64 KiB body, keep-alive, 50 connections",
        "request-body streaming cost",
        lua="post64k.lua",
    ),
    Scenario(
        "download_1m",
        "1 MiB response, keep-alive, 10 connections",
        "response-body streaming cost: proxy CPU per MiB",
        connections=10,
        path=DOWNLOAD_PATH,
        per_mib=True,
    ),
    Scenario(
        "conn_close",
        "small GET, a new connection per request, 50 connections",
        "accept + parse + close cost; upstream connections must still be reused",
        headers=("Connection: close",),
    ),
    Scenario(
        "idle_5k",
        "5,000 idle keep-alive connections",
        "RSS of a fresh proxy idle, and per idle keep-alive connection (after one request)",
        kind="idle",
        connections=5000,
    ),
)

BY_NAME = {s.name: s for s in ALL}
