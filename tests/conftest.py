"""Shared fixtures: one background trio loop hosting all test upstreams; selection of the
proxies under test (MESHCORE_TEST_PROXIES)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.proxy import proxy_kinds  # noqa: E402
from tests.support.upstream import UpstreamServer  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "meshcore_only: meshcore's own behaviour, with no Envoy counterpart"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With MESHCORE_TEST_PROXIES=envoy (harness work), leave out the tests that need meshcore."""
    if "meshcore" in proxy_kinds():
        return
    keep = [item for item in items if not item.get_closest_marker("meshcore_only")]
    dropped = [item for item in items if item.get_closest_marker("meshcore_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamServer]:
    server = UpstreamServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_upstream_records(request: pytest.FixtureRequest) -> None:
    """Each test sees only the requests it caused."""
    if "upstream_server" in request.fixturenames:
        request.getfixturevalue("upstream_server").clear()
