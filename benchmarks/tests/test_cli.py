"""Command-line options of `python -m benchmarks`."""

import json

import pytest

from benchmarks.__main__ import main, options, parser
from benchmarks.tests.test_report import fake_run


def test_defaults_are_the_full_run():
    o = options(parser().parse_args([]))
    assert o.rounds == 3 and o.duration_s == 10.0 and o.idle_connections == 5000
    assert (o.proxy_cpu, o.load_cpu) == (1, 0)
    assert "idle_5k" in [s.name for s in o.scenarios]
    assert o.targets == ("direct", "meshcore", "envoy", "nginx", "haproxy")


def test_quick_shortens_but_explicit_values_win():
    o = options(parser().parse_args(["--quick", "--rounds", "2"]))
    assert o.rounds == 2 and o.duration_s == 1.0 and o.idle_connections == 500


def test_lists_and_unpinned():
    o = options(
        parser().parse_args(
            ["--scenarios", "get_c1,conn_close", "--targets", "direct,envoy", "--no-pin"]
        )
    )
    assert [s.name for s in o.scenarios] == ["get_c1", "conn_close"]
    assert o.targets == ("direct", "envoy")
    assert o.proxy_cpu is None and o.load_cpu is None


def test_unknown_names_and_bad_numbers_are_rejected(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--scenarios", "get_c1,get_c9000"])
    assert "unknown scenario get_c9000" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--duration must be positive"):
        options(parser().parse_args(["--duration", "0"]))


def test_from_json_rerenders_without_measuring(tmp_path, capsys):
    stored = tmp_path / "run.json"
    stored.write_text(json.dumps(fake_run()))
    assert main(["--from-json", str(stored), "--output", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out.md").read_text()
    assert "Test CPU 9000" in md and "| p99 at c50 | < 1.2 ms | 1.50 ms | not reached |" in md
    assert json.loads(stored.read_text())["machine"]["cpus"] == 2
    assert "wrote" in capsys.readouterr().out
