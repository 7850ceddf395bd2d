"""The shaped link of the TCP relay benchmark: rate parsing, the tbf parameters, a short
iperf3 run that the shaping bounds, and teardown (namespaces and processes gone, also after an
error). Needs root, `ip`, `tc` and iperf3: without them these tests fail with the reason."""

import os
import subprocess
import uuid

import pytest

from benchmarks import tcp_link
from benchmarks.tcp_relay import MIB, Run, iperf, link_report


def test_parse_rate_units():
    assert tcp_link.parse_rate("10gbit") == 10_000_000_000
    assert tcp_link.parse_rate("500mbit") == 500_000_000
    assert tcp_link.parse_rate("2.5Gbit") == 2_500_000_000
    assert tcp_link.parse_rate("100kbit") == 100_000


@pytest.mark.parametrize("bad", ["10gb", "fast", "0gbit", "-1mbit", ""])
def test_parse_rate_rejects_what_tc_would_misread(bad):
    with pytest.raises(tcp_link.LinkError, match="expected a positive rate like 1gbit"):
        tcp_link.parse_rate(bad)


def test_tbf_bucket_holds_a_gso_segment_and_scales_with_the_rate():
    slow = tcp_link.tbf_args(tcp_link.parse_rate("100mbit"))
    fast = tcp_link.tbf_args(tcp_link.parse_rate("10gbit"))
    assert slow == ["rate", "100000000bit", "burst", "131072", "limit", "1048576"]
    # 1 ms and 5 ms of 10 Gbit/s.
    assert fast == ["rate", "10000000000bit", "burst", "1250000", "limit", "6250000"]


def test_link_report_gives_the_share_of_the_link_and_of_direct():
    direct = [Run(110, 0, 5, 60, 0)]
    relay = [Run(99, 300, 40, 70, 1)]
    lines = link_report({"1gbit": {"direct": direct, "meshcore": relay}}).splitlines()
    assert lines[0].startswith("| link | path | MiB/s | of link | of direct |")
    # 1 Gbit/s is 119 MiB/s: 110/119.2 = 0.92, 99/119.2 = 0.83, 99/110 = 0.90.
    assert lines[2] == "| 1gbit (119 MiB/s) | direct | 110 | 0.92 | 1.00 | – | 5% / 60% | – |"
    assert lines[3] == (
        "| 1gbit (119 MiB/s) | meshcore | 99 | 0.83 | 0.90 | 300 µs | 40% / 70% | 1 ms/s |"
    )


def test_without_root_setup_fails_naming_root(monkeypatch):
    def refused(cmd):
        err = "mount --make-shared: Operation not permitted"
        return subprocess.CompletedProcess(cmd, 2, "", err)

    monkeypatch.setattr(tcp_link, "_run", refused)
    with pytest.raises(tcp_link.LinkError, match="needs root"):
        tcp_link.create("noroot")


def _tag() -> str:
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def test_shaped_link_bounds_an_iperf3_stream_near_the_rate():
    rate = "200mbit"
    with tcp_link.link(_tag()) as net:
        net.shape(rate)
        assert "rate 200Mbit" in net.qdisc(net.client_ns)
        assert "rate 200Mbit" in net.qdisc(net.server_ns)
        server = subprocess.Popen(
            [*net.exec_prefix(net.server_ns), "iperf3", "-s", "-p", "5201"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            net.wait_port(net.server_ns, 5201)
            got = iperf(5201, 1.0, net.server_addr, net.client_ns)
        finally:
            server.terminate()
            server.wait()
    link_mib_s = tcp_link.parse_rate(rate) / 8 / MIB
    # TCP over a 1500-byte MTU carries at most 1448/1514 = 0.956 of the raw rate; a bucket
    # of 128 KiB adds at most 0.1 MiB over a second. Well below: the link did not carry it.
    assert 0.75 * link_mib_s < got < 0.99 * link_mib_s, (got, link_mib_s)


def test_teardown_removes_the_namespaces_and_their_processes():
    with tcp_link.link(_tag()) as net:
        made = {net.client_ns, net.server_ns}
        assert made <= set(tcp_link.namespaces())
        assert all(ns.startswith(tcp_link.PREFIX) for ns in made)
        sleeper = subprocess.Popen([*net.exec_prefix(net.client_ns), "sleep", "600"])
        assert tcp_link.pids_in(net.client_ns) == [sleeper.pid]
    assert sleeper.wait(timeout=10) is not None
    assert not made & set(tcp_link.namespaces())


def test_an_error_inside_the_block_still_tears_down():
    made: set[str] = set()
    with pytest.raises(RuntimeError, match="boom"), tcp_link.link(_tag()) as net:
        made = {net.client_ns, net.server_ns}
        raise RuntimeError("boom")
    assert made and not made & set(tcp_link.namespaces())


def test_steer_sets_the_receive_cpu_mask_of_the_veth_end():
    with tcp_link.link(_tag()) as net:
        net.steer(net.server_ns, 1)
        net.steer(net.client_ns, 0)
        path = f"/sys/class/net/{tcp_link.DEVICE}/queues/rx-0/rps_cpus"
        for ns, mask in ((net.server_ns, 2), (net.client_ns, 1)):
            out = subprocess.run(
                [*net.exec_prefix(ns), "cat", path], capture_output=True, text=True, check=True
            )
            assert int(out.stdout.strip().replace(",", ""), 16) == mask
