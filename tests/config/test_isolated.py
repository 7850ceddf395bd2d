"""Loading a bootstrap in a child process: the same config, errors and OSError as loading it
in-process, and the serving process never imports the schema stack."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from meshcore.config import ConfigError, load_file
from meshcore.config.isolated import load_file_isolated, load_text_isolated

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "front-proxy.yaml"


def test_isolated_load_equals_in_process_load() -> None:
    assert load_file_isolated(EXAMPLE) == load_file(EXAMPLE)


def test_isolated_load_of_text_equals_file() -> None:
    assert load_text_isolated(EXAMPLE.read_text()) == load_file(EXAMPLE)


def test_isolated_load_reports_every_problem_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace("lb_policy: ROUND_ROBIN", "lb_policy: NOT_A_POLICY", 1)
    )
    with pytest.raises(ConfigError) as isolated:
        load_file_isolated(bad)
    with pytest.raises(ConfigError) as in_process:
        load_file(bad)
    assert isolated.value.problems == in_process.value.problems
    assert any("lb_policy" in p.path for p in isolated.value.problems)


def test_isolated_load_of_a_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as exc:
        load_file_isolated(missing)
    assert [str(p) for p in exc.value.problems] == [
        f"{missing}: cannot read the file: No such file or directory"
    ]


def test_the_serving_process_does_not_import_the_schema_stack() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from meshcore.config.isolated import load_file_isolated
        import meshcore.app
        config = load_file_isolated({str(EXAMPLE)!r})
        assert config.snapshot["listeners"], config.snapshot
        heavy = [m for m in ("google.protobuf", "yaml", "validate", "envoy") if m in sys.modules]
        print(",".join(heavy) or "none")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "none"
