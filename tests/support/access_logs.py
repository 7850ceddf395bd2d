"""Access-log helpers shared by the access-log tests: a file logger entry for a bootstrap,
and the lines a proxy wrote to a log file once they are there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

FILE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"


def file_log(path: Path, log_format: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An `envoy.access_loggers.file` entry writing to `path` (`extra`: e.g. `filter`)."""
    config: dict[str, Any] = {"@type": FILE, "path": str(path)}
    if log_format is not None:
        config["log_format"] = log_format
    return {"name": "envoy.access_loggers.file", "typed_config": config, **extra}


def log_lines(path: Path, count: int, timeout: float = 8.0) -> list[str]:
    """The lines of `path` once at least `count` were written (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) >= count, f"{path.name}: {lines}"
            return lines
        time.sleep(0.05)
