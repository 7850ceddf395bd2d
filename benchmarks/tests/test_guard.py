"""The CI guard's decision: same-run ratios against the baseline and its margins."""

import pytest

from benchmarks import guard


def pair(m_rps, m_cpu, e_rps, e_cpu, errors=0.0):
    return (
        {"rps": m_rps, "cpu_us_per_rq": m_cpu, "errors": errors},
        {"rps": e_rps, "cpu_us_per_rq": e_cpu, "errors": 0.0},
    )


BASE = {"rps_ratio": 2.0, "cpu_ratio": 0.25, "margin_rps": 0.2, "margin_cpu": 0.2}


def test_from_rounds_takes_per_round_ratios_and_medians():
    got = guard.from_rounds([pair(100, 10, 50, 40), pair(90, 12, 30, 40), pair(80, 10, 40, 50)])
    assert got.rps_ratios == pytest.approx([2.0, 3.0, 2.0])
    assert got.rps_ratio == pytest.approx(2.0)
    assert got.cpu_ratio == pytest.approx(0.25)
    assert got.errors == 0
    with pytest.raises(ValueError, match="no complete round"):
        guard.from_rounds([])


def test_passes_within_margin():
    ok, lines = guard.evaluate(guard.from_rounds([pair(170, 12, 100, 40)]), BASE)
    assert ok, lines
    assert lines[0].startswith("ok") and lines[1].startswith("ok")


def test_fails_on_throughput_ratio_regression():
    ok, lines = guard.evaluate(guard.from_rounds([pair(150, 10, 100, 40)]), BASE)  # 1.5 < 1.6
    assert not ok
    assert lines[0].startswith("REGRESSION") and "1.600" in lines[0]
    assert lines[1].startswith("ok")


def test_fails_on_cpu_per_request_regression():
    ok, lines = guard.evaluate(guard.from_rounds([pair(200, 13, 100, 40)]), BASE)  # 0.325 > 0.3
    assert not ok
    assert lines[1].startswith("REGRESSION") and "0.300" in lines[1]


def test_fails_on_errors():
    ok, lines = guard.evaluate(guard.from_rounds([pair(200, 10, 100, 40, errors=3)]), BASE)
    assert not ok
    assert any("3 wrk errors" in line for line in lines)


def test_calibration_margin_is_factor_times_worst_deviation_with_floor():
    runs = [
        guard.from_rounds([pair(200, 10, 100, 40)]),  # 2.0, 0.25
        guard.from_rounds([pair(220, 10, 100, 40)]),  # 2.2, 0.25
        guard.from_rounds([pair(190, 11, 100, 40)]),  # 1.9, 0.275
    ]
    base = guard.calibrate(runs)
    assert base["rps_ratio"] == pytest.approx(2.0)
    assert base["margin_rps"] == pytest.approx(max(guard.MIN_MARGIN_RPS, guard.MARGIN_FACTOR * 0.1))
    assert base["cpu_ratio"] == pytest.approx(0.25)
    assert base["margin_cpu"] == pytest.approx(max(guard.MIN_MARGIN_CPU, guard.MARGIN_FACTOR * 0.1))
    quiet = guard.calibrate([runs[0], runs[0]])
    assert quiet["margin_rps"] == guard.MIN_MARGIN_RPS
    assert quiet["margin_cpu"] == guard.MIN_MARGIN_CPU
    noisy = guard.calibrate([runs[0], guard.from_rounds([pair(300, 10, 100, 40)])])  # 2.0, 3.0
    assert noisy["rps_ratio"] == pytest.approx(2.5)
    assert noisy["margin_rps"] == pytest.approx(guard.MARGIN_FACTOR * 0.2)
    assert len(base["calibration_runs"]) == 3
    with pytest.raises(ValueError, match="two runs"):
        guard.calibrate(runs[:1])


def test_other_load_on_the_proxy_core_is_reported():
    m, e = pair(200, 10, 100, 40)
    m.update(proxy_core_busy_pct=90.0, proxy_cpu_pct=50.0)
    e.update(proxy_core_busy_pct=95.0, proxy_cpu_pct=95.0)
    got = guard.from_rounds([(m, e)])
    assert got.other_load_pct == pytest.approx([40.0, 0.0])
    _, lines = guard.evaluate(got, BASE)
    assert any("other processes used 20% of the proxy's CPU" in line for line in lines)
