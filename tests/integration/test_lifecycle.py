"""Process lifecycle: SIGHUP reload (good and bad file), SIGTERM drain, `validate`, and more
than one worker.

Reload and drain are meshcore's own behaviour: real Envoy eats SIGHUP ("See documentation for
how to hot restart") and exits at once on SIGTERM, cutting in-flight requests, so those tests
run against meshcore only. `validate` is compared with `envoy --mode validate`.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
    write_bootstrap,
)
from tests.support.client import RawConnection, build_request, get
from tests.support.envoy import envoy_binary
from tests.support.load import count_upstreams
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

GATES = itertools.count()


@pytest.fixture(scope="module")
def blue(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("blue")


@pytest.fixture(scope="module")
def green(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("green")


def single_route_config(port: int, target: Upstream, **hcm_extra) -> dict:
    rc = route_config([virtual_host("all", ["*"], [route({"prefix": "/"}, cluster="app")])])
    return bootstrap(
        [http_listener("main", port, rc, **hcm_extra)],
        [static_cluster("app", [("127.0.0.1", target.port)])],
    )


async def wait_for_log(proxy: Proxy, pattern: str) -> str:
    while True:
        text = proxy.log_path.read_text(errors="replace")
        if re.search(pattern, text):
            return text
        await trio.sleep(0.05)


async def refused(port: int) -> bool:
    """True when a connect to 127.0.0.1:`port` is refused (nobody listens any more).

    A connect that lands in the accept queue just before the listener closes is reset by the
    kernel: that connection was not served either, so it counts as refused.
    """
    with trio.socket.socket() as sock:
        try:
            await sock.connect(("127.0.0.1", port))
        except (ConnectionRefusedError, ConnectionResetError):
            return True
    return False


# ---- SIGHUP reload (meshcore) -------------------------------------------------------------


@pytest.mark.meshcore_only
async def test_sighup_reloads_a_good_file(blue, green, tmp_path_factory):
    port = free_port()
    proxy = start_proxy("meshcore", single_route_config(port, blue), tmp_path_factory)
    try:
        with trio.fail_after(15):
            assert (await get(port, "/")).upstream == "blue"
            async with await RawConnection.open(port) as kept:
                assert (await kept.request("GET", "/")).upstream == "blue"
                proxy.replace_config(single_route_config(port, green))
                proxy.send_signal(signal.SIGHUP)
                while (await get(port, "/")).upstream != "green":
                    await trio.sleep(0.05)
                # A connection opened before the reload is served by the new config too.
                assert (await kept.request("GET", "/")).upstream == "green"
            assert (await get(port, "/")).upstream == "green"
        assert proxy.admin("GET", "/ready") == (200, "LIVE\n")
        assert proxy.stop() == 0
    finally:
        proxy.stop()


@pytest.mark.meshcore_only
@pytest.mark.parametrize(
    ("bad_file", "reported"),
    [
        ("static_resources: [\n", r"(?i)yaml|parse|line 2"),
        (
            "static_resources:\n  clusters:\n  - name: app\n    conect_timeout: 1s\n",
            r"conect_timeout",
        ),
    ],
)
async def test_sighup_with_a_bad_file_keeps_the_running_config(
    blue, tmp_path_factory, bad_file, reported
):
    port = free_port()
    proxy = start_proxy("meshcore", single_route_config(port, blue), tmp_path_factory)
    try:
        with trio.fail_after(15):
            assert (await get(port, "/")).upstream == "blue"
            proxy.replace_config(bad_file)
            proxy.send_signal(signal.SIGHUP)
            await wait_for_log(proxy, reported)
            response = await get(port, "/")
        assert response.status == 200
        assert response.upstream == "blue"
        assert proxy.process.poll() is None
        assert proxy.admin("GET", "/ready") == (200, "LIVE\n")
        assert proxy.stop() == 0
    finally:
        proxy.stop()


# ---- SIGTERM drain (meshcore) -------------------------------------------------------------


@pytest.mark.meshcore_only
async def test_sigterm_finishes_in_flight_request_and_refuses_new_connections(
    blue, tmp_path_factory
):
    port = free_port()
    proxy = start_proxy("meshcore", single_route_config(port, blue), tmp_path_factory)
    gate = f"drain-{next(GATES)}"
    try:
        with trio.fail_after(20):
            async with await RawConnection.open(port) as conn:
                await conn.send(
                    build_request(
                        "GET", "/slow", headers=[("x-mc-behavior", f"gate={gate},size=100000")]
                    )
                )
                response = await conn.read_response(stop_after_chunk=True)
                assert response.status == 200
                proxy.send_signal(signal.SIGTERM)
                while not await refused(port):
                    await trio.sleep(0.05)
                assert proxy.process.poll() is None, "exited with a request in flight"
                blue.open_gate(gate)
                response = await conn.read_rest(response)
                assert response.body == b"x" * 100000
                # Its head went out before the drain: the proxy closes after the response.
                assert await conn.is_closed_by_peer()
            code = await trio.to_thread.run_sync(proxy.wait, 10)
        assert code == 0
    finally:
        proxy.stop()


@pytest.mark.meshcore_only
async def test_sigterm_exits_within_the_drain_time(blue, tmp_path_factory):
    port = free_port()
    proxy = start_proxy(
        "meshcore",
        single_route_config(port, blue),
        tmp_path_factory,
        extra_args=("--drain-time-s", "1"),
    )
    try:
        with trio.fail_after(20):
            async with await RawConnection.open(port) as conn:
                await conn.send(build_request("GET", "/never", headers=[("x-mc-behavior", "hang")]))
                await blue.until(lambda u: any(r.target == "/never" for r in u.requests))
                start = trio.current_time()
                proxy.send_signal(signal.SIGTERM)
                code = await trio.to_thread.run_sync(proxy.wait, 10)
                elapsed = trio.current_time() - start
        assert code == 0
        assert elapsed < 4, f"took {elapsed:.1f}s to exit with --drain-time-s 1"
    finally:
        proxy.stop()


@pytest.mark.meshcore_only
async def test_sigterm_when_idle_exits_promptly(blue, tmp_path_factory):
    proxy = start_proxy("meshcore", single_route_config(free_port(), blue), tmp_path_factory)
    try:
        proxy.send_signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(proxy.wait, 10) == 0
    finally:
        proxy.stop()


# ---- more than one worker -------------------------------------------------------------


@pytest.mark.parametrize("kind", proxy_kinds())
async def test_two_workers_serve_every_request(kind, blue, tmp_path_factory):
    port = free_port()
    proxy = start_proxy(kind, single_route_config(port, blue), tmp_path_factory, concurrency=2)
    try:
        with trio.fail_after(20):
            counts = await count_upstreams(port, 400, connections=8)
        assert counts == {"blue": 400}
        assert len(blue.requests) == 400
        assert proxy.counter("http.ingress.downstream_rq_total") == 400
        assert proxy.counter("http.ingress.downstream_cx_total") == 8
    finally:
        proxy.stop()


# ---- validate -----------------------------------------------------------------------------


def validate(kind: str, path: Path) -> subprocess.CompletedProcess[str]:
    if kind == "envoy":
        command = [
            envoy_binary(),
            "--mode",
            "validate",
            "-c",
            str(path),
            "--disable-hot-restart",
            "-l",
            "critical",
        ]
    else:
        command = [sys.executable, "-m", "meshcore", "validate", "-c", str(path)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


BAD_FILES = {
    "unknown-field": (
        "static_resources:\n  clusters:\n  - name: a\n    conect_timeout: 1s\n",
        r"^(?=.*conect_timeout)static_resources\.clusters\[0\]\S*: ",
    ),
    "port-out-of-range": (
        "static_resources:\n  listeners:\n  - name: l\n"
        "    address: {socket_address: {address: 127.0.0.1, port_value: 70000}}\n",
        r"^static_resources\.listeners\[0\]\.address\.socket_address\.port_value: ",
    ),
    "not-yaml": ("static_resources: [\n", r"\S"),
}


@pytest.mark.parametrize("kind", proxy_kinds())
def test_validate_accepts_a_good_file(kind, blue, tmp_path):
    path = write_bootstrap(tmp_path / "good.yaml", single_route_config(free_port(), blue))
    result = validate(kind, path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", proxy_kinds())
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_validate_rejects_a_bad_file(kind, case, tmp_path):
    text, stderr_line = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = validate(kind, path)
    assert result.returncode == 1
    if kind == "meshcore":
        assert re.search(stderr_line, result.stderr, re.M), result.stderr


@pytest.mark.meshcore_only
def test_validate_names_an_unsupported_field(tmp_path):
    """Valid for Envoy, not implemented by meshcore: an error naming the field's path."""
    config = bootstrap(
        [], [static_cluster("a", [("127.0.0.1", 1)]), static_cluster("b", [("127.0.0.1", 2)])]
    )
    config["static_resources"]["clusters"][1]["common_lb_config"] = {
        "ignore_new_hosts_until_first_hc": True
    }
    path = write_bootstrap(tmp_path / "unsupported.yaml", config)
    assert validate("envoy", path).returncode == 0
    result = validate("meshcore", path)
    assert result.returncode == 1
    assert re.search(
        r"^static_resources\.clusters\[1\]\.common_lb_config\.ignore_new_hosts_until_first_hc: ",
        result.stderr,
        re.M,
    ), result.stderr
