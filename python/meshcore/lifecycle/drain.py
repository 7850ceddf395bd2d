"""Graceful drain: stop accepting, let open connections finish, bounded by the drain time."""

from __future__ import annotations

import logging

import trio

from meshcore.lifecycle.interfaces import EngineApi

log = logging.getLogger(__name__)

# How often the drain checks `active_connections()` (the engine offers no wait primitive)
# and whether it was cut short.
POLL_INTERVAL_S = 0.05


async def drain_connections(engine: EngineApi, limit_s: float, cut_short: trio.Event) -> int:
    """Calls `engine.drain()` and waits until no downstream connection is open, `limit_s`
    passes or `cut_short` is set. Returns the connections still open."""
    engine.drain()
    remaining = engine.active_connections()
    log.info("draining %d open connection(s) for up to %gs", remaining, limit_s)
    with trio.move_on_after(limit_s):
        while remaining > 0 and not cut_short.is_set():
            await trio.sleep(POLL_INTERVAL_S)
            remaining = engine.active_connections()
    remaining = engine.active_connections()
    if remaining:
        log.warning("drain ended with %d connection(s) still open; closing them", remaining)
    else:
        log.info("drain complete")
    return remaining
