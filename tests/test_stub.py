"""The hand-written `_fastpath.pyi` matches the built extension (mypy's stubtest)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.meshcore_only
def test_stub_matches_the_built_module():
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "meshcore._fastpath"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
