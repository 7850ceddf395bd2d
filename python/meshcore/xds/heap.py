"""Gives freed heap memory back to the OS after a large update. Checking 10,000 resources
in a worker thread leaves glibc's per-thread arena holding tens of MiB that Python already
freed; `malloc_trim(0)` returns it (a no-op where glibc is absent)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> None:
    gc.collect()  # cycles left by the update's garbage, so that their memory is free too
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
