"""Stats kept by the control layer (DNS refreshes, reloads, health checks), merged into the
admin stats."""

from __future__ import annotations

from collections import defaultdict


class ControlStats:
    """Envoy-named counters and gauges for work done in Python, e.g.
    `cluster.<name>.update_success`, `cluster.<name>.health_check.healthy`."""

    def __init__(self) -> None:
        self._counters: defaultdict[str, int] = defaultdict(int)
        self._gauges: dict[str, int] = {}

    def inc(self, name: str, amount: int = 1) -> None:
        self._counters[name] += amount

    def declare(self, *names: str) -> None:
        """Makes counters visible at zero before their first increment, as Envoy shows them."""
        for name in names:
            self._counters[name] += 0

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def get(self, name: str) -> int:
        return self._counters.get(name, 0)

    def set_gauge(self, name: str, value: int) -> None:
        self._gauges[name] = value

    def drop_gauge(self, name: str) -> None:
        self._gauges.pop(name, None)

    def gauges(self) -> dict[str, int]:
        return dict(self._gauges)

    def gauge(self, name: str) -> int | None:
        return self._gauges.get(name)
