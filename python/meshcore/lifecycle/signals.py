"""Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT start a drain (twice: stop now)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger(__name__)


async def watch_signals(
    reload: Callable[[], Awaitable[None]],
    terminate: Callable[[str], None],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reports started once the handlers are installed. Reloads run one at a time in their
    own task so that a SIGTERM during a slow reload is still handled at once."""
    lock = trio.Lock()

    async def reload_serialized() -> None:
        async with lock:
            await reload()

    with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as batches:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for signum in batches:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    log.info("caught %s, reloading the configuration", name)
                    nursery.start_soon(reload_serialized)
                else:
                    log.info("caught %s", name)
                    terminate(name)
