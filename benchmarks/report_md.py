"""Writes a run as Markdown: the machine, one table per scenario, the goals of issue 3."""

from __future__ import annotations

from typing import Any

from benchmarks import goals, scenarios
from benchmarks.summary import Summary

Run = dict[str, Any]
BUSY_LOAD = 1.0  # load average above which the report warns that other work interfered


def num(v: float | None, digits: int = 0) -> str:
    """A number for a table cell: thousands separated, "–" when missing."""
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ranged(s: Summary | None, digits: int = 0) -> str:
    """ "median (min–max)" for a metric measured over several rounds."""
    if s is None:
        return "–"
    if s["n"] == 1:
        return num(s["median"], digits)
    return f"{num(s['median'], digits)} ({num(s['min'], digits)}–{num(s['max'], digits)})"


def _header(run: Run) -> list[str]:
    m = run["machine"]
    st = run["settings"]
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in m["versions"].items())
    lines = [
        "# meshcore end-to-end benchmark results",
        "",
        f"- Date: {m['date']}; load average (1, 5, 15 min) at start: "
        f"{', '.join(map(str, m['load_average']))}"
        + (
            f"; at the end: {', '.join(map(str, m['load_average_end']))}"
            if "load_average_end" in m
            else ""
        ),
        f"- CPU: {m['cpu_model']}, {m['cpus']} cores; kernel {m['kernel']}; Python {m['python']}",
        f"- Versions: {versions}",
        f"- Pinning: proxy on CPU {st['proxy_cpu']}, wrk and the nginx backend on CPU "
        f"{st['load_cpu']}; nice {st.get('niceness', 0)}; one proxy worker; upstream keep-alive "
        "everywhere",
        f"- {st['rounds']} round(s) of {st['duration_s']:g} s per scenario and target, targets "
        "interleaved round by round (order rotated each round); medians with (min–max)",
        f"- Open-file limit (inherited by every proxy): {m['nofile_limit']}",
        f"- Produced by `{run.get('command', 'python -m benchmarks')}` (see "
        f"benchmarks/README.md); raw data in {run.get('json', 'the JSON file next to it')}",
    ]
    loads = [m["load_average"][0], *m.get("load_average_end", [])[1:2]]
    if max(loads) > BUSY_LOAD:
        lines.append(
            f"- **Busy machine**: load average above {BUSY_LOAD:g} while measuring (other work "
            "ran on the pinned CPUs): throughput ratios to direct and latency tails are "
            "pessimistic for every proxy; CPU per request and RSS are affected least"
        )
    for name, why in run["skipped"].items():
        lines.append(f"- **Skipped {name}**: {why}")
    for f in run["failures"]:
        lines.append(
            f"- **Failed**: round {f['round']} {f['scenario']} {f['target']}: {f['error']}"
        )
    return lines


def _wrk_table(sc: scenarios.Scenario, per_target: dict[str, dict[str, Summary]]) -> list[str]:
    cols = ["target", "req/s", "× direct", "× Envoy", "p50 ms", "p99 ms", "p99.9 ms"]
    cols += ["CPU µs/req"] + (["CPU µs/MiB"] if sc.per_mib else [])
    cols += ["proxy CPU %", "core busy % (proxy/load)", "RSS MiB", "new upstream conns"]
    cols += ["errors"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for target, m in per_target.items():
        row = [
            target,
            ranged(m.get("rps")),
            ranged(m.get("ratio_direct"), 2),
            ranged(m.get("ratio_envoy"), 2),
            ranged(m.get("p50_ms"), 2),
            ranged(m.get("p99_ms"), 2),
            ranged(m.get("p999_ms"), 2),
            ranged(m.get("cpu_us_per_rq"), 1),
        ]
        if sc.per_mib:
            row.append(ranged(m.get("cpu_us_per_mib")))
        row += [
            num(_median(m, "proxy_cpu_pct")),
            f"{num(_median(m, 'proxy_core_busy_pct'))}/{num(_median(m, 'load_core_busy_pct'))}",
            num(_median(m, "rss_mib"), 1),
            num(_median(m, "upstream_conns")),
            num(_median(m, "errors")),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _idle_table(per_target: dict[str, dict[str, Summary]]) -> list[str]:
    cols = ["target", "RSS idle MiB", "RSS before MiB", "RSS with conns MiB", "KiB per conn"]
    cols += ["opened", "failed", "new upstream conns"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for target, m in per_target.items():
        row = [
            target,
            ranged(m.get("rss_idle_mib"), 1),
            num(_median(m, "rss_before_mib"), 1),
            num(_median(m, "rss_with_conns_mib"), 1),
            ranged(m.get("kib_per_conn"), 2),
            num(_median(m, "conns_opened")),
            num(_median(m, "conns_failed")),
            num(_median(m, "upstream_conns")),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _median(m: dict[str, Summary], key: str) -> float | None:
    s = m.get(key)
    return s["median"] if s else None


def _goals(run: Run) -> list[str]:
    lines = [
        "## meshcore against the goals of issue 3",
        "",
        "| goal | limit | meshcore (median) | status |",
        "|---|---|---|---|",
    ]
    for v in goals.check(run["results"]):
        g = v.goal
        op = {"<=": "≤", "<": "<", ">=": "≥"}[g.op]
        limit = f"{op} {g.limit:g} {g.unit}".strip()
        value = "–" if v.value is None else f"{v.value:,.2f} {g.unit}".strip()
        status = v.status
        if g.scenario is None:
            status += " (not in this suite yet: HTTPS and HTTP/2 scenarios come with later issues)"
        lines.append(f"| {g.label} | {limit} | {value} | {status} |")
    return lines


def render(run: Run, chart: str | None = None) -> str:
    """The whole report; `chart` is the PNG's path relative to the Markdown file."""
    lines = _header(run)
    lines += ["", *_goals(run)]
    for name, per_target in run["results"].items():
        sc = scenarios.BY_NAME[name]
        lines += ["", f"## {sc.title} (`{sc.name}`)", "", f"Measures {sc.measures}.", ""]
        lines += _idle_table(per_target) if sc.kind == "idle" else _wrk_table(sc, per_target)
    lines += [
        "",
        "CPU is utime+stime of the proxy's processes from /proc (nginx: master and worker), "
        "per successful request; proxy CPU % is of one core. Core busy % is the whole CPU's "
        "busy time from /proc/stat (proxy core / load core): a proxy core much busier than "
        "the proxy itself means other processes ran there. New upstream connections are the "
        "backend's stub_status `accepts` delta over the run (direct: the client's own "
        "connections).",
        "",
    ]
    if chart:
        lines += [f"![requests/s and p99 per target and scenario]({chart})", ""]
    return "\n".join(lines)
