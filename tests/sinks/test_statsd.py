"""The statsd sink: counters as deltas, used gauges, datagram packing, and a real UDP
server receiving what a flush sends."""

from __future__ import annotations

import socket

from meshcore.sinks.statsd import StatsdLines, StatsdSink, datagrams
from meshcore.sinks.target import StatsdTarget


def lines(**stats: int) -> list[bytes]:
    return [f"{name.replace('__', '.')}\0{value}".encode() for name, value in stats.items()]


def test_counters_are_sent_as_deltas_once_used() -> None:
    out = StatsdLines("envoy")
    first = list(out.lines(lines(a__rq=3, a__idle=0), []))
    assert first == [b"envoy.a.rq:3|c"]
    second = list(out.lines(lines(a__rq=5, a__idle=0), []))
    assert second == [b"envoy.a.rq:2|c"]
    # Used once, a counter is sent every flush, with a zero delta when nothing happened.
    assert list(out.lines(lines(a__rq=5), [])) == [b"envoy.a.rq:0|c"]
    # A counter that went down was reset (its cluster came back): its value is the delta.
    assert list(out.lines(lines(a__rq=1), [])) == [b"envoy.a.rq:1|c"]


def test_gauges_are_sent_once_they_were_ever_set() -> None:
    out = StatsdLines("mesh")
    assert list(out.lines([], lines(g__active=0, g__open=2))) == [b"mesh.g.open:2|g"]
    assert list(out.lines([], lines(g__active=0, g__open=0))) == [b"mesh.g.open:0|g"]
    assert list(out.lines([], lines(g__active=4, g__open=0))) == [
        b"mesh.g.active:4|g",
        b"mesh.g.open:0|g",
    ]


def test_datagrams_pack_lines_up_to_the_limit() -> None:
    packed = list(datagrams([b"a" * 10, b"b" * 10, b"c" * 10, b"e", b"d" * 40], limit=32))
    # 10 + 1 + 10 + 1 + 10 = 32 bytes fit; the next line starts a new datagram; a line
    # longer than the limit goes alone.
    assert packed == [b"a" * 10 + b"\n" + b"b" * 10 + b"\n" + b"c" * 10, b"e", b"d" * 40]
    assert all(len(d) <= 32 or b"\n" not in d for d in packed)
    assert list(datagrams([])) == []


def test_a_flush_reaches_a_udp_server() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        sink = StatsdSink(StatsdTarget("127.0.0.1", server.getsockname()[1], "p"))
        many = {f"c{i}__upstream_rq_total": i + 1 for i in range(200)}
        sink.flush(lines(**many), lines(g=7))
        received: list[bytes] = []
        while len(received) < 201:
            received.extend(server.recv(65536).split(b"\n"))
        sink.close()
    assert received[0] == b"p.c0.upstream_rq_total:1|c"
    assert b"p.c199.upstream_rq_total:200|c" in received
    assert received[-1] == b"p.g:7|g"
    assert sink.sent_datagrams > 1  # 201 lines do not fit one datagram


def test_histogram_samples_are_sent_as_prefixed_timers() -> None:
    out = StatsdLines("envoy")
    samples = b"http.in.downstream_rq_time:3|ms\ncluster.a.upstream_rq_time:0|ms\n"
    assert list(out.lines([], lines(g=1), samples)) == [
        b"envoy.g:1|g",
        b"envoy.http.in.downstream_rq_time:3|ms",
        b"envoy.cluster.a.upstream_rq_time:0|ms",
    ]
