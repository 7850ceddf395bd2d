"""Loads a bootstrap in a child process, so the serving process never imports the schema
stack (protobuf, xds-protos, protoc-gen-validate, PyYAML: about 15 MiB of RSS it would keep
for its whole life) just to read a static config once."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from typing import Literal

from .errors import ConfigError, Problem
from .model import MeshConfig

Request = tuple[Literal["file"], str] | tuple[Literal["text"], str, Literal["yaml", "json"]]


def load_file_isolated(path: str | os.PathLike[str]) -> MeshConfig:
    """`meshcore.config.load_file` run in a child process: raises ConfigError (every
    problem) or OSError (the file cannot be read), as `load_file` does."""
    return _load(("file", os.fspath(path)))


def load_text_isolated(text: str, fmt: Literal["yaml", "json"] = "yaml") -> MeshConfig:
    """`meshcore.config.load_text` run in a child process."""
    return _load(("text", text, fmt))


def _load(request: Request) -> MeshConfig:
    proc = subprocess.run(
        [sys.executable, "-m", "meshcore.config.isolated_child"],
        input=pickle.dumps(request),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        why = detail[-1] if detail else f"exit status {proc.returncode}"
        raise ConfigError([Problem("(bootstrap)", f"the config loader process failed: {why}")])
    # The child is this same installation of meshcore, started just above: its output is
    # trusted like an import.
    kind, value = pickle.loads(proc.stdout)
    if kind == "config":
        assert isinstance(value, MeshConfig)
        return value
    if kind == "problems":
        raise ConfigError(value)
    errno, strerror, filename = value
    raise OSError(errno, strerror, filename)
