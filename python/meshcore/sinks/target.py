"""Where a statsd sink sends (the config layer's output; no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "envoy"


@dataclass(frozen=True)
class StatsdTarget:
    """One statsd sink: where to send, and the prefix before every name."""

    address: str
    port: int
    prefix: str = DEFAULT_PREFIX
