"""`path_config_source`: LDS or CDS from a file holding a DiscoveryResponse (YAML or JSON),
read again whenever it changes. Envoy watches `watched_directory` for a file moved into
place; meshcore polls the file's identity (inode, size, mtime, following symlinks as a
Kubernetes ConfigMap swap needs) and the directory's, which catches both a move and an
edit in place."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import trio
from envoy.service.discovery.v3 import discovery_pb2

from meshcore.config.errors import Problems
from meshcore.config.schema import parse_message
from meshcore.config.source import read_file

from .resources import Rejected, Update
from .sotw import unwrap

POLL_S = 0.25

Signature = tuple[int, ...] | None


def signature(path: str, watched_directory: str | None) -> Signature:
    """What changes when the file (or the watched directory) changes; None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    parts = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    if watched_directory:
        try:
            parts.append(os.stat(watched_directory).st_mtime_ns)
        except OSError:
            parts.append(-1)
    return tuple(parts)


def load(path: str, type_url: str) -> Update:
    """The file's resources as a complete update of `type_url`; Rejected (each problem with
    the file name and the field's path) if it cannot be used."""
    raw, read_problems = read_file(path)
    if raw is None:
        raise Rejected(read_problems)
    problems = Problems()
    response = parse_message(raw, discovery_pb2.DiscoveryResponse, "", problems)
    if problems or response is None:
        raise Rejected(f"{path}: {p}" for p in problems)
    assert isinstance(response, discovery_pb2.DiscoveryResponse)
    found: list[str] = []
    resources = []
    for index, packed in enumerate(response.resources):
        incoming = unwrap(type_url, packed, response.version_info, found, index)
        if incoming is not None:
            resources.append(incoming)
    if found:
        raise Rejected(f"{path}: {line}" for line in found)
    return Update(type_url, response.version_info, resources, complete=True)


async def watch(
    path: str,
    watched_directory: str | None,
    on_change: Callable[[], Awaitable[None]],
    poll_s: float = POLL_S,
) -> None:
    """Calls `on_change` at once and then after every change, until cancelled."""
    last: Signature | bool = False
    while True:
        current = signature(path, watched_directory)
        if current != last:
            last = current
            await on_change()
        await trio.sleep(poll_s)
