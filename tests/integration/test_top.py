"""`meshcore top --once` against a live meshcore: totals, rates over the interval, p99 and
health per connection manager and cluster, as the proxy counted them."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.dashboard_mesh import mesh_config, start_upstreams
from tests.support.ports import dead_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

pytestmark = pytest.mark.meshcore_only

CLUSTER_COLUMNS = (
    "REQ/S", "2XX/S", "4XX/S", "5XX/S", "P99", "ACTIVE", "CONNS", "HEALTHY", "EJECTED",
    "BREAKERS", "TOTAL",
)  # fmt: skip
HCM_COLUMNS = ("REQ/S", "2XX/S", "4XX/S", "5XX/S", "P99", "ACTIVE", "CONNS", "TOTAL")


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> Iterator[dict[str, Upstream]]:
    yield from start_upstreams(upstream_server)


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy("meshcore", mesh_config(upstreams), tmp_path_factory)
    yield running
    running.stop()


def send(port: int, path: str, behavior: str = "") -> int:
    headers = {"x-mc-behavior": behavior} if behavior else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def top(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshcore", "top", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def parse(output: str) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(connection managers, clusters): name -> column -> text, from a `--once` frame."""
    hcms: dict[str, dict[str, str]] = {}
    clusters: dict[str, dict[str, str]] = {}
    section: tuple[dict[str, dict[str, str]], tuple[str, ...]] | None = None
    for line in output.splitlines():
        if line.startswith("CONNECTION MANAGER"):
            section = (hcms, HCM_COLUMNS)
        elif line.startswith("CLUSTER"):
            section = (clusters, CLUSTER_COLUMNS)
        elif not line.strip():
            section = None
        elif section is not None:
            table, columns = section
            name, *values = line.split()
            assert len(values) == len(columns), line
            table[name] = dict(zip(columns, values, strict=True))
    return hcms, clusters


def wait_for_counter(proxy: Proxy, name: str, value: int) -> None:
    for _ in range(100):
        if proxy.counter(name) == value:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{name} never reached {value}")


def test_once_prints_totals_and_health(proxy):
    for _ in range(12):
        assert send(proxy.port, "/") == 200
    for _ in range(3):
        assert send(proxy.port, "/bad") == 503
    wait_for_counter(proxy, "cluster.flaky.outlier_detection.ejections_active", 1)
    wait_for_counter(proxy, "cluster.down.membership_healthy", 0)

    done = top("--admin", proxy.admin_address, "--once", "--interval", "0.5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"meshcore top  {proxy.admin_address}  LIVE  "), done.stdout
    hcms, clusters = parse(done.stdout)
    assert set(clusters) == {"svc", "flaky", "down"}
    assert hcms["ingress"]["TOTAL"] == "15"
    # No request during the interval: every rate is zero, and there is no p99 to show.
    assert {hcms["ingress"][c] for c in ("REQ/S", "2XX/S", "4XX/S", "5XX/S")} == {"0.0"}
    assert hcms["ingress"]["P99"] == "-"
    svc = clusters["svc"]
    health = (svc["TOTAL"], svc["HEALTHY"], svc["EJECTED"], svc["BREAKERS"])
    assert health == ("12", "1/1", "-", "-")
    assert (svc["REQ/S"], svc["5XX/S"], svc["ACTIVE"]) == ("0.0", "0.0", "0")
    assert clusters["flaky"]["TOTAL"] == "3"
    assert clusters["flaky"]["EJECTED"] == "1"
    assert clusters["down"]["HEALTHY"] == "0/1"
    assert clusters["down"]["TOTAL"] == "0"
    # Busiest (by rate, then total) first.
    assert [name for name in clusters] == ["svc", "flaky", "down"]


def test_once_rates_follow_the_traffic_during_the_interval(proxy):
    stop = threading.Event()
    sent: list[int] = []

    def traffic() -> None:
        while not stop.is_set():
            sent.append(send(proxy.port, "/"))
            sent.append(send(proxy.port, "/", "status=500"))

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        done = top("--admin", proxy.admin_address, "--once", "--interval", "1")
    finally:
        stop.set()
        worker.join(10)
    assert done.returncode == 0, done.stderr
    assert 200 in sent and 500 in sent
    hcms, clusters = parse(done.stdout)
    seconds = float(done.stdout.split("rates over ", 1)[1].split(" s", 1)[0])
    assert 1.0 <= seconds < 5
    svc, ingress = clusters["svc"], hcms["ingress"]
    for row in (svc, ingress):
        rps, ok, client, server = (float(row[c]) for c in ("REQ/S", "2XX/S", "4XX/S", "5XX/S"))
        assert ok > 0 and server > 0
        assert client == 0
        # Every request answered 200 or 500, so the classes add up to the total rate, but
        # for the one request (one client) in flight at each end of the interval: counted in
        # the total when it starts, in its class when it ends. Rates are shown to 0.1.
        assert abs(rps - ok - server) <= 2 / seconds + 0.15, row
        # Never more than was sent in all (the rates cover the 1 s interval only).
        assert rps <= len(sent) / 0.9
    assert ingress["P99"] != "-"
    assert float(ingress["P99"]) > 0
    assert float(clusters["flaky"]["REQ/S"]) == 0


def test_once_without_a_proxy_says_why_and_fails():
    port = dead_port()
    done = top("--admin", f"127.0.0.1:{port}", "--once", "--interval", "0.5")
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"meshcore top: cannot reach http://127.0.0.1:{port}/stats/summary" in done.stderr


def test_interval_below_the_summary_cache_is_refused():
    done = top("--once", "--interval", "0.1")
    assert done.returncode == 2
    assert "--interval: must be at least 0.5" in done.stderr
