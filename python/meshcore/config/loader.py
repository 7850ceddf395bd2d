"""The load pipeline: data -> Bootstrap (schema) -> PGV rules -> supported fields ->
translation. Every stage runs so that all problems are reported at once."""

from __future__ import annotations

from typing import Any

from . import rules
from .errors import Problem, Problems
from .model import MeshConfig
from .schema import parse_bootstrap
from .translate_bootstrap import translate


def load_data(raw: dict[str, Any]) -> tuple[MeshConfig | None, list[Problem]]:
    """The config for bootstrap data `raw`, or None and every problem found."""
    problems = Problems()
    bootstrap = parse_bootstrap(raw, problems)
    if bootstrap is None:
        return None, problems.as_list()
    rules.check(bootstrap, "", problems)
    config = translate(bootstrap, problems)
    if problems:
        return None, problems.as_list()
    return config, []
