"""The Markdown report, the goals check and the output files."""

import json
from pathlib import Path

import pytest

from benchmarks import goals, output, report_md
from benchmarks.summary import summarize


def s(*values):
    return summarize(list(values))


def fake_run():
    return {
        "machine": {
            "cpu_model": "Test CPU 9000",
            "cpus": 2,
            "kernel": "6.1.0-test",
            "python": "3.11.7",
            "load_average": [0.1, 0.2, 0.3],
            "nofile_limit": 20000,
            "date": "2026-11-26 07:00 UTC",
            "versions": {"meshcore": "0.1.0", "envoy": "1.40.0", "haproxy": None},
        },
        "settings": {"rounds": 3, "duration_s": 10.0, "proxy_cpu": 1, "load_cpu": 0},
        "skipped": {"haproxy": "HAProxy not installed (apt-get install -y haproxy)"},
        "failures": [],
        "results": {
            "get_c50": {
                "direct": {"rps": s(100000, 90000, 110000), "errors": s(0, 0, 0)},
                "meshcore": {
                    "rps": s(95000, 91000, 99000),
                    "ratio_direct": s(0.95, 0.9, 1.0),
                    "cpu_us_per_rq": s(10.0, 11.0, 9.0),
                    "p99_ms": s(1.5, 1.4, 1.6),
                    "errors": s(0, 0, 0),
                },
            },
            "download_1m": {
                "meshcore": {"rps": s(1000), "cpu_us_per_mib": s(300), "errors": s(0, 5)},
            },
            "idle_5k": {
                "meshcore": {
                    "rss_idle_mib": s(30.0),
                    "kib_per_conn": s(0.5, 0.7),
                    "conns_failed": s(0),
                },
            },
        },
    }


def test_ranged_and_numbers():
    assert report_md.ranged(s(1.0, 3.0, 2.0), 1) == "2.0 (1.0–3.0)"
    assert report_md.ranged(s(1234.0)) == "1,234"
    assert report_md.ranged(None) == "–"
    assert report_md.num(None) == "–"


def test_goals_verdicts():
    by_label = {v.goal.label: v for v in goals.check(fake_run()["results"])}
    assert by_label["CPU per small HTTP/1.1 request (c50)"].status == "reached"
    assert by_label["requests/s ÷ direct (c50)"].status == "reached"
    assert by_label["p99 at c50"].status == "not reached"
    assert by_label["p99 at c50"].value == pytest.approx(1.5)
    assert by_label["p99 at c200"].status == "not measured"
    assert by_label["CPU per MiB (1 MiB responses)"].status.startswith("invalid: 5 errors")
    assert by_label["RSS idle"].status == "reached"
    assert by_label["RSS per idle keep-alive connection"].status == "reached"
    assert by_label["CPU per HTTPS request"].status == "not measured"


def test_goal_comparisons():
    under = goals.Goal("x", "s", "m", "<", 1.0, "")
    assert under.met(0.99) and not under.met(1.0)
    at_least = goals.Goal("x", "s", "m", ">=", 0.9, "")
    assert at_least.met(0.9) and not at_least.met(0.89)
    with pytest.raises(ValueError):
        goals.Goal("x", "s", "m", "~", 1, "").met(1)


def test_markdown_has_machine_tables_and_goals():
    text = report_md.render(fake_run(), chart="results/chart.png")
    assert "Test CPU 9000, 2 cores; kernel 6.1.0-test" in text
    assert "envoy 1.40.0" in text and "haproxy not installed" in text
    assert "**Skipped haproxy**: HAProxy not installed" in text
    assert "| meshcore | 95,000 (91,000–99,000) | 0.95 (0.90–1.00) |" in text
    assert "| CPU µs/MiB |" in text  # only the download table has it
    assert text.count("CPU µs/MiB") == 1
    assert "| p99 at c50 | < 1.2 ms | 1.50 ms | not reached |" in text
    assert "| meshcore | 30.0 |" in text  # idle table
    assert "![requests/s and p99 per target and scenario](results/chart.png)" in text
    assert "chart.png" not in report_md.render(fake_run(), chart=None)
    assert "Busy machine" not in text


def test_busy_machine_is_flagged():
    run = fake_run()
    run["machine"]["load_average_end"] = [0.5, 3.2, 2.0]
    text = report_md.render(run)
    assert "at the end: 0.5, 3.2, 2.0" in text
    assert "**Busy machine**" in text


def test_output_paths():
    full = output.paths(None, quick=False)
    assert full.markdown.name == "RESULTS.md" and full.json.name == "latest.json"
    quick = output.paths(None, quick=True)
    assert quick.markdown.name == "quick.md" and quick.markdown.parent.name == "results"
    mine = output.paths(Path("/tmp/x/run1"), quick=True)
    assert (mine.json, mine.markdown, mine.png) == (
        Path("/tmp/x/run1.json"),
        Path("/tmp/x/run1.md"),
        Path("/tmp/x/run1.png"),
    )


def test_write_creates_json_and_markdown(tmp_path):
    where = output.Paths(tmp_path / "r.json", tmp_path / "R.md", tmp_path / "img" / "c.png")
    run = fake_run()
    text, drawn = output.write(run, where)
    assert json.loads(where.json.read_text())["machine"]["cpu_model"] == "Test CPU 9000"
    assert where.markdown.read_text() == text
    assert drawn == where.png.exists()
    if drawn:
        assert where.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "(img/c.png)" in text
