"""The run loop with a fake engine: startup, SIGHUP reloads, SIGUSR1 log reopening, drain on
SIGTERM/SIGINT and /quitquitquit, DNS clusters across reloads."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import httpx
import orjson
import pytest
import trio
from meshcore import app
from meshcore.app import ReadyInfo, Server, snapshot_with_endpoints
from meshcore.lifecycle.drain import drain_connections
from meshcore.lifecycle.drain_time import DEFAULT_DRAIN_TIME_S, drain_time_s
from meshcore.lifecycle.state import Phase, ServerOptions

from tests.runtime.fakes import (
    FakeAdmin,
    FakeConfig,
    FakeConfigError,
    FakeDnsCluster,
    FakeDnsHost,
    FakeEngine,
    FakeProblem,
    cluster,
    listener,
)

OPTIONS = ServerOptions(config_path="mesh.yaml", concurrency=2)


def config(
    *listener_names: str, admin: bool = True, dns: tuple[FakeDnsCluster, ...] = ()
) -> FakeConfig:
    snapshot = {
        "listeners": [listener(n) for n in listener_names],
        "clusters": [cluster("static_svc", [{"address": "127.0.0.1", "port": 1}])]
        + [cluster(c.name) for c in dns],
    }
    return FakeConfig(
        snapshot=snapshot, admin=FakeAdmin("127.0.0.1", 0) if admin else None, dns_clusters=dns
    )


class Loader:
    """Returns (or raises) the queued results in order, one per load."""

    def __init__(self, *results: FakeConfig | Exception) -> None:
        self.results = list(results)

    def __call__(self) -> FakeConfig:
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


class Harness:
    """Runs `Server.serve` in a nursery and reports ready/reload events through channels."""

    def __init__(self, engine: FakeEngine, loader: Callable[[], FakeConfig], **kwargs) -> None:
        self.ready_send, self.ready = trio.open_memory_channel[ReadyInfo](1)
        self.reload_send, self.reloads = trio.open_memory_channel[bool](10)
        self.server = Server(
            engine,
            loader,
            kwargs.pop("options", OPTIONS),
            on_ready=self.ready_send.send_nowait,
            on_reload=self.reload_send.send_nowait,
            **kwargs,
        )
        self.exit_code: int | None = None
        self.done = trio.Event()

    async def run(self, cfg: FakeConfig) -> None:
        self.exit_code = await self.server.serve(cfg)
        self.done.set()


async def test_sigusr1_reopens_the_access_logs(nursery, fake_config):
    engine = FakeEngine()
    h = Harness(engine, Loader())
    nursery.start_soon(h.run, config("a"))
    await h.ready.receive()
    assert engine.reopen_calls == 0
    os.kill(os.getpid(), signal.SIGUSR1)
    with trio.fail_after(5):
        while engine.reopen_calls == 0:
            await trio.sleep(0.01)
    assert engine.reopen_calls == 1
    assert h.server.state.phase is Phase.LIVE
    os.kill(os.getpid(), signal.SIGTERM)
    await h.done.wait()
    assert h.exit_code == 0


async def test_sighup_reload_keeps_the_running_config_on_errors(nursery, caplog, fake_config):
    first, second = config("a"), config("a", "b")
    engine = FakeEngine()
    loader = Loader(
        FakeConfigError(
            [FakeProblem("static_resources.clusters[0].lb_policy", "MAGLEV is not supported")]
        ),
        OSError(2, "No such file or directory"),
        second,
    )
    h = Harness(engine, loader)
    nursery.start_soon(h.run, first)
    await h.ready.receive()
    assert engine.applied == [first.snapshot]

    os.kill(os.getpid(), signal.SIGHUP)
    assert await h.reloads.receive() is False
    os.kill(os.getpid(), signal.SIGHUP)
    assert await h.reloads.receive() is False
    assert engine.applied == [first.snapshot]
    assert h.server.state.config is first
    assert h.server.state.phase is Phase.LIVE
    rejections = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert rejections == [
        "reload rejected, keeping the running configuration: 'mesh.yaml' is invalid: "
        "static_resources.clusters[0].lb_policy: MAGLEV is not supported",
        "reload rejected, keeping the running configuration: cannot read 'mesh.yaml': "
        "[Errno 2] No such file or directory",
    ]

    os.kill(os.getpid(), signal.SIGHUP)
    assert await h.reloads.receive() is True
    assert engine.applied == [first.snapshot, second.snapshot]
    assert h.server.state.config is second
    assert h.server.control.get(app.RELOAD_REJECTED) == 2
    assert h.server.control.get(app.RELOAD_SUCCESS) == 1

    os.kill(os.getpid(), signal.SIGTERM)
    await h.done.wait()
    assert h.exit_code == 0
    assert engine.drain_calls == 1


async def test_reload_rejected_by_the_engine_keeps_the_old_config(nursery, fake_config):
    first = config("a")
    engine = FakeEngine()
    h = Harness(engine, Loader(config("a", "b")))
    nursery.start_soon(h.run, first)
    await h.ready.receive()
    engine.apply_error = OSError(98, "Address already in use")
    os.kill(os.getpid(), signal.SIGHUP)
    assert await h.reloads.receive() is False
    assert h.server.state.config is first
    assert engine.applied == [first.snapshot]
    h.server.terminate("test")
    await h.done.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_terminating_signal_drains_and_exits_zero(nursery, signum):
    engine = FakeEngine()
    h = Harness(engine, Loader())
    nursery.start_soon(h.run, config("a"))
    await h.ready.receive()
    os.kill(os.getpid(), signum)
    await h.done.wait()
    assert h.exit_code == 0
    assert engine.drain_calls == 1
    assert h.server.state.phase is Phase.DRAINING


async def test_admin_serves_after_start_and_quitquitquit_drains(nursery, tmp_path):
    address_file = tmp_path / "admin-address"
    options = ServerOptions("mesh.yaml", 2, admin_address_path=str(address_file))
    engine = FakeEngine()
    h = Harness(engine, Loader(), options=options)
    nursery.start_soon(h.run, config("main"))
    ready = await h.ready.receive()
    assert ready.listeners == [("main", "127.0.0.1", 40000)]
    host, port = ready.admin
    assert address_file.read_text() == f"127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
        assert (await client.get("/ready")).text == "LIVE\n"
        assert (await client.get("/listeners")).text == "main::127.0.0.1:40000\n"
        assert (await client.post("/quitquitquit")).text == "OK\n"
    await h.done.wait()
    assert h.exit_code == 0
    assert engine.drain_calls == 1


def _with_hcm_drain_timeouts(*timeouts_ms: int) -> FakeConfig:
    cfg = config("a", admin=False)
    cfg.snapshot["listeners"] = [
        listener(f"l{i}", drain_timeout_ms=ms) for i, ms in enumerate(timeouts_ms)
    ]
    return cfg


async def test_drain_waits_for_connections_up_to_the_drain_time(nursery, autojump_clock):
    engine = FakeEngine()
    engine.active = 3
    h = Harness(engine, Loader(), options=ServerOptions("mesh.yaml", 2, drain_time_s=7))
    # HCM drain_timeout is Envoy's HTTP/2 GOAWAY grace period, not the process drain time.
    nursery.start_soon(h.run, _with_hcm_drain_timeouts(2000, 30000))
    await h.ready.receive()
    start = trio.current_time()
    h.server.terminate("test")
    await h.done.wait()
    assert 7 <= trio.current_time() - start < 7.5  # --drain-time-s
    assert h.exit_code == 0


async def test_drain_defaults_to_five_seconds_whatever_the_hcm_drain_timeout(
    nursery, autojump_clock
):
    engine = FakeEngine()
    engine.active = 1
    h = Harness(engine, Loader())  # no --drain-time-s
    nursery.start_soon(h.run, _with_hcm_drain_timeouts(60000))
    await h.ready.receive()
    start = trio.current_time()
    h.server.terminate("test")
    await h.done.wait()
    assert DEFAULT_DRAIN_TIME_S <= trio.current_time() - start < DEFAULT_DRAIN_TIME_S + 0.5


async def test_drain_ends_when_the_last_connection_closes(autojump_clock):
    engine = FakeEngine()
    engine.active = 2
    start = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def clients_leave() -> None:
            await trio.sleep(1)
            engine.active = 0

        nursery.start_soon(clients_leave)
        remaining = await drain_connections(engine, 30, trio.Event())
    assert remaining == 0
    assert engine.drain_calls == 1
    assert 1 <= trio.current_time() - start < 1.5


async def test_a_second_terminate_stops_at_once(nursery, autojump_clock):
    engine = FakeEngine()
    engine.active = 1
    h = Harness(engine, Loader(), options=ServerOptions("mesh.yaml", 2, drain_time_s=600))
    nursery.start_soon(h.run, config("a", admin=False))
    await h.ready.receive()
    start = trio.current_time()
    h.server.terminate("SIGTERM")
    await trio.sleep(3)
    assert not h.done.is_set()
    h.server.terminate("SIGTERM")
    await h.done.wait()
    assert trio.current_time() - start < 4


async def test_engine_rejecting_the_first_config_exits_one(nursery):
    engine = FakeEngine()
    engine.apply_error = ValueError("invalid snapshot: unknown field `foo`")
    h = Harness(engine, Loader())
    await h.run(config("a"))
    assert h.exit_code == 1
    assert h.ready.statistics().current_buffer_used == 0


class DnsScript:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, hostname: str, family: str) -> list[str]:
        self.calls.append(hostname)
        return self.answers[hostname]


async def test_dns_clusters_resolve_before_apply_and_restart_on_reload(
    nursery, autojump_clock, fake_config
):
    old = FakeDnsCluster("old", (FakeDnsHost("old.example", 80),), refresh_rate_s=1)
    new = FakeDnsCluster("new", (FakeDnsHost("new.example", 81, 5),), refresh_rate_s=1)
    resolver = DnsScript({"old.example": ["10.0.0.1"], "new.example": ["10.0.0.2"]})
    engine = FakeEngine()
    second = config("a", admin=False, dns=(new,))
    h = Harness(engine, Loader(second), resolver=resolver)
    nursery.start_soon(h.run, config("a", admin=False, dns=(old,)))
    await h.ready.receive()
    clusters = {c["name"]: c for c in engine.current["clusters"]}
    assert clusters["old"]["endpoints"] == [{"address": "10.0.0.1", "port": 80, "weight": 1}]
    assert clusters["static_svc"]["endpoints"] == [{"address": "127.0.0.1", "port": 1}]

    await trio.sleep(3.5)
    assert resolver.calls.count("old.example") == 4  # initial + three refreshes
    await h.server.reload()
    assert await h.reloads.receive() is True
    clusters = {c["name"]: c for c in engine.current["clusters"]}
    assert clusters["new"]["endpoints"] == [{"address": "10.0.0.2", "port": 81, "weight": 5}]
    old_calls = resolver.calls.count("old.example")
    await trio.sleep(3.5)
    assert resolver.calls.count("old.example") == old_calls
    assert resolver.calls.count("new.example") == 4
    h.server.terminate("test")


def test_snapshot_with_endpoints_fills_only_resolved_clusters():
    cfg = config("a", dns=(FakeDnsCluster("d", ()),))
    assert snapshot_with_endpoints(cfg, {}) == cfg.snapshot_bytes()
    out = orjson.loads(
        snapshot_with_endpoints(cfg, {"d": [{"address": "10.1.1.1", "port": 5, "weight": 1}]})
    )
    assert out["clusters"][1] == {
        "name": "d",
        "endpoints": [{"address": "10.1.1.1", "port": 5, "weight": 1}],
    }
    assert out["clusters"][0] == cfg.snapshot["clusters"][0]
    assert out["listeners"] == cfg.snapshot["listeners"]
    assert cfg.snapshot["clusters"][1]["endpoints"] == []  # the config itself is not modified


def test_drain_time():
    # A sidecar's drain must fit Kubernetes' default 30 s grace period (Envoy's is 600 s).
    assert DEFAULT_DRAIN_TIME_S == 5
    assert drain_time_s(None) == DEFAULT_DRAIN_TIME_S
    assert drain_time_s(1.5) == 1.5
    assert drain_time_s(0.0) == 0.0


async def test_run_prints_config_problems_and_starts_nothing(fake_config, capsys):
    problems = [
        FakeProblem("static_resources.clusters[2].lb_policy", "MAGLEV is not supported"),
        FakeProblem("admin.address", "missing"),
    ]
    created: list[int] = []

    def factory(concurrency: int) -> FakeEngine:
        created.append(concurrency)
        return FakeEngine(concurrency)

    code = await app.run(OPTIONS, Loader(FakeConfigError(problems)), factory)
    assert code == 1
    assert created == []
    assert capsys.readouterr().err.splitlines() == [
        "static_resources.clusters[2].lb_policy: MAGLEV is not supported",
        "admin.address: missing",
    ]


async def test_run_stops_the_engine_on_the_way_out(fake_config):
    engines: list[FakeEngine] = []

    def factory(concurrency: int) -> FakeEngine:
        engine = FakeEngine(concurrency)
        engine.apply_error = ValueError("bad")
        engines.append(engine)
        return engine

    assert await app.run(OPTIONS, Loader(config("a")), factory) == 1
    assert engines[0].concurrency == 2
    assert engines[0].stop_calls == 1


async def test_run_reports_an_engine_that_cannot_start(fake_config, caplog):
    def factory(concurrency: int) -> FakeEngine:
        raise ImportError("No module named 'meshcore._fastpath'")

    assert await app.run(OPTIONS, Loader(config("a")), factory) == 1
    assert "cannot start the engine: No module named 'meshcore._fastpath'" in caplog.text


async def test_an_unwritable_admin_address_path_exits_one(tmp_path):
    options = ServerOptions(
        "mesh.yaml", 2, admin_address_path=str(tmp_path / "no" / "such" / "dir")
    )
    engine = FakeEngine()
    h = Harness(engine, Loader(), options=options)
    await h.run(config("a"))
    assert h.exit_code == 1
    assert engine.applied == []
