"""The statsd sink on real Envoy and meshcore with the same bootstrap: a UDP server in the
test receives each proxy's flushes; the counter deltas for the requests sent add up to the
same totals under the same (untagged, `envoy.`-prefixed) names, and gauges arrive as
values."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    socket_address,
    static_cluster,
    virtual_host,
)
from tests.support.load import count_upstreams
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

STATSD = "type.googleapis.com/envoy.config.metrics.v3.StatsdSink"


class StatsdServer:
    """Collects statsd lines sent to it over UDP (in a thread)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.lines.extend(data.decode().split("\n"))

    def counters(self) -> Counter[str]:
        """The sum of every `|c` delta received, by name."""
        total: Counter[str] = Counter()
        with self._lock:
            for line in self.lines:
                name, _, rest = line.partition(":")
                value, _, kind = rest.partition("|")
                if kind == "c":
                    total[name] += int(value)
        return total

    def gauges(self) -> dict[str, int]:
        """The last value of every `|g` line received, by name."""
        out: dict[str, int] = {}
        with self._lock:
            for line in self.lines:
                name, _, rest = line.partition(":")
                value, _, kind = rest.partition("|")
                if kind == "g":
                    out[name] = int(value)
        return out

    def close(self) -> None:
        self._closed = True
        self._sock.close()


@pytest.fixture
def statsd() -> Iterator[StatsdServer]:
    server = StatsdServer()
    yield server
    server.close()


@pytest.fixture
def upstream(upstream_server: UpstreamServer) -> Iterator[Upstream]:
    up = upstream_server.start("app")
    yield up
    upstream_server.stop_upstream(up)


@pytest.fixture(params=proxy_kinds())
def proxy(request, statsd, upstream, tmp_path_factory) -> Iterator[Proxy]:
    routes = [route({"prefix": "/"}, cluster="app")]
    config = bootstrap(
        [http_listener("main", free_port(), route_config([virtual_host("all", ["*"], routes)]))],
        [static_cluster("app", [("127.0.0.1", upstream.port)])],
    )
    config["stats_flush_interval"] = "0.2s"
    config["stats_sinks"] = [
        {
            "name": "envoy.stat_sinks.statsd",
            "typed_config": {"@type": STATSD, "address": socket_address("127.0.0.1", statsd.port)},
        }
    ]
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "statsd lines did not arrive"
        time.sleep(0.05)


async def test_counter_deltas_add_up_to_the_requests_sent(proxy, statsd):
    with trio.fail_after(20):
        assert await count_upstreams(proxy.port, 30, connections=3) == {"app": 30}
    rq_total = "envoy.cluster.app.upstream_rq_total"
    wait_for(lambda: statsd.counters()[rq_total] >= 30)
    time.sleep(0.5)  # a few more flushes: zero deltas must not change the totals
    counters = statsd.counters()
    assert counters[rq_total] == 30
    assert counters["envoy.cluster.app.upstream_rq_200"] == 30
    assert counters["envoy.cluster.app.upstream_rq_2xx"] == 30
    assert counters["envoy.http.ingress.downstream_rq_2xx"] == 30
    # Gauges arrive as values: the cluster's hosts, and the keep-alive connections (closed
    # by now: their last value is 0).
    wait_for(lambda: statsd.gauges().get("envoy.cluster.app.membership_total") == 1)
    # Unused counters are not sent (Envoy's `used` flag).
    assert "envoy.cluster.app.upstream_rq_timeout" not in counters


def timers(statsd: StatsdServer) -> dict[str, list[int]]:
    """Every `|ms` sample received, by name."""
    out: dict[str, list[int]] = {}
    with statsd._lock:
        for line in statsd.lines:
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            if kind == "ms":
                out.setdefault(name, []).append(int(value))
    return out


async def test_histogram_samples_arrive_as_one_timer_per_request(proxy, statsd):
    with trio.fail_after(20):
        assert await count_upstreams(proxy.port, 12, connections=3) == {"app": 12}
    downstream = "envoy.http.ingress.downstream_rq_time"
    upstream = "envoy.cluster.app.upstream_rq_time"
    wait_for(lambda: len(timers(statsd).get(upstream, [])) >= 12)
    wait_for(lambda: len(timers(statsd).get(downstream, [])) >= 12)
    time.sleep(0.5)  # a few more flushes: a sample is sent once
    got = timers(statsd)
    assert len(got[downstream]) == 12
    assert len(got[upstream]) == 12
    # Whole milliseconds; a local request takes well under a minute.
    assert all(0 <= v < 60_000 for v in got[downstream] + got[upstream])
    assert "envoy.statsd.histogram_samples_dropped" not in statsd.counters()
