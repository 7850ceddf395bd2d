"""`meshcore top` without a proxy: rates and p99 between two summaries, the order and
limits of a frame, its text, and the poll loop's `--once` and unreachable paths."""

from __future__ import annotations

import io
from typing import Any

import pytest
from meshcore.admin.histogram import ENGINE_BOUNDS_MS
from meshcore.top import screen
from meshcore.top.fetch import TopError
from meshcore.top.frame import frame

BUCKETS = len(ENGINE_BOUNDS_MS) + 1


def doc(time_s: float, uptime: int, hcm: dict[str, Any], clusters: list[dict[str, Any]]) -> dict:
    fields = (
        "rq_total", "rq_1xx", "rq_2xx", "rq_3xx", "rq_4xx", "rq_5xx", "rq_active", "cx_active",
        "hosts", "healthy", "cb_cx_open", "cb_rq_open", "cb_rq_pending_open", "cb_rq_retry_open",
    )  # fmt: skip
    columns: dict[str, Any] = {"count": len(clusters), "name": [c["name"] for c in clusters]}
    for field in fields:
        columns[field] = [c.get(field, 1 if field in ("hosts", "healthy") else 0) for c in clusters]
    columns["ejected"] = [c.get("ejected") for c in clusters]
    columns["p99_ms"] = [c.get("p99_ms") for c in clusters]
    http = {
        "name": "ingress", "rq_total": 0, "rq_1xx": 0, "rq_2xx": 0, "rq_3xx": 0, "rq_4xx": 0,
        "rq_5xx": 0, "rq_active": 0, "cx_active": 0, "rq_time": [0] * BUCKETS, **hcm,
    }  # fmt: skip
    return {
        "version": 1,
        "time_s": time_s,
        "server": {"state": "LIVE", "uptime_s": uptime, "concurrency": 2, "connections": 5,
                   "memory_bytes": 3 << 20},
        "bounds_ms": list(ENGINE_BOUNDS_MS),
        "http": [http],
        "clusters": columns,
    }  # fmt: skip


def latency(**at: int) -> list[int]:
    out = [0] * BUCKETS
    for key, n in at.items():
        out[int(key[1:])] = n
    return out


BEFORE = doc(
    10.0,
    100,
    {"rq_total": 100, "rq_2xx": 90, "rq_5xx": 10, "rq_time": latency(b2=100)},
    [
        {"name": "quiet", "rq_total": 500},
        {"name": "busy", "rq_total": 10, "rq_2xx": 10},
        {"name": "broken", "hosts": 2, "healthy": 1},
    ],
)
AFTER = doc(
    12.0,
    102,
    {"rq_total": 140, "rq_2xx": 120, "rq_4xx": 4, "rq_5xx": 16, "rq_active": 3, "cx_active": 2,
     "rq_time": latency(b2=100, b5=40)},
    [
        {"name": "quiet", "rq_total": 500},
        {"name": "busy", "rq_total": 50, "rq_2xx": 44, "rq_5xx": 6, "p99_ms": 42.5},
        {"name": "broken", "hosts": 2, "healthy": 1, "ejected": 1, "cb_rq_open": 1},
        {"name": "new", "rq_total": 8},
    ],
)  # fmt: skip


def test_rates_are_differences_over_the_interval():
    view = frame(BEFORE, AFTER)
    assert view.seconds == 2.0
    [hcm] = view.http
    assert (hcm.rps, hcm.r2xx, hcm.r4xx, hcm.r5xx) == (20.0, 15.0, 2.0, 3.0)
    assert (hcm.active_rq, hcm.active_cx, hcm.total) == (3, 2, 140)
    # The 40 requests of the interval all took 25–50 ms: its p99, not the cumulative one.
    assert hcm.p99_ms == pytest.approx(25 + 25 * 0.99)
    rows = {row.name: row for row in view.clusters}
    assert (rows["busy"].rps, rows["busy"].r2xx, rows["busy"].r5xx) == (20.0, 17.0, 3.0)
    assert rows["busy"].p99_ms == 42.5
    assert rows["quiet"].rps == 0.0
    # A cluster the first summary did not have has no rate yet.
    assert rows["new"].rps == 0.0 and rows["new"].total == 8
    assert rows["broken"].breakers_open == ("rq",)
    assert rows["broken"].problem and not rows["busy"].problem
    assert [row.name for row in view.clusters] == ["busy", "quiet", "new", "broken"]


def test_a_restart_between_polls_shows_no_rates():
    restarted = {**AFTER, "server": {**AFTER["server"], "uptime_s": 1}}
    view = frame(BEFORE, restarted)
    assert view.seconds == 0.0
    assert all(row.rps == 0 for row in view.clusters + view.http)


def test_render_lists_busiest_first_and_unhealthy_ones_past_the_limit():
    text = screen.render(frame(BEFORE, AFTER), "127.0.0.1:9901", limit=2, color=False)
    lines = text.splitlines()
    assert lines[0].startswith("meshcore top  127.0.0.1:9901  LIVE  up 0:01:42  connections 5")
    assert "rates over 2.0 s" in lines[0]
    assert "\x1b[" not in text
    hcm = lines[lines.index(next(x for x in lines if x.startswith("CONNECTION"))) + 1].split()
    assert hcm == ["ingress", "20.0", "15.0", "2.0", "3.0", "49.8", "3", "2", "140"]
    start = lines.index(next(x for x in lines if x.startswith("CLUSTER")))
    assert lines[start].startswith("CLUSTER (2 busiest of 4, +1 unhealthy)")
    rows = [line.split() for line in lines[start + 1 : start + 4]]
    assert [row[0] for row in rows] == ["busy", "quiet", "broken"]
    assert rows[0] == ["busy", "20.0", "17.0", "0.0", "3.0", "42.5", "0", "0", "1/1", "-", "-",
                       "50"]  # fmt: skip
    assert rows[2][8:11] == ["1/2", "1", "rq"]


def test_render_names_the_proxys_stats_flush_interval():
    after = {**AFTER, "server": {**AFTER["server"], "stats_flush_interval_s": 2.5}}
    text = screen.render(frame(BEFORE, after), "a:1", limit=5, color=False)
    assert "clusters over the proxy's last 2.5 s stats flush interval" in text
    older = screen.render(frame(BEFORE, AFTER), "a:1", limit=5, color=False)
    assert "last 5 s stats flush interval" in older  # a proxy that does not report it


def test_render_colours_errors_only_when_asked():
    text = screen.render(frame(BEFORE, AFTER), "a:1", limit=5, color=True)
    assert f"{screen.RED}" in text and screen.RESET in text


class Fetcher:
    def __init__(self, *answers: dict | BaseException) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, admin: str, timeout: float = 5.0) -> dict:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_once_polls_twice_an_interval_apart(monkeypatch):
    fetch = Fetcher(BEFORE, AFTER)
    monkeypatch.setattr(screen, "fetch_summary", fetch)
    slept: list[float] = []
    out, err = io.StringIO(), io.StringIO()
    assert screen.run("h:1", 1.5, True, None, out, err, slept.append) == 0
    assert slept == [1.5] and fetch.calls == 2
    assert "CLUSTER (4 busiest of 4)" in out.getvalue()
    assert err.getvalue() == ""


def test_once_fails_with_the_reason_when_unreachable(monkeypatch):
    monkeypatch.setattr(screen, "fetch_summary", Fetcher(TopError("cannot reach x: refused")))
    out, err = io.StringIO(), io.StringIO()
    assert screen.run("h:1", 1.0, True, None, out, err, lambda s: None) == 1
    assert (out.getvalue(), err.getvalue()) == ("", "meshcore top: cannot reach x: refused\n")


def test_live_keeps_the_last_frame_while_unreachable_and_stops_on_ctrl_c(monkeypatch):
    fetch = Fetcher(BEFORE, AFTER, TopError("cannot reach x: refused"), KeyboardInterrupt())
    monkeypatch.setattr(screen, "fetch_summary", fetch)
    out = io.StringIO()
    assert screen.run("h:1", 1.0, False, 5, out, io.StringIO(), lambda s: None) == 0
    frames = out.getvalue().split(screen.CLEAR)
    assert frames[0] == screen.HIDE_CURSOR
    assert "CLUSTER (4 busiest of 4)" in frames[1]
    assert frames[2].startswith("unreachable: cannot reach x: refused; retrying every 1 s\n")
    assert "CLUSTER (4 busiest of 4)" in frames[2]
    assert frames[2].endswith(screen.SHOW_CURSOR)
