"""A fake server for the xDS client: records each applied config and endpoint update, and
can refuse them like the engine does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio
from meshcore.config.model import MeshConfig
from meshcore.xds.resources import ClusterDelta


class FakeSink:
    """What `XdsClient` applies to (the `XdsSink` of `meshcore.app.Server`)."""

    def __init__(self) -> None:
        self.configs: list[MeshConfig] = []
        self.endpoint_updates: list[dict[str, list[dict[str, Any]]]] = []
        self.refuse: Exception | None = None
        self.clusters_changed: list[bool] = []
        self.deltas: list[ClusterDelta | None] = []
        """Per config: the changed and removed clusters, when only they changed."""
        self.changed = trio.Event()

    async def apply_xds(
        self,
        config: MeshConfig,
        clusters_changed: bool = True,
        clusters: ClusterDelta | None = None,
    ) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.configs.append(config)
        self.clusters_changed.append(clusters_changed)
        self.deltas.append(clusters)
        self._notify()

    async def update_xds_endpoints(self, updates: Mapping[str, list[dict[str, Any]]]) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.endpoint_updates.append(dict(updates))
        self._notify()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.configs[-1].snapshot

    def listener_names(self) -> list[str]:
        return [lst["name"] for lst in self.snapshot["listeners"]]

    def cluster_names(self) -> list[str]:
        return [c["name"] for c in self.snapshot["clusters"]]

    def cluster(self, name: str) -> dict[str, Any]:
        return next(c for c in self.snapshot["clusters"] if c["name"] == name)

    def listener(self, name: str) -> dict[str, Any]:
        return next(lst for lst in self.snapshot["listeners"] if lst["name"] == name)
