"""Two network namespaces joined by a veth pair shaped to a rate (tc tbf), as two hosts on a
link: setup, shaping and teardown for `python -m benchmarks.tcp_relay --link-rate`.
`python -m benchmarks.tcp_link --cleanup` removes what a killed run left behind."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

#: Every namespace this module makes starts with this, so a leftover is easy to spot.
PREFIX = "meshcore-bench-"
#: The veth end in each namespace (names are per namespace, so both ends may share it).
DEVICE = "link0"
CLIENT_ADDR = "10.201.0.1"
SERVER_ADDR = "10.201.0.2"
#: A 1500-byte MTU as on an ordinary Ethernet link (loopback has 65,536).
MTU = 1500

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)bit\s*$", re.IGNORECASE)
_UNIT = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


class LinkError(RuntimeError):
    """The link could not be set up (not root, no veth/tbf in this kernel, a bad rate)."""


def parse_rate(text: str) -> int:
    """Bits per second of a tc-style rate: `10gbit`, `500mbit`, `2.5gbit`, `100kbit`."""
    m = _RATE.match(text)
    if m is None or float(m.group(1)) <= 0:
        raise LinkError(f"link rate {text!r}: expected a positive rate like 1gbit, 500mbit")
    return int(float(m.group(1)) * _UNIT[m.group(2).lower()])


def tbf_args(bits_per_s: int) -> list[str]:
    """The `tc qdisc ... tbf` parameters for a link of `bits_per_s`.

    burst: what may leave at once, 1 ms of the rate but at least 128 KiB so a 64 KiB GSO
    segment always fits (a smaller bucket makes tbf split every GSO skb into MTU packets, a
    CPU cost no NIC with TSO has). limit: the queue in front of the link, 5 ms of the rate but
    at least 1 MiB, so TCP's own limits (TSQ, cwnd), not tail drops, govern a single stream.
    """
    rate_bytes = bits_per_s // 8
    burst = max(128 * 1024, rate_bytes // 1000)
    limit = max(1024 * 1024, rate_bytes * 5 // 1000)
    return ["rate", f"{bits_per_s}bit", "burst", str(burst), "limit", str(limit)]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _must(cmd: list[str], what: str) -> None:
    done = _run(cmd)
    if done.returncode != 0:
        hint = ""
        if "Operation not permitted" in done.stderr or os.geteuid() != 0:
            hint = " (the link scenario needs root: network namespaces, veth and tc)"
        raise LinkError(f"{what}: `{' '.join(cmd)}` failed: {done.stderr.strip()}{hint}")


def namespaces() -> list[str]:
    """Names of the network namespaces `ip netns` knows that carry PREFIX."""
    out = _run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def pids_in(ns: str) -> list[int]:
    return [int(p) for p in _run(["ip", "netns", "pids", ns]).stdout.split()]


def _kill_all(ns: str) -> None:
    """SIGTERM, then SIGKILL, every process still inside `ns` (only ours run there)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = pids_in(ns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = pids_in(ns)
        if not pids:
            return


def remove(ns: str) -> None:
    """Ends the processes left in `ns` and deletes it (its veth end goes with it)."""
    _kill_all(ns)
    _run(["ip", "netns", "delete", ns])


@dataclass
class Link:
    """A client namespace and a server namespace joined by one veth pair."""

    client_ns: str
    server_ns: str
    client_addr: str = CLIENT_ADDR
    server_addr: str = SERVER_ADDR

    def exec_prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def shape(self, rate: str) -> int:
        """Shapes both directions to `rate` (tbf on each veth end's egress); returns bits/s."""
        bits = parse_rate(rate)
        for ns in (self.client_ns, self.server_ns):
            _must(
                ["ip", "-n", ns, "link", "set", DEVICE, "txqueuelen", "1000"],
                f"queue of {ns}/{DEVICE}",
            )
            _must(
                ["tc", "-n", ns, "qdisc", "replace", "dev", DEVICE, "root", "tbf", *tbf_args(bits)],
                f"shaping {ns}/{DEVICE} to {rate}",
            )
        return bits

    def steer(self, ns: str, cpu: int) -> None:
        """Receive Packet Steering: the veth end in `ns` hands what it receives to `cpu`'s
        network stack. veth otherwise processes a packet on the CPU that sent it, so the
        receiving "host"'s TCP work would run on the sender's CPU."""
        path = f"/sys/class/net/{DEVICE}/queues/rx-0/rps_cpus"
        _must(
            [*self.exec_prefix(ns), "sh", "-c", f"echo {1 << cpu:x} > {path}"],
            f"steering {ns}/{DEVICE} to CPU {cpu}",
        )

    def qdisc(self, ns: str) -> str:
        return _run(["tc", "-n", ns, "qdisc", "show", "dev", DEVICE]).stdout.strip()

    def listening(self, ns: str, port: int) -> bool:
        out = _run(["ss", "-N", ns, "-Hltn", f"sport = :{port}"]).stdout
        return bool(out.strip())

    def wait_port(self, ns: str, port: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.listening(ns, port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nothing listening on port {port} in namespace {ns} after {timeout_s}s")

    def teardown(self) -> None:
        for ns in (self.client_ns, self.server_ns):
            remove(ns)


def create(tag: str | None = None) -> Link:
    """Makes `PREFIX<tag>-client` and `-server` with a veth pair between them, addressed
    CLIENT_ADDR/SERVER_ADDR (/30), MTU 1500, loopback up in both; no shaping yet. On failure
    whatever was made is removed again and LinkError says what failed."""
    tag = tag or str(os.getpid())
    link = Link(f"{PREFIX}{tag}-client", f"{PREFIX}{tag}-server")
    try:
        for ns in (link.client_ns, link.server_ns):
            _must(["ip", "netns", "add", ns], f"cannot create network namespace {ns}")
        _must(
            ["ip", "link", "add", DEVICE, "netns", link.client_ns, "mtu", str(MTU),
             "type", "veth", "peer", "name", DEVICE, "netns", link.server_ns, "mtu", str(MTU)],
            "cannot create the veth pair",
        )  # fmt: skip
        for ns, addr in ((link.client_ns, link.client_addr), (link.server_ns, link.server_addr)):
            _must(["ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", DEVICE], f"address {ns}")
            _must(["ip", "-n", ns, "link", "set", DEVICE, "up"], f"veth up in {ns}")
            _must(["ip", "-n", ns, "link", "set", "lo", "up"], f"loopback up in {ns}")
    except BaseException:
        link.teardown()
        raise
    return link


@contextlib.contextmanager
def link(tag: str | None = None) -> Iterator[Link]:
    """create(), then teardown() however the block ends (error, Ctrl-C, SIGTERM made an
    exception by `terminate_raises`)."""
    made = create(tag)
    try:
        yield made
    finally:
        made.teardown()


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """Turns SIGTERM into KeyboardInterrupt for the block, so `finally` clauses still run."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tcp_link", description=__doc__)
    ap.add_argument("--cleanup", action="store_true", help=f"remove every {PREFIX}* namespace")
    args = ap.parse_args()
    if not args.cleanup:
        print("\n".join(namespaces()) or f"no {PREFIX}* namespaces")
        return
    for ns in namespaces():
        remove(ns)
        print(f"removed {ns}")


if __name__ == "__main__":
    main()
