"""Logging in Envoy's line style: `[2026-11-26 05:57:57.139][6266][info][main] message`."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

TRACE = 5
OFF = logging.CRITICAL + 10

# Envoy's `--log-level` names.
LEVELS: dict[str, int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "off": OFF,
}

_LEVEL_NAMES = {
    TRACE: "trace",
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}

# Our module names mapped onto Envoy's logger names where one fits.
_COMPONENTS = {"app": "main", "cli": "main", "lifecycle": "main", "discovery": "upstream"}

ROOT = "meshcore"


class EnvoyLineFormatter(logging.Formatter):
    """One line per event; tracebacks stay on the following lines."""

    def format(self, record: logging.LogRecord) -> str:
        ms = int(record.msecs)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        level = _LEVEL_NAMES.get(record.levelno, record.levelname.lower())
        parts = record.name.split(".")
        component = parts[1] if len(parts) > 1 and parts[0] == ROOT else record.name
        component = _COMPONENTS.get(component, component)
        line = (
            f"[{stamp}.{ms:03d}][{threading.get_native_id()}][{level}][{component}] "
            f"{record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def level_value(name: str) -> int:
    """The logging level for an Envoy level name; ValueError names the accepted ones."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {name!r} (one of {', '.join(sorted(LEVELS))})"
        ) from None


def configure(level: str, stream: TextIO | None = None) -> None:
    """Sends the `meshcore` loggers to stderr (or `stream`) at `level`."""
    logging.addLevelName(TRACE, "TRACE")
    logger = logging.getLogger(ROOT)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(EnvoyLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(level_value(level))
    logger.propagate = False


def set_level(level: str) -> None:
    logging.getLogger(ROOT).setLevel(level_value(level))


def current_level() -> str:
    value = logging.getLogger(ROOT).getEffectiveLevel()
    return "off" if value >= OFF else _LEVEL_NAMES.get(value, logging.getLevelName(value).lower())
