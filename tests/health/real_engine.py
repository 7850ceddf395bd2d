"""The compiled engine for tests that run it in-process: `meshcore._fastpath` when importable,
else the extension of the installed meshcore (so that the Python side can come from the
source tree via PYTHONPATH)."""

from __future__ import annotations

import importlib.util
import site
from pathlib import Path
from typing import Any

import pytest


def engine_class() -> Any:
    try:
        from meshcore._fastpath import Engine
    except ImportError:
        pass
    else:
        return Engine
    for base in site.getsitepackages():
        for path in sorted(Path(base, "meshcore").glob("_fastpath*.so")):
            spec = importlib.util.spec_from_file_location("meshcore._fastpath", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.Engine
    pytest.fail("meshcore._fastpath is not built: run `pip install --no-build-isolation .`")


def http_snapshot(cluster: str, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """A listener on 127.0.0.1:0 routing everything to `cluster` (only the snapshot fields
    every engine build since the first accepts)."""
    route = {
        "match": {"path": {"prefix": "/"}},
        "action": {"route": {"target": {"cluster": cluster}}},
    }
    hcm = {
        "stat_prefix": "ingress",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
    }
    return {
        "listeners": [
            {
                "name": "main",
                "address": "127.0.0.1",
                "port": 0,
                "filter_chains": [{"filter": {"http_connection_manager": hcm}}],
            }
        ],
        "clusters": [{"name": cluster, "connect_timeout_ms": 1000, "endpoints": endpoints}],
    }
