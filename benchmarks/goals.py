"""The goals issue 3 sets for meshcore, checked against a run's medians."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.summary import Summary

Results = dict[str, dict[str, dict[str, Summary]]]  # scenario -> target -> metric -> Summary


@dataclass(frozen=True)
class Goal:
    label: str
    scenario: str | None  # None: not measured by this suite yet
    metric: str
    op: str  # "<=" (at most), "<" (under) or ">=" (or more)
    limit: float
    unit: str

    def met(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.limit
        if self.op == "<":
            return value < self.limit
        if self.op == ">=":
            return value >= self.limit
        raise ValueError(f"unknown comparison {self.op!r}")


GOALS: tuple[Goal, ...] = (
    Goal("CPU per small HTTP/1.1 request (c50)", "get_c50", "cpu_us_per_rq", "<=", 12, "µs"),
    Goal("requests/s ÷ direct (c50)", "get_c50", "ratio_direct", ">=", 0.9, ""),
    Goal("p99 at c50", "get_c50", "p99_ms", "<", 1.2, "ms"),
    Goal("p99 at c200", "get_c200", "p99_ms", "<", 5, "ms"),
    Goal("CPU per MiB (1 MiB responses)", "download_1m", "cpu_us_per_mib", "<=", 450, "µs"),
    Goal("RSS idle", "idle_5k", "rss_idle_mib", "<", 40, "MiB"),
    Goal("RSS per idle keep-alive connection", "idle_5k", "kib_per_conn", "<", 1, "KiB"),
    Goal("CPU per HTTPS request", None, "cpu_us_per_rq", "<=", 16, "µs"),
    Goal("CPU per h2c request", None, "cpu_us_per_rq", "<=", 10, "µs"),
)


@dataclass(frozen=True)
class Verdict:
    goal: Goal
    value: float | None
    status: str  # "reached", "not reached", "not measured", "invalid: ..."


def check(results: Results, target: str = "meshcore") -> list[Verdict]:
    """One verdict per goal from `target`'s medians; a run with errors does not count."""
    out = []
    for g in GOALS:
        metrics = results.get(g.scenario or "", {}).get(target, {})
        s = metrics.get(g.metric)
        if s is None:
            out.append(Verdict(g, None, "not measured"))
            continue
        errors = max(
            (metrics[k]["max"] for k in ("errors", "conns_failed") if k in metrics), default=0
        )
        if errors:
            out.append(Verdict(g, s["median"], f"invalid: {errors:,.0f} errors in a round"))
            continue
        out.append(Verdict(g, s["median"], "reached" if g.met(s["median"]) else "not reached"))
    return out
