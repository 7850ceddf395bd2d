"""meshcore's config layer: reads an Envoy v3 bootstrap (YAML or JSON), checks it against
Envoy's own schema and rules, rejects every field meshcore does not implement, and
translates it into the engine snapshot."""

from __future__ import annotations

import os
from typing import Literal

from .errors import ConfigError, Problem
from .model import AdminConfig, ClusterHealthCheck, DnsCluster, DnsHost, MeshConfig

# The loader and the file reader import the schema stack (protobuf, xds-protos, PGV, PyYAML)
# only when a config is loaded: `meshcore.config.isolated` relies on that to keep it out of
# the serving process.

__all__ = [
    "AdminConfig",
    "ClusterHealthCheck",
    "ConfigError",
    "DnsCluster",
    "DnsHost",
    "MeshConfig",
    "Problem",
    "load_file",
    "load_text",
    "validate_file",
]


def _check_file(path: str | os.PathLike[str]) -> tuple[MeshConfig | None, list[Problem]]:
    from .loader import load_data
    from .source import read_file

    raw, problems = read_file(path)
    if raw is None:
        return None, problems
    return load_data(raw)


def load_file(path: str | os.PathLike[str]) -> MeshConfig:
    """Loads a bootstrap file (`.json` is JSON; `.yaml`, `.yml` and anything else YAML).
    Raises ConfigError listing every problem."""
    config, problems = _check_file(path)
    if config is None:
        raise ConfigError(problems)
    return config


def load_text(text: str, *, fmt: Literal["yaml", "json"] = "yaml") -> MeshConfig:
    """Loads a bootstrap from text. Raises ConfigError listing every problem."""
    from .loader import load_data
    from .source import parse_text

    raw, problems = parse_text(text, fmt, "<text>")
    if raw is None:
        raise ConfigError(problems)
    config, problems = load_data(raw)
    if config is None:
        raise ConfigError(problems)
    return config


def validate_file(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem with a bootstrap file; [] when it loads."""
    return _check_file(path)[1]
