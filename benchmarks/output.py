"""Where a run is written (JSON, Markdown, PNG) and the writing itself."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import chart, report_md

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Paths:
    json: Path
    markdown: Path
    png: Path


def paths(output: Path | None, quick: bool, json_path: Path | None = None) -> Paths:
    """`output` given: OUTPUT.{json,md,png}; a full run: results/latest.json, RESULTS.md and
    results/chart.png; --quick: results/quick.* (never overwriting the committed report).
    `json_path` replaces the JSON's place (re-rendering a stored run)."""
    where = _paths(output, quick)
    return where if json_path is None else Paths(json_path, where.markdown, where.png)


def _paths(output: Path | None, quick: bool) -> Paths:
    if output is not None:
        return Paths(
            output.with_suffix(".json"), output.with_suffix(".md"), output.with_suffix(".png")
        )
    if quick:
        base = HERE / "results" / "quick"
        return Paths(base.with_suffix(".json"), base.with_suffix(".md"), base.with_suffix(".png"))
    return Paths(
        HERE / "results" / "latest.json", HERE / "RESULTS.md", HERE / "results" / "chart.png"
    )


def _shown(p: Path) -> str:
    """`p` relative to the working directory when below it, for messages and the report."""
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def write(run: dict[str, Any], where: Paths) -> tuple[str, bool]:
    """Writes the files; returns the Markdown and whether the chart was drawn."""
    run["json"] = _shown(where.json)
    where.json.parent.mkdir(parents=True, exist_ok=True)
    where.json.write_text(json.dumps(run, indent=1) + "\n")  # unchanged when re-rendering
    drawn = chart.draw(run["results"], where.png)
    rel = os.path.relpath(where.png, where.markdown.parent)
    text = report_md.render(run, chart=rel if drawn else None)
    where.markdown.parent.mkdir(parents=True, exist_ok=True)
    where.markdown.write_text(text)
    return text, drawn
