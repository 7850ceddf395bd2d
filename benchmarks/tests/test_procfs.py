"""Parsing /proc: CPU time and RSS of a process tree, per-core busy time."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import cpu
from benchmarks.machine import cpu_model

STAT = (
    "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 1553 0 0 0 "
    "250 75 0 0 20 0 3 0 1779 123 456 18446744073709551615"
)


def test_parse_stat_survives_spaces_and_parens_in_comm():
    assert cpu.parse_stat(STAT) == (1, 250, 75)


def test_parse_vmrss():
    assert cpu.parse_vmrss_kib("Name:\tx\nVmPeak:\t 10 kB\nVmRSS:\t  4321 kB\n") == 4321
    with pytest.raises(ValueError, match="VmRSS"):
        cpu.parse_vmrss_kib("Name:\tkthreadd\n")


def test_parse_core_times_counts_steal_as_busy():
    text = (
        "cpu  100 0 50 1000 10 0 5 3 0 0\n"
        "cpu0 60 0 30 400 10 0 5 3 0 0\n"
        "cpu1 40 0 20 600 0 0 0 0 0 0\n"
        "intr 1 2 3\n"
    )
    cores = cpu.parse_core_times(text)
    assert cores == {0: (98, 508), 1: (60, 660)}
    later = {0: (198, 608), 1: (60, 760)}
    assert cpu.busy_pct(cores, later, 0) == pytest.approx(100.0)
    assert cpu.busy_pct(cores, later, 1) == pytest.approx(0.0)
    assert cpu.busy_pct(cores, later, 7) is None


def test_parse_schedstat_and_live_wait():
    assert cpu.parse_schedstat("917876 8029127 2\n") == (917876, 8029127)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert cpu.wait_seconds(os.getpid()) > 0  # this process and its child were queued
        assert cpu.wait_seconds(os.getpid()) >= cpu.wait_seconds(child.pid)
    finally:
        child.kill()
        child.wait()


def test_live_process_figures():
    me = os.getpid()
    assert cpu.rss_kib(me) > 1000
    sum(i * i for i in range(300_000))  # burn a little CPU
    assert cpu.cpu_seconds(me) > 0
    assert 1 in cpu.core_times() or os.cpu_count() == 1


def test_descendants_include_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in cpu.descendants(os.getpid())
        assert cpu.rss_kib(os.getpid()) > cpu.parse_vmrss_kib(Path("/proc/self/status").read_text())
    finally:
        child.kill()
        child.wait()


def test_cpu_model_from_cpuinfo():
    text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) X 9\n"
    assert cpu_model(text) == "Intel(R) Xeon(R) X 9"
    assert cpu_model("processor : 0\n") == "unknown"
