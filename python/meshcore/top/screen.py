"""Draws `meshcore top` frames as plain text with ANSI colours (a terminal table needs only
column widths, clear-screen and colour codes; `rich` would add it and pygments and
markdown-it to a sidecar's install for that), and runs the poll loop."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from meshcore.top.fetch import TopError, fetch_summary
from meshcore.top.frame import Frame, Row, frame

RED, YELLOW, BOLD, RESET = "\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[0m"
CLEAR, HIDE_CURSOR, SHOW_CURSOR = "\x1b[H\x1b[2J", "\x1b[?25l", "\x1b[?25h"
MAX_NAME = 48
ONCE_LIMIT = 20

Cell = tuple[str, str]  # (text, colour code or "")


def _rate(value: float) -> str:
    return f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _name(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def _common(row: Row) -> list[Cell]:
    return [
        (_rate(row.rps), ""),
        (_rate(row.r2xx), ""),
        (_rate(row.r4xx), YELLOW if row.r4xx else ""),
        (_rate(row.r5xx), RED if row.r5xx else ""),
        (_ms(row.p99_ms), ""),
        (str(row.active_rq), ""),
        (str(row.active_cx), ""),
    ]


def _table(header: Sequence[str], rows: list[list[Cell]], color: bool) -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(text)) for w, (text, _) in zip(widths, row, strict=True)]

    def line(cells: Sequence[Cell]) -> str:
        parts = []
        for i, (text, code) in enumerate(cells):
            padded = text.ljust(widths[i]) if i == 0 else text.rjust(widths[i])
            parts.append(f"{code}{padded}{RESET}" if color and code else padded)
        return "  ".join(parts).rstrip()

    head = line([(h, BOLD) for h in header])
    return [head, *(line(row) for row in rows)]


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def render(view: Frame, admin: str, limit: int, color: bool) -> str:
    """One frame as text: a status line, the connection managers, the busiest clusters."""
    server = view.server
    status = (
        f"meshcore top  {admin}  {server['state']}  up {_duration(server['uptime_s'])}  "
        f"connections {server['connections']}  workers {server['concurrency']}  "
        f"memory {server['memory_bytes'] / 1048576:.1f} MiB  "
        f"rates over {view.seconds:.1f} s  {time.strftime('%H:%M:%S')}"
    )
    lines = [status, ""]
    common = ["REQ/S", "2XX/S", "4XX/S", "5XX/S"]
    http_rows = [[(_name(r.name), ""), *_common(r), (str(r.total), "")] for r in view.http]
    lines += _table(
        ["CONNECTION MANAGER", *common, "P99 MS", "ACTIVE", "CONNS", "TOTAL"], http_rows, color
    )
    shown = view.clusters[:limit]
    more = [r for r in view.clusters[limit:] if r.problem][:limit]
    cluster_rows = []
    for r in shown + more:
        health = f"{r.healthy}/{r.hosts}"
        cluster_rows.append(
            [
                (_name(r.name), RED if r.problem else ""),
                *_common(r),
                (health, RED if r.healthy < r.hosts else ""),
                ("-" if r.ejected is None else str(r.ejected), RED if r.ejected else ""),
                (",".join(r.breakers_open) or "-", RED if r.breakers_open else ""),
                (str(r.total), ""),
            ]
        )
    title = f"CLUSTER ({len(shown)} busiest of {len(view.clusters)})"
    if more:
        title = f"CLUSTER ({len(shown)} busiest of {len(view.clusters)}, +{len(more)} unhealthy)"
    lines.append("")
    lines += _table(
        [title, *common, "P99 MS", "ACTIVE", "CONNS", "HEALTHY", "EJECTED", "BREAKERS", "TOTAL"],
        cluster_rows,
        color,
    )
    lines.append("")
    flush_s = server.get("stats_flush_interval_s", 5.0)
    lines.append(
        "P99 MS: connection managers over this interval; clusters over the proxy's last "
        f"{flush_s:g} s stats flush interval. ACTIVE: requests in flight; CONNS: open connections."
    )
    return "\n".join(lines) + "\n"


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _fit_limit(http_rows: int) -> int:
    lines = shutil.get_terminal_size((100, 40)).lines
    return max(lines - http_rows - 9, 5)


def run(
    admin: str,
    interval: float,
    once: bool,
    limit: int | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """`--once`: two polls `interval` apart, one frame, exit 0 (1 if unreachable). Else a
    frame every `interval` until Ctrl-C, saying so while the proxy cannot be reached."""
    color = use_color(out)
    try:
        prev = fetch_summary(admin)
    except TopError as exc:
        print(f"meshcore top: {exc}", file=err)
        return 1
    if once:
        sleep(interval)
        try:
            cur = fetch_summary(admin)
        except TopError as exc:
            print(f"meshcore top: {exc}", file=err)
            return 1
        out.write(render(frame(prev, cur), admin, limit or ONCE_LIMIT, color))
        return 0
    return _live(admin, interval, limit, prev, out, color, sleep)


def _live(
    admin: str,
    interval: float,
    limit: int | None,
    prev: dict[str, Any],
    out: TextIO,
    color: bool,
    sleep: Callable[[float], None],
) -> int:
    last = ""
    out.write(HIDE_CURSOR)
    try:
        while True:
            sleep(interval)
            try:
                cur = fetch_summary(admin)
            except TopError as exc:
                warning = f"unreachable: {exc}; retrying every {interval:g} s"
                if color:
                    warning = f"{RED}{warning}{RESET}"
                out.write(f"{CLEAR}{warning}\n\n{last}")
                out.flush()
                continue
            view = frame(prev, cur)
            last = render(view, admin, limit or _fit_limit(len(view.http)), color)
            out.write(CLEAR + last)
            out.flush()
            prev = cur
    except KeyboardInterrupt:
        return 0
    finally:
        out.write(SHOW_CURSOR)
        out.flush()
