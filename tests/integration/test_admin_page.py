"""The admin page in headless Chromium (over the DevTools protocol): against a live meshcore
with traffic through it, the charts carry what was sent, the cluster table shows each
cluster's health, the page says when the proxy is unreachable, and no JavaScript error
occurs."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from tests.support.cdp import Browser, Page, chromium_binary
from tests.support.dashboard_mesh import mesh_config, start_upstreams
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

pytestmark = pytest.mark.meshcore_only

# The page polls every 0.5 s (the summary is cached for 0.5 s, so faster polls add nothing).
PAGE = "/?interval=500"
OK_REQUESTS = 30
FAILING_REQUESTS = 10
DELAY_MS = 30  # upstream delay of the 2xx requests: their latency is at least 25 ms


@pytest.fixture(scope="module")
def upstreams(upstream_server: UpstreamServer) -> Iterator[dict[str, Upstream]]:
    yield from start_upstreams(upstream_server)


def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.fail("headless Chromium is needed: apt-get install chromium (or MESHCORE_CHROMIUM)")
    return binary


def open_browser(tmp: Path) -> Browser:
    return Browser(chromium(), tmp / "profile", tmp / "chromium.log")


def send(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


def series(page: Page, chart: str) -> dict[str, dict]:
    """What the chart drew: per series, its values (None for a gap) and its count."""
    drawn = page.evaluate(
        f"[...document.querySelectorAll('#{chart} path[data-series]')]"
        ".map(p => [p.dataset.series, p.dataset.values, p.dataset.count ?? null])"
    )
    return {
        name: {
            "values": [float(v) if v else None for v in values.split(",")] if values else [],
            "count": None if count is None else int(count),
        }
        for name, values, count in drawn
    }


def cluster_rows(page: Page) -> dict[str, dict[str, str]]:
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#clusters tbody tr')].map(tr => "
        "[tr.dataset.cluster, Object.fromEntries([...tr.cells].map(td => "
        "[td.dataset.col, td.textContent]).concat([['problem', tr.className]]))]))"
    )


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory) -> Iterator[Proxy]:
    running = start_proxy("meshcore", mesh_config(upstreams), tmp_path_factory)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    running = open_browser(tmp_path_factory.mktemp("chromium"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def page_after_traffic(proxy: Proxy, browser: Browser) -> Page:
    """The page, opened before any traffic, once it has charted 30 2xx and 10 5xx."""
    page = browser.open(f"http://{proxy.admin_address}{PAGE}")
    page.wait_for("Number(document.body.dataset.polls) >= 2")
    for _ in range(FAILING_REQUESTS):
        assert send(proxy.port, "/bad") == 503
    for _ in range(OK_REQUESTS):
        assert send(proxy.port, "/", {"x-mc-behavior": f"delay-ms={DELAY_MS}"}) == 200
    count = "document.querySelector('#chart-classes path[data-series=\"{}\"]')?.dataset.count"
    ok, failing = count.format("2xx"), count.format("5xx")
    page.wait_for(f"{ok} === '{OK_REQUESTS}' && {failing} === '{FAILING_REQUESTS}'")
    return page


def test_page_and_its_files_come_from_the_installed_package(proxy):
    status, body = proxy.admin("GET", "/")
    assert status == 200
    assert '<script src="/static/dashboard.js" defer></script>' in body
    assert "<a href='/stats/summary'>/stats/summary</a>" in body
    static = resources.files("meshcore.admin").joinpath("static")
    for name in ("dashboard.js", "dashboard.css"):
        status, served = proxy.admin("GET", f"/static/{name}")
        assert status == 200
        assert served == static.joinpath(name).read_text()
    assert proxy.admin("GET", "/static/nope.js")[0] == 404


def test_charts_show_the_requests_sent(page_after_traffic, browser):
    classes = series(page_after_traffic, "chart-classes")
    assert classes["2xx"]["count"] == OK_REQUESTS
    assert classes["5xx"]["count"] == FAILING_REQUESTS
    for quiet in ("1xx", "3xx", "4xx"):
        assert classes[quiet]["count"] == 0
        assert set(classes[quiet]["values"]) == {0.0}
    assert max(v for v in classes["2xx"]["values"] if v is not None) > 0
    assert max(v for v in classes["5xx"]["values"] if v is not None) > 0

    total = series(page_after_traffic, "chart-rps")["total"]
    assert total["count"] == OK_REQUESTS + FAILING_REQUESTS
    assert max(total["values"]) > 0

    latency = series(page_after_traffic, "chart-latency")
    p50, p99 = ([v for v in latency[q]["values"] if v is not None] for q in ("p50", "p99"))
    # Every 2xx took at least DELAY_MS (bucket 25–50 ms unless the machine is busy), sent
    # after the fast 503s: some poll saw only them. Milliseconds, not µs or seconds.
    assert p50 and p99, latency
    assert 25 <= max(p50) <= max(p99) < 1000, latency
    assert browser.errors() == []


def test_cluster_table_shows_health(page_after_traffic, browser):
    page = page_after_traffic
    page.wait_for(
        'document.querySelector(\'tr[data-cluster="flaky"] td[data-col="ejected"]\')'
        "?.textContent === '1' && document.querySelector('tr[data-cluster=\"down\"] "
        "td[data-col=\"health\"]')?.textContent === '0 / 1'"
    )
    rows = cluster_rows(page)
    assert set(rows) == {"svc", "flaky", "down"}
    assert rows["svc"]["health"] == "1 / 1"
    assert rows["svc"]["ejected"] == "–"  # no outlier detection
    assert rows["svc"]["problem"] == ""
    assert rows["flaky"]["ejected"] == "1"
    assert rows["flaky"]["problem"] == "problem"
    assert rows["down"]["health"] == "0 / 1"
    assert rows["down"]["problem"] == "problem"
    assert page.evaluate("document.querySelector('dd[data-field=\"clusters\"]').textContent") == "3"
    # The config leaves `stats_flush_interval` at Envoy's default; the page reads it.
    title = page.evaluate("document.getElementById('clusters-p99').title")
    assert title == "p99 of upstream_rq_time over the last 5 s stats flush interval"
    assert browser.errors() == []


def test_page_says_when_the_proxy_is_unreachable(upstreams, tmp_path_factory):
    proxy = start_proxy("meshcore", mesh_config(upstreams), tmp_path_factory)
    browser = open_browser(tmp_path_factory.mktemp("chromium"))
    try:
        page = browser.open(f"http://{proxy.admin_address}{PAGE}")
        page.wait_for("document.body.dataset.state === 'live'")
        proxy.stop()
        page.wait_for("document.body.dataset.state === 'offline'")
        status = page.evaluate("document.getElementById('status').textContent")
        assert status.startswith("unreachable: "), status
        assert "last data at" in status and "retrying every 0.5 s" in status
        assert int(page.evaluate("document.body.dataset.failures")) >= 1
        # The charts and the table stay, dimmed, with the last data.
        assert page.evaluate("document.querySelectorAll('#clusters tbody tr').length") == 3
        assert browser.errors() == []
    finally:
        browser.close()
        proxy.stop()
