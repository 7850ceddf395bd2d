"""Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT start a drain (twice: stop now),
SIGUSR1 reopens the access log files (log rotation)."""

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
    reopen_logs: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reports started once the handlers are installed. Reloads run one at a time in their
    own task so that a SIGTERM during a slow reload is still handled at once."""
    lock = trio.Lock()

    async def reload_serialized() -> None:
        async with lock:
            await reload()

    signals = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
    with trio.open_signal_receiver(*signals) as batches:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for signum in batches:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    log.info("caught %s, reloading the configuration", name)
                    nursery.start_soon(reload_serialized)
                elif signum == signal.SIGUSR1:
                    log.info("caught %s, reopening the access logs", name)
                    if reopen_logs is not None:
                        reopen_logs()
                else:
                    log.info("caught %s", name)
                    terminate(name)
