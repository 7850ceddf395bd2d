"""The cgroup CPU limit: a busy process inside uses about the quota, and no group is left.

Needs root and a cgroup CPU controller (v1 `cpu` or v2 `cpu.max`), as in CI: without them
these tests fail with the reason (CpuLimitError)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import cpu_limit

BUSY = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass\n"


def test_quota_us():
    assert cpu_limit.quota_us(0.5) == 50_000
    assert cpu_limit.quota_us(2) == 200_000
    assert cpu_limit.quota_us(0.001) == 1000  # the kernel's minimum
    with pytest.raises(ValueError, match="positive"):
        cpu_limit.quota_us(0)


def test_no_controller_is_a_clear_error(tmp_path: Path):
    with (
        pytest.raises(cpu_limit.CpuLimitError, match="no cgroup CPU controller"),
        cpu_limit.cpu_limit(0.5, "none", root=tmp_path),
    ):
        pass


def test_busy_process_is_held_to_the_quota():
    quota = 0.25
    with cpu_limit.cpu_limit(quota, "test") as group:
        busy = subprocess.Popen([sys.executable, "-c", BUSY.format(s=1.0)])
        group.attach(busy.pid)
        assert group.pids() == [busy.pid]
        start, before = time.monotonic(), group.throttling()
        usage0 = group.usage_s()
        busy.wait()
        wall = time.monotonic() - start
        used = group.usage_s() - usage0
        throttled = group.throttling() - before
        # Unlimited, the loop would use ~1 CPU for the whole second.
        assert 0 < used / wall <= quota * 1.5, (used, wall)
        assert throttled.throttled > 0 and throttled.throttled_s > 0
    assert not any(p.name.startswith(f"{cpu_limit.PREFIX}test-") for p in cpu_limit.leftovers())


def test_group_is_removed_when_the_block_raises():
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        with pytest.raises(KeyboardInterrupt), cpu_limit.cpu_limit(0.5, "raises") as group:
            group.attach(proc.pid)
            assert group.dirs[0].is_dir()
            assert group.dirs[0].name in Path(f"/proc/{proc.pid}/cgroup").read_text()
            raise KeyboardInterrupt
        # The still-running process was moved out, not killed, and the group is gone.
        assert proc.poll() is None
        assert group.dirs[0].name not in Path(f"/proc/{proc.pid}/cgroup").read_text()
        assert not any(d.exists() for d in group.dirs)
        assert not any(
            p.name.startswith(f"{cpu_limit.PREFIX}raises-") for p in cpu_limit.leftovers()
        )
    finally:
        proc.kill()
        proc.wait()
