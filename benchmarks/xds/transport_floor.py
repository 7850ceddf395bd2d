"""The gRPC transport floor of a push → ACK: the test ADS server (`tests/xds/ads_server.py`)
pushes a route config to a trivial client that ACKs at once (no checks, no apply), in a
process of its own as meshcore is; server send → ACK recorded, p50 / p99, per variant of the
client's stream, the variants alternating round by round.

`python -m benchmarks.xds.transport_floor [--rounds 200] [--variants a,b,c] [--envoy]`; a
variant `name:KEY=VALUE+KEY2=VALUE2` runs that client with those environment variables
(gRPC core's, e.g. `GRPC_EXPERIMENTS`, `GRPC_POLL_STRATEGY`).

Variants (the client: `python -m benchmarks.xds.transport_floor --client V --port P`):
- `sync`: grpcio's blocking bidi stream, requests from a queue-fed generator, a thread
  iterating the responses and queueing the ACK (meshcore's stream without trio);
- `sync-direct`: the ACK queued from the response deserializer, in grpcio's polling thread
  (the shortest way through grpcio's blocking API);
- `sync-trio`: the same, each response handed to trio (`TrioToken.run_sync_soon`, from the
  deserializer in grpcio's polling thread, as `ads_stream.py`), trio queues the ACK;
- `meshcore`: meshcore's stream (`meshcore.xds.ads_stream`, its channel options), trio ACKs
  at once: `sync-trio` as meshcore runs it;
- `aio`: grpc.aio in an asyncio loop of its own (no trio);
- `aio-trio`: grpc.aio in an asyncio loop in a dedicated thread, responses handed to trio
  with `run_sync_soon`, the ACK handed back with `loop.call_soon_threadsafe`;
- `sync-opts`: `sync` with channel arguments that might shorten the path (minimal stack,
  no retries, latency optimization target);
- `sync-trio:FLOOR_WORK_MS=0.3`: trio spends 0.3 ms of Python before the ACK (what the
  checks cost), `+FLOOR_PREWORK=1`: grpcio's polling thread spends it instead, right after
  handing the response to trio (does work there overlap trio's wake-up?);
- `envoy`: real Envoy 1.40 on an RDS listener (with `--envoy`), for the same server."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

ROUTE_CONFIG = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
BASE_OPTIONS: list[tuple[str, Any]] = [("grpc.keepalive_time_ms", 30_000)]
FAST_OPTIONS: list[tuple[str, Any]] = [
    *BASE_OPTIONS,
    ("grpc.minimal_stack", 1),
    ("grpc.enable_retries", 0),
    ("grpc.optimization_target", "latency"),
]


def _first(node: str) -> Any:
    return discovery_pb2.DiscoveryRequest(
        node={"id": node}, type_url=ROUTE_CONFIG, resource_names=["r"]
    )


def _ack(response: Any) -> Any:
    return discovery_pb2.DiscoveryRequest(
        type_url=ROUTE_CONFIG,
        resource_names=["r"],
        version_info=response.version_info,
        response_nonce=response.nonce,
    )


# ---- the clients (in their own process) ------------------------------------------------------


def _queued(source: queue.SimpleQueue[Any]) -> Iterator[Any]:
    while True:
        yield source.get()


def client_sync(port: int, node: str, options: list[tuple[str, Any]]) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
    requests.put(_first(node))
    for response in stub.StreamAggregatedResources(_queued(requests)):
        requests.put(_ack(response))


def client_sync_direct(port: int, node: str) -> None:
    """The ACK queued by grpcio's polling thread, from the response deserializer."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=BASE_OPTIONS)
    requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def deserialize(raw: bytes) -> Any:
        response = discovery_pb2.DiscoveryResponse.FromString(raw)
        requests.put(_ack(response))
        return response

    method = channel.stream_stream(
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
        request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
        response_deserializer=deserialize,
    )
    requests.put(_first(node))
    for _ in method(_queued(requests)):
        pass


def _busy(seconds: float) -> None:
    """Python work standing in for the checks (a CPU-bound loop of bytecode)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


WORK_S = float(os.environ.get("FLOOR_WORK_MS", "0")) / 1000
PREWORK = os.environ.get("FLOOR_PREWORK") == "1"


def client_sync_trio(port: int, node: str) -> None:
    """`FLOOR_WORK_MS`: trio works that long before the ACK; with `FLOOR_PREWORK=1` the
    polling thread does it right after handing the response to trio (while trio wakes)."""
    import trio

    async def main() -> None:
        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[Any](100)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=BASE_OPTIONS)

        def deserialize(raw: bytes) -> Any:
            response = discovery_pb2.DiscoveryResponse.FromString(raw)
            token.run_sync_soon(send.send_nowait, response)
            if PREWORK:
                _busy(WORK_S)
            return response

        method = channel.stream_stream(
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
            request_serializer=discovery_pb2.DiscoveryRequest.SerializeToString,
            response_deserializer=deserialize,
        )
        requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        requests.put(_first(node))
        call = method(_queued(requests))
        threading.Thread(target=lambda: [None for _ in call], daemon=True).start()
        async for response in receive:
            if not PREWORK:
                _busy(WORK_S)
            requests.put(_ack(response))

    trio.run(main)


def client_meshcore(port: int, node: str) -> None:
    """meshcore's own stream (`meshcore.xds.ads_stream`), the ACK sent at once by trio."""
    import trio
    from meshcore.xds.ads_stream import open_stream
    from meshcore.xds.channel import grpc_channel

    async def main() -> None:
        channel = grpc_channel(f"127.0.0.1:{port}")
        async with open_stream(channel, delta=False) as stream:
            stream.send(_first(node))
            while True:
                stream.send(_ack(await stream.receive()))

    trio.run(main)


def client_aio(port: int, node: str) -> None:
    async def main() -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=BASE_OPTIONS)
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        call = stub.StreamAggregatedResources()
        await call.write(_first(node))
        while True:
            response = await call.read()
            await call.write(_ack(response))

    asyncio.run(main())


def client_aio_trio(port: int, node: str) -> None:
    import trio

    async def main() -> None:
        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[Any](100)
        loop = asyncio.new_event_loop()
        outbox: asyncio.Queue[Any] = asyncio.Queue()

        async def stream() -> None:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=BASE_OPTIONS)
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            call = stub.StreamAggregatedResources()

            async def write() -> None:
                while True:
                    await call.write(await outbox.get())

            writer = asyncio.ensure_future(write())
            await call.write(_first(node))
            try:
                while True:
                    response = await call.read()
                    token.run_sync_soon(send.send_nowait, response)
            finally:
                writer.cancel()

        threading.Thread(target=loop.run_until_complete, args=(stream(),), daemon=True).start()
        async for response in receive:
            loop.call_soon_threadsafe(outbox.put_nowait, _ack(response))

    trio.run(main)


CLIENTS = {
    "sync": lambda port, node: client_sync(port, node, BASE_OPTIONS),
    "sync-opts": lambda port, node: client_sync(port, node, FAST_OPTIONS),
    "sync-direct": client_sync_direct,
    "sync-trio": client_sync_trio,
    "meshcore": client_meshcore,
    "aio": client_aio,
    "aio-trio": client_aio_trio,
}


# ---- the driver ------------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> dict[str, float]:
    from .common import percentile

    return {
        "p50": round(percentile(samples, 50), 3),
        "p99": round(percentile(samples, 99), 3),
        "samples": len(samples),
    }


def _push_and_time(server: Any, node: str, target: str) -> float:
    from tests.xds.builders import route_config

    mark = len(server.recorded)
    version = server.set_resources(ROUTE_CONFIG, [route_config("r", target)], node=node)
    found = server.wait_request(
        lambda r: (
            r.node == node
            and r.type_url == ROUTE_CONFIG
            and r.is_ack()
            and (r.request.version_info == version)
        ),
        timeout=10,
        after=mark,
    )
    return float((found.at - server.sent_at[found.nonce]) * 1000)


def drive(variants: list[str], rounds: int, envoy: bool) -> dict[str, Any]:
    from tests.xds.ads_server import AdsServer
    from tests.xds.builders import (
        ASSIGNMENT,
        CLUSTER,
        LISTENER,
        assignment,
        eds_cluster,
        listener,
        route_config,
    )

    server = AdsServer().start()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    proxy = None
    tmp = tempfile.TemporaryDirectory(prefix="meshcore-xds-floor-")
    try:
        nodes = list(variants)
        for node in nodes:
            server.set_resources(ROUTE_CONFIG, [route_config("r", "a")], node=node)
        if envoy:
            from tests.support.ports import free_port

            from .common import start

            nodes.append("envoy")
            server.set_resources(CLUSTER, [eds_cluster("a"), eds_cluster("b")], node="envoy")
            server.set_resources(
                ASSIGNMENT,
                [assignment(n, [("127.0.0.1", free_port())]) for n in ("a", "b")],
                node="envoy",
            )
            server.set_resources(
                LISTENER, [listener("ingress", free_port(), rds="r")], node="envoy"
            )
            server.set_resources(ROUTE_CONFIG, [route_config("r", "a")], node="envoy")
            proxy = start("envoy", server.port, Path(tmp.name), delta=False)
        for variant in variants:
            client, _, env = variant.partition(":")
            extra = dict(pair.split("=", 1) for pair in env.split("+") if pair)
            processes[variant] = subprocess.Popen(
                [sys.executable, "-m", __spec__.name, "--client", client]
                + ["--port", str(server.port), "--node", variant],
                env={**os.environ, **extra},
            )
        for node in nodes:  # each has the first version
            server.wait_request(
                lambda r, n=node: r.node == n and r.type_url == ROUTE_CONFIG and r.is_ack(),
                timeout=30,
            )
        samples: dict[str, list[float]] = {n: [] for n in nodes}
        for i in range(rounds):
            target = "b" if i % 2 == 0 else "a"
            for node in nodes:
                samples[node].append(_push_and_time(server, node, target))
                time.sleep(0.02)
        return {node: _percentiles(values) for node, values in samples.items()}
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
        if proxy is not None:
            proxy.stop()
        server.stop()
        tmp.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.xds.transport_floor")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--variants", default=",".join(CLIENTS))
    ap.add_argument("--envoy", action="store_true", help="also real Envoy, same server")
    ap.add_argument("--client", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--node", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        CLIENTS[args.client](args.port, args.node or args.client)
        return
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    print(json.dumps(drive(variants, args.rounds, args.envoy), indent=2))


if __name__ == "__main__":
    main()
