"""HTTP/2 at both edges over real sockets, on Envoy and meshcore with the same bootstrap:
h2c with prior knowledge (curl and the `h2` package) to an HTTP/1.1 upstream, many streams
on one connection, an HTTP/2 upstream (h2c, multiplexed) from HTTP/1.1 and HTTP/2 clients,
request and response trailers, `codec_type`, access-log `%PROTOCOL%`, and Envoy's stats."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.h2_client import H2Request, exchange
from tests.support.h2_upstream import H2Upstream
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import UpstreamServer

from .test_grpc import h2_cluster

LISTENERS = ("auto", "h1only", "h2only")
FILE_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog"


@pytest.fixture(scope="module")
def h2_upstream() -> Iterator[H2Upstream]:
    up = H2Upstream()
    yield up
    up.close()


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(
    request, upstream_server: UpstreamServer, h2_upstream: H2Upstream, tmp_path_factory
) -> Iterator[tuple[Proxy, dict[str, int], Path]]:
    h1 = upstream_server.start("h1")
    ports = {name: free_port() for name in LISTENERS}
    log = tmp_path_factory.mktemp("h2log") / f"{request.param}.log"
    rc = route_config(
        [
            virtual_host(
                "all",
                ["*"],
                [
                    route({"prefix": "/up2/"}, cluster="h2up"),
                    route({"prefix": "/"}, cluster="h1"),
                ],
            )
        ]
    )
    access_log = [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": f"type.googleapis.com/{FILE_LOG}",
                "path": str(log),
                "log_format": {
                    "text_format_source": {"inline_string": "%PROTOCOL% %RESPONSE_CODE%\n"}
                },
            },
        }
    ]
    listeners = [
        http_listener("auto", ports["auto"], rc, stat_prefix="auto", access_log=access_log),
        http_listener("h1only", ports["h1only"], rc, stat_prefix="h1only", codec_type="HTTP1"),
        http_listener(
            "h2only",
            ports["h2only"],
            rc,
            stat_prefix="h2only",
            codec_type="HTTP2",
            http2_protocol_options={"max_concurrent_streams": 100},
        ),
    ]
    clusters = [
        static_cluster("h1", [("127.0.0.1", h1.port)]),
        h2_cluster("h2up", h2_upstream.port, max_concurrent_streams=10),
    ]
    running = start_proxy(request.param, bootstrap(listeners, clusters), tmp_path_factory)
    yield running, ports, log
    running.stop()


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-s", "--max-time", "10", *args], capture_output=True, text=True, check=False
    )


def test_curl_prior_knowledge_to_an_http1_upstream(proxy):
    running, ports, _ = proxy
    out = curl(
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version} %{response_code}",
        f"http://127.0.0.1:{ports['auto']}/hello",
    )
    body, _, status = out.stdout.rpartition("\n")
    assert status == "2 200"
    assert body == "h1"
    plain = curl("-w", "\n%{http_version}", f"http://127.0.0.1:{ports['auto']}/plain")
    assert plain.stdout.endswith("h1\n1.1")


def test_many_streams_on_one_connection(proxy):
    running, ports, _ = proxy
    requests = [H2Request(f"/s/{i}") for i in range(95)]
    body = bytes(range(256)) * 300
    echo = [("x-mc-behavior", "echo")]
    requests += [H2Request("/post", method="POST", headers=echo, body=body) for _ in range(5)]
    responses, _ = exchange(ports["h2only"], requests)
    assert [(r.status, r.reset) for r in responses] == [(200, None)] * 100
    assert all(r.body == b"h1" for r in responses[:95])
    assert all(r.body == body for r in responses[95:])
    assert all("connection" not in r.headers for r in responses)
    stats = running.stats()
    assert int(stats["http.h2only.downstream_cx_http2_total"]) == 1
    assert int(stats["http.h2only.downstream_rq_http2_total"]) == 100
    assert int(stats.get("http.h2only.downstream_cx_http1_total", "0")) == 0


def test_max_concurrent_streams_refuses_the_stream_past_the_limit(proxy):
    _, ports, _ = proxy
    responses, _ = exchange(ports["h2only"], [H2Request(f"/c/{i}") for i in range(101)])
    assert [r.status for r in responses[:100]] == [200] * 100
    assert responses[100].reset == 7  # REFUSED_STREAM


def test_request_trailers_and_framing_reach_the_http1_upstream(proxy, upstream_server):
    _, ports, _ = proxy
    responses, _ = exchange(
        ports["auto"],
        [
            H2Request(
                "/t",
                method="POST",
                headers=[("te", "trailers"), ("x-mc-behavior", "echo")],
                body=b"abc",
                trailers=[("x-checksum", "42")],
            )
        ],
    )
    assert responses[0].status == 200
    assert responses[0].body == b"abc"


def test_http2_upstream_from_http1_clients_is_multiplexed(proxy, h2_upstream):
    running, ports, _ = proxy
    before = h2_upstream.connections
    url = f"http://127.0.0.1:{ports['auto']}/up2/"

    def get(i: int) -> httpx.Response:
        return httpx.post(f"{url}{i}", content=b"y" * i, timeout=10)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(get, range(40)))
    assert [a.status_code for a in answers] == [200] * 40
    assert [a.text for a in answers] == [f"h2 /up2/{i} {i}" for i in range(40)]
    assert h2_upstream.connections - before <= 4
    assert h2_upstream.max_open_streams <= 10
    stats = running.stats()
    assert int(stats["cluster.h2up.upstream_cx_http2_total"]) >= 1
    assert int(stats["cluster.h2up.upstream_rq_total"]) >= 40


def test_http2_to_http2_keeps_response_trailers(proxy):
    _, ports, _ = proxy
    responses, _ = exchange(ports["auto"], [H2Request("/up2/trail", headers=[("te", "trailers")])])
    assert responses[0].status == 200
    assert responses[0].body == b"h2 /up2/trail 0"
    assert responses[0].trailers == {"x-trailer": "done"}


def test_codec_types(proxy):
    _, ports, _ = proxy
    h1_only = curl(
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        f"http://127.0.0.1:{ports['h1only']}/x",
    )
    assert h1_only.stdout != "2"
    h2_only = curl("-w", "%{http_code}", f"http://127.0.0.1:{ports['h2only']}/x")
    assert h2_only.stdout in ("", "000")


def test_access_log_says_http2(proxy):
    _, ports, log = proxy
    exchange(ports["auto"], [H2Request("/logged")])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if log.exists() and "HTTP/2 200" in log.read_text():
            break
        time.sleep(0.05)
    assert "HTTP/2 200" in log.read_text()


@pytest.mark.meshcore_only
def test_drain_sends_goaway_and_finishes_the_stream_in_flight(
    upstream_server: UpstreamServer, tmp_path_factory
):
    """SIGTERM: an open HTTP/2 connection gets GOAWAY while its stream in flight still gets
    its response (Envoy exits at once on SIGTERM, so this is meshcore's drain only)."""
    import signal
    import socket

    import h2.config
    import h2.connection
    from hyperframe.frame import Frame, GoAwayFrame

    slow = upstream_server.start("slow", "delay-ms=600")
    port = free_port()
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="slow")])])
    config = bootstrap(
        [http_listener("d", port, rc)], [static_cluster("slow", [("127.0.0.1", slow.port)])]
    )
    running = start_proxy("meshcore", config, tmp_path_factory, extra_args=("--drain-time-s", "5"))
    try:
        # A stream in flight when the drain starts still gets its response.
        in_flight = subprocess.Popen(
            [
                "curl",
                "-s",
                "--http2-prior-knowledge",
                "-w",
                " %{http_code}",
                f"http://127.0.0.1:{port}/",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        time.sleep(0.3)
        running.send_signal(signal.SIGTERM)
        goaway: list[GoAwayFrame] = []
        buf = b""
        with sock:
            while not goaway:
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
                # Frames parsed by hand: the `h2` package refuses the PING that follows
                # a graceful GOAWAY.
                while len(buf) >= 9:
                    frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
                    if len(buf) < 9 + length:
                        break
                    frame.parse_body(memoryview(buf[9 : 9 + length]))
                    buf = buf[9 + length :]
                    if isinstance(frame, GoAwayFrame):
                        goaway.append(frame)
        assert goaway and goaway[0].error_code == 0
        out, _ = in_flight.communicate(timeout=10)
        assert out == "slow 200"
    finally:
        running.stop()
