"""Reconnect delays: jittered exponential back-off, as Envoy's xDS streams use (base 0.5 s,
at most 30 s, "full jitter": a uniform pick below the exponential ceiling)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BASE_S = 0.5
MAX_S = 30.0


@dataclass
class Backoff:
    """`next()` is the wait before the next attempt; `reset()` after a healthy stream."""

    base_s: float = BASE_S
    max_s: float = MAX_S
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def ceiling(self) -> float:
        """The upper bound of the next wait."""
        return float(min(self.max_s, self.base_s * 2.0 ** min(self.attempt, 62)))

    def next(self) -> float:
        ceiling = self.ceiling()
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0
