"""Fakes for runtime tests: an engine with the `_fastpath.pyi` interface, a loaded config,
and a stand-in `meshcore.config` module."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any

import orjson
from meshcore.admin.histogram import ENGINE_BOUNDS_MS, Histogram
from meshcore.admin.stat_lines import encode, encode_histogram


class FakeEngine:
    """Records what the runtime asks of it; behaves like the real engine's contract."""

    def __init__(self, concurrency: int = 2) -> None:
        self.concurrency = concurrency
        self.applied: list[dict[str, Any]] = []
        self.endpoint_updates: list[tuple[str, list[dict[str, Any]]]] = []
        self.apply_error: Exception | None = None
        self.stats_doc: dict[str, Any] = {"counters": {}, "gauges": {}, "histograms": {}}
        self.clusters_doc: list[dict[str, Any]] = []
        self.active = 0
        self.capturing = False
        self.drain_calls = 0
        self.stop_calls = 0
        self.reopen_calls = 0
        self.raise_in_stats: Exception | None = None
        self.flushes = 0
        self.jwks: dict[str, bytes] = {}

    @property
    def current(self) -> dict[str, Any]:
        return self.applied[-1]

    def apply(self, snapshot: bytes) -> int:
        if self.apply_error is not None:
            raise self.apply_error
        self.applied.append(orjson.loads(snapshot))
        return len(self.applied)

    def apply_listeners(self, snapshot: bytes) -> int:
        """As the engine: the snapshot's listeners over the applied clusters, kept as is."""
        if self.apply_error is not None:
            raise self.apply_error
        data = orjson.loads(snapshot)
        if data.get("clusters"):
            raise ValueError("clusters: must be empty (apply_listeners keeps the applied clusters)")
        self.applied.append({**data, "clusters": self.current.get("clusters", [])})
        return len(self.applied)

    def apply_clusters(self, snapshot: bytes, removed: list[str]) -> int:
        """As the engine: the snapshot's clusters take the place of those of the same name
        (new ones go last), the removed ones go, the others stay as they are."""
        if self.apply_error is not None:
            raise self.apply_error
        data = orjson.loads(snapshot)
        known = {c["name"] for c in self.current.get("clusters", [])}
        for name in removed:
            if name not in known:
                raise ValueError(f"removed: no cluster {name!r} is applied")
        changed = {c["name"]: c for c in data.get("clusters", [])}
        kept = [
            changed.pop(c["name"], c)
            for c in self.current.get("clusters", [])
            if c["name"] not in removed
        ]
        self.applied.append({**data, "clusters": [*kept, *changed.values()]})
        return len(self.applied)

    def update_endpoints(self, cluster: str, endpoints: bytes) -> None:
        if not any(c["name"] == cluster for c in self.current.get("clusters", [])):
            raise KeyError(cluster)
        self.endpoint_updates.append((cluster, orjson.loads(endpoints)))

    def listener_ports(self) -> dict[str, int]:
        if not self.applied:
            return {}
        return {
            lst["name"]: lst["port"] or 40000 + i
            for i, lst in enumerate(self.current.get("listeners", []))
        }

    def stats(self) -> tuple[bytes, bytes, bytes]:
        """`stats_doc` in the engine's flat form; histograms are {"counts": [20 ints], "sum":
        ms, "count": int}, over the engine's bounds."""
        if self.raise_in_stats is not None:
            raise self.raise_in_stats
        doc = self.stats_doc
        histograms = [
            encode_histogram(
                name, Histogram(ENGINE_BOUNDS_MS, tuple(h["counts"]), h["sum"], h["count"])
            )
            for name, h in doc.get("histograms", {}).items()
        ]
        return (
            b"".join(line + b"\n" for line in encode(doc.get("counters", {}))),
            b"".join(line + b"\n" for line in encode(doc.get("gauges", {}))),
            b"".join(line + b"\n" for line in sorted(histograms)),
        )

    def flush_histograms(self) -> None:
        self.flushes += 1

    def clusters(self) -> bytes:
        return orjson.dumps(self.clusters_doc)

    def drain(self) -> None:
        self.drain_calls += 1

    def reopen_access_logs(self) -> None:
        self.reopen_calls += 1

    def set_jwks(self, provider_key: str, jwks_json: bytes) -> None:
        self.jwks[provider_key] = jwks_json

    def take_spans(self) -> bytes:
        """No traced requests pass through the fake: never any span."""
        return b""

    def capture_histogram_samples(self, on: bool) -> None:
        self.capturing = on

    def take_histogram_samples(self) -> tuple[bytes, int]:
        """No request passes through the fake: never any sample."""
        return b"", 0

    def active_connections(self) -> int:
        return self.active

    def stop(self) -> None:
        self.stop_calls += 1


@dataclass(frozen=True)
class FakeAdmin:
    address: str
    port: int


@dataclass(frozen=True)
class FakeDnsHost:
    hostname: str
    port: int
    weight: int = 1
    priority: int = 0


@dataclass(frozen=True)
class FakeDnsCluster:
    name: str
    hosts: tuple[FakeDnsHost, ...]
    refresh_rate_s: float = 5.0
    family: str = "v4"
    alt_stat_name: str = ""

    @property
    def stat_name(self) -> str:
        return self.alt_stat_name or self.name


@dataclass(frozen=True)
class FakeConfig:
    snapshot: dict[str, Any]
    admin: FakeAdmin | None = None
    dns_clusters: tuple[FakeDnsCluster, ...] = ()
    health_checks: tuple[Any, ...] = ()
    node_id: str = "node-1"
    node_cluster: str = "mesh"
    bootstrap: dict[str, Any] = field(default_factory=dict)

    def snapshot_bytes(self) -> bytes:
        return orjson.dumps(self.snapshot)


def listener(name: str, port: int = 0, drain_timeout_ms: int | None = None) -> dict[str, Any]:
    hcm: dict[str, Any] = {"stat_prefix": name, "route_config": {"virtual_hosts": []}}
    if drain_timeout_ms is not None:
        hcm["drain_timeout_ms"] = drain_timeout_ms
    return {
        "name": name,
        "address": "127.0.0.1",
        "port": port,
        "filter_chains": [{"filter": {"http_connection_manager": hcm}}],
    }


def cluster(name: str, endpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "endpoints": endpoints or []}


@dataclass(frozen=True)
class FakeProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class FakeConfigError(Exception):
    def __init__(self, problems: list[FakeProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def fake_config_module(
    *,
    configs: dict[str, FakeConfig] | None = None,
    problems: dict[str, list[FakeProblem]] | None = None,
) -> types.ModuleType:
    """A `meshcore.config` whose files are the keys of `configs` (valid) and `problems`
    (invalid)."""
    configs = configs or {}
    problems = problems or {}
    module = types.ModuleType("meshcore.config")

    def load_file(path: str) -> FakeConfig:
        if path in problems:
            raise FakeConfigError(problems[path])
        return configs[path]

    def validate_file(path: str) -> list[FakeProblem]:
        return list(problems.get(path, []))

    module.ConfigError = FakeConfigError  # type: ignore[attr-defined]
    module.Problem = FakeProblem  # type: ignore[attr-defined]
    module.load_file = load_file  # type: ignore[attr-defined]
    module.validate_file = validate_file  # type: ignore[attr-defined]
    return module
