"""Reading bootstrap text: YAML and JSON, duplicate keys, syntax errors with positions."""

from __future__ import annotations

import pytest
from meshcore.config import ConfigError, load_text
from meshcore.config.source import parse_text


def test_yaml_duplicate_key_is_a_problem_with_its_line() -> None:
    data, problems = parse_text("admin: {}\nnode: {id: a}\nadmin: {}\n", "yaml", "envoy.yaml")
    assert data is None
    assert [str(p) for p in problems] == ["envoy.yaml: line 3, column 1: duplicate key 'admin'"]


def test_yaml_merge_keys_may_override() -> None:
    text = "base: &b {id: a, cluster: c}\nnode: {<<: *b, id: z}\n"
    data, problems = parse_text(text, "yaml", "x")
    assert problems == []
    assert data == {"base": {"id": "a", "cluster": "c"}, "node": {"id": "z", "cluster": "c"}}


def test_yaml_dates_stay_strings() -> None:
    data, _ = parse_text("node: {id: 2024-01-02}\n", "yaml", "x")
    assert data == {"node": {"id": "2024-01-02"}}


def test_json_duplicate_key_is_a_problem() -> None:
    _, problems = parse_text('{"node": {}, "node": {}}', "json", "x")
    assert [str(p) for p in problems] == ["x: invalid JSON: duplicate key 'node'"]


def test_yaml_syntax_error_names_line_and_column() -> None:
    _, problems = parse_text("admin:\n  address: [1, 2\n", "yaml", "f.yaml")
    assert len(problems) == 1
    assert problems[0].path == "f.yaml"
    assert problems[0].message.startswith("line 3, column 1:")


def test_json_syntax_error_names_line_and_column() -> None:
    _, problems = parse_text('{\n  "admin": ,\n}', "json", "f.json")
    assert [p.message for p in problems] == ["line 2, column 12: Expecting value"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the config is empty"),
        ("- a\n- b\n", "the bootstrap must be a mapping, not list"),
        ("just text\n", "the bootstrap must be a mapping, not str"),
    ],
)
def test_the_bootstrap_must_be_a_mapping(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text)
    assert [str(p) for p in caught.value.problems] == [f"<text>: {message}"]
