"""Reads `/stats/summary` from a running proxy's admin address."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

SUMMARY_VERSION = 1


class TopError(Exception):
    """The admin could not be read; the message says why."""


def fetch_summary(admin: str, timeout: float = 5.0) -> dict[str, Any]:
    """The summary document of the proxy whose admin listens on `admin` (host:port)."""
    url = f"http://{admin}/stats/summary"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise TopError(f"{url}: HTTP {exc.code} (is this a meshcore admin address?)") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TopError(f"cannot reach {url}: {reason}") from None
    try:
        doc: dict[str, Any] = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TopError(f"{url}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != SUMMARY_VERSION:
        raise TopError(f"{url}: unknown summary version {doc.get('version')!r}")
    return doc
