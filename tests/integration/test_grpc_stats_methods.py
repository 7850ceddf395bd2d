"""`grpc_stats` differential: the same bootstrap on real Envoy and on meshcore, the same
grpcio calls of all four kinds (unary, server, client and bidi streaming, with messages split
across DATA frames, empty messages, a failing call, a path that is not `/<service>/<method>`
and a request that is not gRPC) through `stats_for_all_methods` (with and without
`replace_dots_in_grpc_service_name`), no per-method config, and an allowlist, with
`enable_upstream_stats` on two of them: the `cluster.<c>.grpc.*` counters Envoy has (it makes
them on first use, so all of them are non-zero) equal meshcore's non-zero ones, name for name
and value for value, and both have the same `upstream_rq_time` histograms."""

from __future__ import annotations

import contextlib
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.integration.test_grpc import h2_cluster
from tests.integration.test_grpc_stats import _filters
from tests.support.bootstrap import bootstrap, http_listener, route, route_config, virtual_host
from tests.support.grpc_echo import channel, method, start_server
from tests.support.ports import free_port
from tests.support.proxy import KINDS, Proxy, start_proxy

ALLOWLIST = {"services": [{"name": "test.Echo", "method_names": ["Unary"]}]}
# Listener (and cluster) name -> grpc_stats config.
CONFIGS: dict[str, dict[str, Any]] = {
    "all": {"stats_for_all_methods": True, "enable_upstream_stats": True},
    "plain": {},
    "dots": {"stats_for_all_methods": True, "replace_dots_in_grpc_service_name": True},
    "allow": {"individual_method_stats_allowlist": ALLOWLIST, "enable_upstream_stats": True},
}
BIG = 100_000  # Larger than a DATA frame (16 KiB): a message split across frames.
GRPC_STAT = re.compile(r"^cluster\.[a-z]+\.grpc\.")
# Six gRPC calls on each of the two listeners with `enable_upstream_stats`.
CALLS_WITH_UPSTREAM_STATS = 2 * 6


def _config(grpc_port: int) -> tuple[dict[str, Any], dict[str, int]]:
    ports = {name: free_port() for name in CONFIGS}
    listeners = []
    for name, config in CONFIGS.items():
        rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster=name)])])
        listeners.append(
            http_listener(name, ports[name], rc, stat_prefix=name, http_filters=_filters(**config))
        )
    config = bootstrap(listeners, [h2_cluster(name, grpc_port) for name in CONFIGS])
    # Histograms reach `/stats` on a flush.
    config["stats_flush_interval"] = "0.2s"
    return config, ports


def _calls(port: int) -> None:
    with channel(port) as chan:
        unary = chan.unary_unary(method("Unary"))
        assert unary(b"hi", timeout=10) == b"hi"
        assert unary(b"x" * BIG, timeout=10) == b"x" * BIG
        server_stream = chan.unary_stream(method("ServerStream"))
        assert len(list(server_stream(b"3", timeout=10))) == 3
        client_stream = chan.stream_unary(method("ClientStream"))
        requests = [b"a", b"", b"y" * BIG, b"bb", b""]
        assert client_stream(iter(requests), timeout=10) == str(BIG + 3).encode()
        bidi = chan.stream_stream(method("Bidi"))
        assert list(bidi(iter([b"x", b"z" * BIG]), timeout=10)) == [
            b"echo x",
            b"echo " + b"z" * BIG,
        ]
        with pytest.raises(grpc.RpcError) as failed:
            chan.unary_unary(method("Fail"))(b"x", timeout=10)
        assert failed.value.code() == grpc.StatusCode.NOT_FOUND
        # Not `/<service>/<method>`: not counted at all.
        with pytest.raises(grpc.RpcError):
            chan.unary_unary("/NoMethod")(b"x", timeout=10)
    # Not gRPC (HTTP/1.1, no gRPC content type): not counted.
    request = urllib.request.Request(f"http://127.0.0.1:{port}/test.Echo/Unary", data=b"x")
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=10).read()


def _grpc_counters(stats: dict[str, str]) -> dict[str, int]:
    return {
        name: int(value)
        for name, value in stats.items()
        if GRPC_STAT.match(name) and value.isdigit() and int(value) > 0
    }


def _histograms(stats: dict[str, str]) -> set[str]:
    return {name for name in stats if GRPC_STAT.match(name) and name.endswith(".upstream_rq_time")}


def _upstream_counts(proxy: Proxy) -> dict[str, int]:
    """`/stats/prometheus` histogram sample counts of the gRPC upstream times."""
    status, text = proxy.admin("GET", "/stats/prometheus")
    assert status == 200
    return {
        line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if "upstream_rq_time_count" in line and "grpc" in line
    }


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> Iterator[dict[str, tuple[dict[str, str], dict[str, int]]]]:
    server, grpc_port = start_server()
    out = {}
    try:
        config, ports = _config(grpc_port)
        for kind in KINDS:
            running = start_proxy(kind, config, tmp_path_factory)
            try:
                for port in ports.values():
                    _calls(port)
                # A flush may land between two calls: wait until every call's sample is in
                # (or 10 s), not only until each histogram has one.
                counts: dict[str, int] = {}
                for _ in range(100):
                    counts = _upstream_counts(running)
                    if sum(counts.values()) >= CALLS_WITH_UPSTREAM_STATS:
                        break
                    time.sleep(0.1)
                out[kind] = (running.stats(), counts)
            finally:
                running.stop()
        yield out
    finally:
        server.stop(0)


def test_the_same_counters_on_envoy_and_meshcore(observed):
    envoy = _grpc_counters(observed["envoy"][0])
    meshcore = _grpc_counters(observed["meshcore"][0])
    assert meshcore == envoy


def test_what_envoy_counts_for_each_config(observed):
    counters = _grpc_counters(observed["meshcore"][0])
    # Every method by name; no method-less bucket; "/NoMethod" and the HTTP/1.1 request nowhere.
    assert counters["cluster.all.grpc.test.Echo.Unary.total"] == 2
    assert counters["cluster.all.grpc.test.Echo.Unary.request_message_count"] == 2
    assert counters["cluster.all.grpc.test.Echo.Unary.response_message_count"] == 2
    assert counters["cluster.all.grpc.test.Echo.ClientStream.request_message_count"] == 5
    assert counters["cluster.all.grpc.test.Echo.ClientStream.response_message_count"] == 1
    assert counters["cluster.all.grpc.test.Echo.ServerStream.response_message_count"] == 3
    assert counters["cluster.all.grpc.test.Echo.Bidi.request_message_count"] == 2
    assert counters["cluster.all.grpc.test.Echo.Bidi.response_message_count"] == 2
    assert counters["cluster.all.grpc.test.Echo.Fail.5"] == 1
    assert "cluster.all.grpc.test.Echo.Fail.response_message_count" not in counters
    assert not [n for n in counters if n.startswith("cluster.all.grpc.") and n.count(".") == 3]
    assert not [n for n in counters if "NoMethod" in n]
    # Dots replaced in the made-up names only.
    assert counters["cluster.dots.grpc.test_Echo.Bidi.success"] == 1
    assert not [n for n in counters if n.startswith("cluster.dots.grpc.test.")]
    # Neither: all calls method-less (6 calls with a service and method).
    assert counters["cluster.plain.grpc.total"] == 6
    assert counters["cluster.plain.grpc.request_message_count"] == 2 + 1 + 5 + 2 + 1
    assert counters["cluster.plain.grpc.response_message_count"] == 2 + 3 + 1 + 2
    # The allowlist: Unary by name, the rest method-less.
    assert counters["cluster.allow.grpc.test.Echo.Unary.total"] == 2
    assert counters["cluster.allow.grpc.total"] == 4


def test_the_same_upstream_time_histograms(observed):
    envoy_stats, envoy_counts = observed["envoy"]
    meshcore_stats, meshcore_counts = observed["meshcore"]
    names = _histograms(envoy_stats)
    assert names == _histograms(meshcore_stats)
    assert "cluster.all.grpc.test.Echo.Bidi.upstream_rq_time" in names
    assert "cluster.allow.grpc.upstream_rq_time" in names
    assert not [n for n in names if n.startswith(("cluster.plain.", "cluster.dots."))]
    assert meshcore_counts == envoy_counts
    assert sum(envoy_counts.values()) == CALLS_WITH_UPSTREAM_STATS
