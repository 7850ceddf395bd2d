"""One frame of `meshcore top`: rates between two summaries (per connection manager and per
cluster), sorted busiest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshcore.admin.histogram import Histogram, quantile

BREAKERS = ("cx", "rq", "rq_pending", "rq_retry")


@dataclass(frozen=True)
class Row:
    """A connection manager (`http.<stat_prefix>`) or a cluster over one poll interval."""

    name: str
    total: int
    rps: float
    r2xx: float
    r4xx: float
    r5xx: float
    p99_ms: float | None
    active_rq: int
    active_cx: int
    hosts: int = 0
    healthy: int = 0
    ejected: int | None = None
    breakers_open: tuple[str, ...] = ()

    @property
    def problem(self) -> bool:
        return self.healthy < self.hosts or bool(self.ejected) or bool(self.breakers_open)


@dataclass(frozen=True)
class Frame:
    server: dict[str, Any]
    seconds: float
    http: list[Row]
    clusters: list[Row]


def _rate(now: int, before: int | None, seconds: float) -> float:
    if before is None or seconds <= 0:
        return 0.0
    return max(now - before, 0) / seconds


def _http_rows(cur: dict[str, Any], prev: dict[str, Any], seconds: float) -> list[Row]:
    bounds = tuple(float(b) for b in cur["bounds_ms"])
    before = {hcm["name"]: hcm for hcm in prev["http"]}
    rows = []
    for hcm in cur["http"]:
        old = before.get(hcm["name"])
        delta = [
            max(n - (old["rq_time"][i] if old else 0), 0) for i, n in enumerate(hcm["rq_time"])
        ]
        p99 = quantile(Histogram(bounds, tuple(delta), 0.0, sum(delta)), 0.99)
        rows.append(
            Row(
                name=hcm["name"],
                total=hcm["rq_total"],
                rps=_rate(hcm["rq_total"], old and old["rq_total"], seconds),
                r2xx=_rate(hcm["rq_2xx"], old and old["rq_2xx"], seconds),
                r4xx=_rate(hcm["rq_4xx"], old and old["rq_4xx"], seconds),
                r5xx=_rate(hcm["rq_5xx"], old and old["rq_5xx"], seconds),
                p99_ms=None if p99 != p99 else p99,  # NaN: no request in the interval
                active_rq=hcm["rq_active"],
                active_cx=hcm["cx_active"],
            )
        )
    return rows


def _cluster_rows(cur: dict[str, Any], prev: dict[str, Any], seconds: float) -> list[Row]:
    col, old = cur["clusters"], prev["clusters"]
    index = {name: i for i, name in enumerate(old["name"])}
    rows = []
    for i, name in enumerate(col["name"]):
        j = index.get(name)

        def rate(field: str, i: int = i, j: int | None = j) -> float:
            return _rate(col[field][i], None if j is None else old[field][j], seconds)

        rows.append(
            Row(
                name=name,
                total=col["rq_total"][i],
                rps=rate("rq_total"),
                r2xx=rate("rq_2xx"),
                r4xx=rate("rq_4xx"),
                r5xx=rate("rq_5xx"),
                p99_ms=col["p99_ms"][i],
                active_rq=col["rq_active"][i],
                active_cx=col["cx_active"][i],
                hosts=col["hosts"][i],
                healthy=col["healthy"][i],
                ejected=col["ejected"][i],
                breakers_open=tuple(b for b in BREAKERS if col[f"cb_{b}_open"][i]),
            )
        )
    return rows


def busiest_first(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r.rps, -r.total, r.name))


def frame(prev: dict[str, Any], cur: dict[str, Any]) -> Frame:
    """The frame for the interval between two summaries of the same proxy."""
    seconds = float(cur["time_s"]) - float(prev["time_s"])
    if cur["server"]["uptime_s"] < prev["server"]["uptime_s"]:
        prev = cur  # the proxy restarted in between: no rates this time
        seconds = 0.0
    return Frame(
        server=cur["server"],
        seconds=seconds,
        http=busiest_first(_http_rows(cur, prev, seconds)),
        clusters=busiest_first(_cluster_rows(cur, prev, seconds)),
    )
