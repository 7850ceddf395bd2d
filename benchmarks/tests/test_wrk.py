"""wrk output parsing, the Lua script assembly and the command line."""

from pathlib import Path

import pytest

from benchmarks import wrk

PLAIN = """Running 10s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   542.10us  1.21ms  30.11ms   97.88%
    Req/Sec    92.11k     5.43k  100.23k    73.00%
  Latency Distribution
     50%  411.00us
     75%  502.00us
     90%  640.00us
     99%    2.35ms
  916540 requests in 10.00s, 132.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  91651.24
Transfer/sec:     13.20MB
"""

LUA_LINE = (
    "MESHCORE_BENCH requests=916540 duration_us=10000000 bytes=138412032 p50_us=411 "
    "p90_us=640 p99_us=2350 p999_us=8120 max_us=30110 err_connect=0 err_read=3 "
    "err_write=0 err_status=7 err_timeout=2\n"
)


def test_lua_line_wins_and_carries_p999():
    r = wrk.parse(PLAIN + LUA_LINE)
    assert r.requests == 916540
    assert r.rps == pytest.approx(91654.0)
    assert r.bytes == 138412032
    assert r.p50_ms == pytest.approx(0.411)
    assert r.p90_ms == pytest.approx(0.640)
    assert r.p99_ms == pytest.approx(2.35)
    assert r.p999_ms == pytest.approx(8.12)
    assert r.max_ms == pytest.approx(30.11)
    assert r.errors == 12


def test_plain_output_without_lua_line():
    r = wrk.parse(PLAIN)
    assert r.requests == 916540
    assert r.rps == pytest.approx(91651.24)
    assert r.duration_s == pytest.approx(10.0)
    assert r.bytes == 132 * (1 << 20)
    assert r.p50_ms == pytest.approx(0.411)
    assert r.p99_ms == pytest.approx(2.35)
    assert r.p999_ms == r.p99_ms  # the plain table has no p99.9
    assert r.errors == 3 + 2 + 7


def test_latency_units():
    assert wrk._ms("250.00us") == pytest.approx(0.25)
    assert wrk._ms("1.50s") == pytest.approx(1500)
    assert wrk._ms("2m") == pytest.approx(120000)
    with pytest.raises(ValueError, match="unparseable"):
        wrk._ms("fast")


def test_unexpected_output_is_an_error():
    with pytest.raises(ValueError, match="unexpected wrk output"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_truncated_lua_line_names_what_is_missing():
    with pytest.raises(ValueError, match="p999_us"):
        wrk.parse("MESHCORE_BENCH requests=1 duration_us=1 bytes=1 p50_us=1 p99_us=1\n")


def test_script_appends_reporter_to_scenario_script():
    text = wrk.script_text("post64k.lua")
    assert 'wrk.method = "POST"' in text
    assert 'string.rep("a", 65536)' in text
    assert text.index("wrk.method") < text.index("done = function")
    assert "latency:percentile(99.9)" in wrk.script_text(None)


def test_command_pins_and_passes_headers():
    cmd = wrk.command(
        "http://127.0.0.1:1/x",
        connections=50,
        duration_s=2.4,
        script=Path("/tmp/s.lua"),
        headers=("Connection: close",),
        cpu=0,
    )
    assert cmd[:3] == ["taskset", "-c", "0"]
    assert "-c50" in cmd and "-d2s" in cmd and "--latency" in cmd
    assert cmd[cmd.index("-H") + 1] == "Connection: close"
    assert cmd[cmd.index("-s") + 1] == "/tmp/s.lua"
    assert cmd[-1] == "http://127.0.0.1:1/x"
    unpinned = wrk.command("u", connections=1, duration_s=0.2, script=Path("s"), cpu=None)
    assert unpinned[0] == "wrk" and "-d1s" in unpinned
