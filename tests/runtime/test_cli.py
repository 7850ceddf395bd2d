"""The `meshcore` command: validate exit codes and output, run wiring, parsing errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
from meshcore import __version__
from meshcore.cli import build_parser, main
from meshcore.lifecycle.drain_time import DEFAULT_DRAIN_TIME_S

from tests.runtime.fakes import FakeAdmin, FakeConfig, FakeEngine, FakeProblem, listener

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"


@pytest.fixture
def restore_logging():
    """`main` configures the meshcore logger; put it back for the other tests."""
    logger = logging.getLogger("meshcore")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_validate_ok(fake_config, capsys):
    assert main(["validate", "-c", "good.yaml"]) == 0
    out = capsys.readouterr()
    assert out.out == "configuration 'good.yaml' OK\n"
    assert out.err == ""


def test_validate_lists_every_problem_on_stderr(fake_config, capsys, monkeypatch):
    problems = [
        FakeProblem("static_resources.clusters[2].lb_policy", "MAGLEV is not supported"),
        FakeProblem("static_resources.listeners[0].name", "duplicate listener name 'main'"),
    ]
    monkeypatch.setattr(fake_config, "validate_file", lambda path: problems)
    assert main(["validate", "-c", "bad.yaml"]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        "static_resources.clusters[2].lb_policy: MAGLEV is not supported",
        "static_resources.listeners[0].name: duplicate listener name 'main'",
    ]


def test_validate_unreadable_file(fake_config, capsys, monkeypatch):
    def missing(path: str) -> list[FakeProblem]:
        raise FileNotFoundError(2, "No such file or directory", path)

    monkeypatch.setattr(fake_config, "validate_file", missing)
    assert main(["validate", "-c", "/nope.yaml"]) == 1
    assert capsys.readouterr().err == "/nope.yaml: No such file or directory\n"


class SelfTerminatingEngine(FakeEngine):
    """Sends SIGTERM to the process once its config is applied, so `run` drains and exits."""

    created: list[SelfTerminatingEngine] = []

    def __init__(self, concurrency: int) -> None:
        super().__init__(concurrency)
        SelfTerminatingEngine.created.append(self)

    def apply(self, snapshot: bytes) -> int:
        generation = super().apply(snapshot)
        os.kill(os.getpid(), signal.SIGTERM)
        return generation


def test_run_starts_the_engine_and_drains_on_sigterm(
    fake_config, monkeypatch, tmp_path, restore_logging
):
    cfg = FakeConfig(snapshot={"listeners": [listener("main")]}, admin=FakeAdmin("127.0.0.1", 0))
    monkeypatch.setattr(fake_config, "load_file", {"mesh.yaml": cfg}.__getitem__)
    engine_module = types.ModuleType("meshcore._fastpath")
    engine_module.Engine = SelfTerminatingEngine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "meshcore._fastpath", engine_module)
    SelfTerminatingEngine.created.clear()
    address_file = tmp_path / "admin"

    args = ["run", "-c", "mesh.yaml", "--concurrency", "3", "--log-level", "warning"]
    assert main([*args, "--admin-address-path", str(address_file)]) == 0
    (engine,) = SelfTerminatingEngine.created
    assert engine.concurrency == 3
    assert engine.applied == [cfg.snapshot]
    assert engine.drain_calls == 1
    assert engine.stop_calls == 1
    assert address_file.read_text().startswith("127.0.0.1:")
    assert logging.getLogger("meshcore").level == logging.WARNING


def test_run_with_a_bad_config_exits_one(fake_config, monkeypatch, capsys, restore_logging):
    from tests.runtime.fakes import FakeConfigError

    def load(path: str) -> FakeConfig:
        raise FakeConfigError([FakeProblem("admin", "bad")])

    monkeypatch.setattr(fake_config, "load_file", load)
    monkeypatch.setitem(sys.modules, "meshcore._fastpath", types.ModuleType("meshcore._fastpath"))
    sys.modules["meshcore._fastpath"].Engine = FakeEngine  # type: ignore[attr-defined]
    assert main(["run", "-c", "x.yaml"]) == 1
    assert capsys.readouterr().err == "admin: bad\n"


def test_defaults_and_parse_errors(capsys):
    parser = build_parser()
    args = parser.parse_args(["run", "-c", "f.yaml"])
    assert args.concurrency == (os.cpu_count() or 1)
    assert args.log_level == "info"
    assert args.drain_time_s == DEFAULT_DRAIN_TIME_S == 5
    assert parser.parse_args(["run", "-c", "f", "--drain-time-s", "12.5"]).drain_time_s == 12.5
    assert parser.parse_args(["demo", "--drain-time-s", "0"]).drain_time_s == 0
    demo = parser.parse_args(["demo"])
    assert (demo.port, demo.admin_port) == (10000, 9901)
    for bad in (
        ["run", "-c", "f", "--log-level", "loud"],
        ["run", "-c", "f", "--concurrency", "0"],
        ["run", "-c", "f", "--drain-time-s", "-1"],
        ["demo", "--port", "70000"],
        ["run"],
        [],
    ):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(bad)
        assert exc.value.code == 2
    assert "unknown log level 'loud'" in capsys.readouterr().err


def test_version_via_python_dash_m():
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR)}
    out = subprocess.run(
        [sys.executable, "-m", "meshcore", "--version"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0
    assert out.stdout == f"meshcore {__version__}\n"


def test_the_cli_module_does_not_import_trio():
    """`meshcore validate` and `--help` stay light: trio comes only with `run` and `demo`."""
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR)}
    code = "import sys, meshcore.cli; print('trio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
        check=False,
    )  # fmt: skip
    assert (out.returncode, out.stdout) == (0, "False\n")
