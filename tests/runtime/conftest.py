"""Runtime test fixtures: the stand-in `meshcore.config` module and a fake engine."""

from __future__ import annotations

import sys
import types

import pytest

from tests.runtime.fakes import FakeConfigError, FakeEngine, fake_config_module


@pytest.fixture
def fake_config(monkeypatch: pytest.MonkeyPatch):
    """Installs a fake `meshcore.config` (the runtime imports it lazily) and returns it."""
    module = fake_config_module()
    monkeypatch.setitem(sys.modules, "meshcore.config", module)
    # The CLI loads through `meshcore.config.isolated` (a child process): the fake loads
    # in-process, through whatever `load_file` / `load_text` the test installed.
    isolated = types.ModuleType("meshcore.config.isolated")
    isolated.load_file_isolated = lambda path: module.load_file(path)  # type: ignore[attr-defined]
    isolated.load_text_isolated = lambda text: module.load_text(text)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "meshcore.config.isolated", isolated)
    assert module.ConfigError is FakeConfigError
    return module


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()
