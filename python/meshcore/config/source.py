"""Reads a bootstrap file or text (YAML or JSON) into plain data, rejecting duplicate keys."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import Problem

Format = Literal["yaml", "json"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """PyYAML's safe loader, except that a key repeated in one mapping is an error (Envoy
    rejects it too) and dates stay strings (Envoy's YAML reader has no timestamp type)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable; the base constructor reports it
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
            seen.add(key)
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _yaml_problem(origin: str, error: yaml.YAMLError) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        what = error.problem or "invalid YAML"
        if error.context:
            what = f"{what} ({error.context})"
        return Problem(origin, f"line {mark.line + 1}, column {mark.column + 1}: {what}")
    return Problem(origin, f"invalid YAML: {error}")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_text(text: str, fmt: Format, origin: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parses `text`; problems are reported at `origin` (a file name or "<text>")."""
    data: Any
    if fmt == "json":
        try:
            data = json.loads(text, object_pairs_hook=_reject_duplicates)
        except json.JSONDecodeError as e:
            return None, [Problem(origin, f"line {e.lineno}, column {e.colno}: {e.msg}")]
        except ValueError as e:
            return None, [Problem(origin, f"invalid JSON: {e}")]
    else:
        try:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as e:
            return None, [_yaml_problem(origin, e)]
    if data is None:
        return None, [Problem(origin, "the config is empty")]
    if not isinstance(data, dict):
        return None, [
            Problem(origin, f"the bootstrap must be a mapping, not {type(data).__name__}")
        ]
    return data, []


def format_for(path: str | os.PathLike[str]) -> Format:
    """JSON for `.json` files; YAML (a superset of JSON) for everything else."""
    return "json" if Path(path).suffix.lower() == ".json" else "yaml"


def read_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Reads and parses a bootstrap file."""
    origin = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        return None, [Problem(origin, f"cannot read the file: {e.strerror or e}")]
    except UnicodeDecodeError as e:
        return None, [Problem(origin, f"the file is not UTF-8: {e.reason} at byte {e.start}")]
    return parse_text(text, format_for(path), origin)
