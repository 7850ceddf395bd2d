"""Runtime test fixtures: the stand-in `meshcore.config` module and a fake engine."""

from __future__ import annotations

import sys

import pytest

from tests.runtime.fakes import FakeConfigError, FakeEngine, fake_config_module


@pytest.fixture
def fake_config(monkeypatch: pytest.MonkeyPatch):
    """Installs a fake `meshcore.config` (the runtime imports it lazily) and returns it."""
    module = fake_config_module()
    monkeypatch.setitem(sys.modules, "meshcore.config", module)
    assert module.ConfigError is FakeConfigError
    return module


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()
