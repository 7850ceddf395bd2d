"""Fixtures for the xDS tests: the scriptable ADS server, a fake server-side sink, and an
`XdsClient` factory (meshcore importable from the source tree when not installed)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("meshcore") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

from .ads_server import AdsServer  # noqa: E402
from .fakes import FakeSink  # noqa: E402


@pytest.fixture
def ads_server() -> Iterator[AdsServer]:
    server = AdsServer().start()
    yield server
    server.stop()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()
