"""Fixtures for the xDS tests: the scriptable ADS server, a fake server-side sink, an
`XdsClient` factory, upstreams a, b and c, and the proxies a test starts, stopped after it
(meshcore importable from the source tree when not installed)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("meshcore") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

from tests.support.proxy import Proxy  # noqa: E402
from tests.support.upstream import Upstream, UpstreamServer  # noqa: E402

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


@pytest.fixture
def upstreams(upstream_server: UpstreamServer) -> dict[str, Upstream]:
    return {name: upstream_server.start(name) for name in ("a", "b", "c")}


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    """The proxies a test starts, stopped after it."""
    started: list[Proxy] = []
    yield started
    for proxy in started:
        proxy.stop()


@pytest.fixture
def proxies_by_kind() -> Iterator[dict[str, Proxy]]:
    """The proxies a test starts, by kind (envoy, meshcore), stopped after it."""
    started: dict[str, Proxy] = {}
    yield started
    for proxy in started.values():
        proxy.stop()
