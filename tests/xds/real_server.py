"""An `XdsClient` applying to the real `Server` and engine (one worker) on an ADS bootstrap,
for the tests that compare what an update leaves in the engine with a fresh apply."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
from meshcore.app import Server
from meshcore.discovery.strict_dns import Resolver, system_resolver
from meshcore.lifecycle.state import ServerOptions
from meshcore.xds.client import XdsClient

from tests.health.real_engine import engine_class

from .builders import xds_bootstrap
from .harness import load_bootstrap
from .incremental import Stream


@asynccontextmanager
async def real_server(
    delta: bool = True,
    *,
    wrap: Callable[[Any], Any] = lambda engine: engine,
    resolver: Resolver = system_resolver,
) -> AsyncIterator[tuple[Server, XdsClient, Stream]]:
    """The server (its engine `wrap(engine)`, e.g. a recording proxy: `server.engine`) with
    the bootstrap applied, and a client whose responses the test feeds and whose requests
    `Stream` keeps; the engine is stopped on the way out."""
    config = load_bootstrap(xds_bootstrap(18000, node="n", delta=delta))
    engine = engine_class()(1)
    server = Server(wrap(engine), lambda: config, ServerOptions("test", 1), resolver=resolver)
    try:
        async with trio.open_nursery() as nursery:
            server._nursery = nursery
            await server._apply(config)
            client = XdsClient(config, server, server.control)
            stream = Stream()
            client._stream = stream
            yield server, client, stream
            nursery.cancel_scope.cancel()
    finally:
        engine.stop()
