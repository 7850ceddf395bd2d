"""SDS secrets from `path_config_source` files: one watcher per file the listeners and
clusters name (started when a resource names it, stopped when none does), each reloading
its file through the xDS client whenever it changes (see `files.watch`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import trio

from . import files

Source = tuple[str, str | None]
"""A file and its `watched_directory`."""


class SecretFiles:
    """The running watchers of SDS files."""

    def __init__(self, reload: Callable[[str], Awaitable[None]], poll_s: float) -> None:
        self.reload = reload
        self.poll_s = poll_s
        self.watching: dict[Source, trio.CancelScope] = {}
        self._wanted: set[Source] = set()
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._sync()
            task_status.started()
            await trio.sleep_forever()

    def follow(self, sources: Iterable[Source]) -> None:
        """Watches exactly `sources` from now on."""
        self._wanted = set(sources)
        self._sync()

    def _sync(self) -> None:
        if self._nursery is None:
            return
        for source in list(self.watching):
            if source not in self._wanted:
                self.watching.pop(source).cancel()
        for source in self._wanted - set(self.watching):
            scope = trio.CancelScope()
            self.watching[source] = scope
            self._nursery.start_soon(self._watch, source, scope)

    async def _watch(self, source: Source, scope: trio.CancelScope) -> None:
        path, watched_directory = source

        async def changed() -> None:
            await self.reload(path)

        with scope:
            await files.watch(path, watched_directory, changed, self.poll_s)
