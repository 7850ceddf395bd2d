"""The remote JWKS fetcher: sources read from the snapshot, one fetch per attempt from the
cluster's healthy hosts pushed into the engine, failures counted and retried."""

from __future__ import annotations

from typing import Any

import trio
from meshcore.auth.jwks import JwksFetcher, RemoteJwks, remote_sources
from meshcore.lifecycle.control_stats import ControlStats

from tests.runtime.fakes import FakeEngine


def _snapshot(port: int, path: str = "/keys") -> dict[str, Any]:
    remote = {
        "key": f"idp|http://idp{path}",
        "uri": f"http://idp{path}",
        "cluster": "idp",
        "timeout_ms": 1000,
        "cache_duration_ms": 60_000,
        "failed_refetch_ms": 50,
    }
    jwt = {
        "providers": [
            {"name": "p", "jwks": {"remote": remote}},
            {"name": "q", "jwks": {"local": "{}"}},
        ]
    }
    manager = {"stat_prefix": "in", "http_filters": [{"name": "j", "config": {"jwt_authn": jwt}}]}
    return {"listeners": [{"filter_chains": [{"filter": {"http_connection_manager": manager}}]}]}


def test_sources_from_the_snapshot() -> None:
    (source,) = remote_sources(_snapshot(1))
    assert source == RemoteJwks(
        key="idp|http://idp/keys",
        uri="http://idp/keys",
        cluster="idp",
        timeout_s=1.0,
        cache_duration_s=60.0,
        failed_refetch_s=0.05,
        num_retries=0,
        retry_base_s=0.0,
        retry_max_s=0.0,
        stat_prefixes=("in",),
    )


async def _listener() -> tuple[trio.SocketListener, int]:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    return listener, listener.socket.getsockname()[1]


async def test_fetch_pushes_into_the_engine_and_counts(nursery: trio.Nursery) -> None:
    seen: list[bytes] = []
    listener, port = await _listener()
    nursery.start_soon(trio.serve_listeners, _handler(200, b'{"keys": []}', seen), [listener])
    engine = FakeEngine()
    control = ControlStats()
    hosts = {"idp": [{"address": "127.0.0.1", "port": port}]}
    fetcher = JwksFetcher(engine, control, lambda c: hosts.get(c, []))
    (source,) = remote_sources(_snapshot(port))
    assert await fetcher.attempt(source)
    assert engine.jwks == {"idp|http://idp/keys": b'{"keys": []}'}
    assert seen[0].startswith(b"GET /keys HTTP/1.1\r\n")
    assert b"host: idp\r\n" in seen[0]
    assert control.get("http.in.jwt_authn.jwks_fetch_success") == 1
    # No healthy host: a counted failure, nothing pushed.
    hosts["idp"] = [{"address": "127.0.0.1", "port": port, "healthy": False}]
    assert not await fetcher.attempt(source)
    assert control.get("http.in.jwt_authn.jwks_fetch_failed") == 1


async def test_non_200_is_a_failure_and_retried(nursery: trio.Nursery) -> None:
    seen: list[bytes] = []
    listener, port = await _listener()
    nursery.start_soon(trio.serve_listeners, _handler(503, b"down", seen), [listener])
    engine = FakeEngine()
    control = ControlStats()
    fetcher = JwksFetcher(engine, control, lambda c: [{"address": "127.0.0.1", "port": port}])
    scope = await nursery.start(fetcher.run, remote_sources(_snapshot(port)))
    with trio.fail_after(5):
        while control.get("http.in.jwt_authn.jwks_fetch_failed") < 3:
            await trio.sleep(0.01)
    scope.cancel()
    assert engine.jwks == {}
    assert control.get("http.in.jwt_authn.jwks_fetch_success") == 0


async def test_a_new_config_naming_the_same_source_does_not_refetch(
    nursery: trio.Nursery,
) -> None:
    seen: list[bytes] = []
    listener, port = await _listener()
    nursery.start_soon(trio.serve_listeners, _handler(200, b'{"keys": []}', seen), [listener])
    control = ControlStats()
    fetcher = JwksFetcher(FakeEngine(), control, lambda c: [{"address": "127.0.0.1", "port": port}])

    async def fetched(n: int) -> None:
        with trio.fail_after(5):
            while control.get("http.in.jwt_authn.jwks_fetch_success") < n:
                await trio.sleep(0.01)

    await fetcher.restart(nursery, _snapshot(port))
    await fetched(1)
    # A route change elsewhere in the config: the same source keeps its schedule.
    await fetcher.restart(nursery, _snapshot(port))
    # A config naming another key set: that one is fetched, the old one stops.
    await fetcher.restart(nursery, _snapshot(port, "/other"))
    await fetched(2)
    assert [request.split(b" ")[1] for request in seen] == [b"/keys", b"/other"]
    await fetcher.restart(nursery, {"listeners": []})
    assert fetcher._running == {}


def _handler(status: int, body: bytes, seen: list[bytes]) -> Any:
    async def handle(stream: trio.SocketStream) -> None:
        seen.append(await stream.receive_some(4096))
        head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        await stream.send_all(head + body)
        await stream.aclose()

    return handle
