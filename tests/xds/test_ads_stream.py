"""The grpcio stream bridged to trio (`meshcore.xds.ads_stream`): responses reach trio in
order however slowly trio takes them (the reading thread waits for room, grpcio keeps the
rest), and leaving the stream while responses wait unread ends the call."""

from __future__ import annotations

import grpc
import trio
from envoy.service.discovery.v3 import discovery_pb2
from meshcore.xds.ads_stream import MAX_UNREAD, StreamClosed, open_stream

from .ads_server import AdsServer
from .builders import ROUTE_CONFIG
from .harness import until


def _hello() -> discovery_pb2.DiscoveryRequest:
    request = discovery_pb2.DiscoveryRequest(type_url=ROUTE_CONFIG, resource_names=["r"])
    request.node.id = "n"
    return request


async def _opened(server: AdsServer) -> None:
    await until(lambda: len(server.streams) == 1)


def _push(server: AdsServer, count: int) -> None:
    for i in range(count):
        server.push_raw(discovery_pb2.DiscoveryResponse(type_url=ROUTE_CONFIG, version_info=f"{i}"))


async def test_responses_reach_trio_in_order_when_trio_is_slow(ads_server: AdsServer) -> None:
    count = 3 * MAX_UNREAD
    with grpc.insecure_channel(f"127.0.0.1:{ads_server.port}") as channel:
        async with open_stream(channel, delta=False) as stream:
            stream.send(_hello())
            await _opened(ads_server)
            _push(ads_server, count)
            versions = []
            with trio.fail_after(10):
                for _ in range(count):
                    await trio.sleep(0.01)  # slower than the server
                    versions.append((await stream.receive()).version_info)
            assert versions == [f"{i}" for i in range(count)]


async def test_leaving_with_responses_unread_ends_the_call(ads_server: AdsServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ads_server.port}") as channel:
        async with open_stream(channel, delta=False) as stream:
            stream.send(_hello())
            await _opened(ads_server)
            _push(ads_server, 2 * MAX_UNREAD)
            await trio.sleep(0.2)  # the reading thread now waits for room
        await until(lambda: not ads_server.streams)  # the server saw the call end


async def test_a_closed_stream_reports_why(ads_server: AdsServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ads_server.port}") as channel:
        async with open_stream(channel, delta=False) as stream:
            stream.send(_hello())
            await _opened(ads_server)
            _push(ads_server, 1)
            assert (await stream.receive()).version_info == "0"
            ads_server.close_streams()
            with trio.fail_after(10):
                try:
                    await stream.receive()
                except StreamClosed as closed:
                    assert str(closed)
                else:
                    raise AssertionError("the stream did not end")
