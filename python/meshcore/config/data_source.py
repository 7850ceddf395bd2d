"""Reads an Envoy `DataSource` (inline string, inline bytes or a file) as UTF-8 text."""

from __future__ import annotations

from pathlib import Path

from envoy.config.core.v3 import base_pb2

from . import paths
from .errors import Problems


def data_source_text(
    source: base_pb2.DataSource, path: str, problems: Problems, what: str
) -> str | None:
    """The text of `source` at `path`, or None with a problem added (an unreadable file, or
    bytes that are not UTF-8: "`what` that is not UTF-8 is not supported"). An unset or
    unsupported specifier is None without a problem: the supported-fields table reports it."""
    kind = source.WhichOneof("specifier")
    data: bytes
    if kind == "inline_string":
        return str(source.inline_string)
    if kind == "inline_bytes":
        data = source.inline_bytes
    elif kind == "filename":
        try:
            data = Path(source.filename).read_bytes()
        except OSError as e:
            problems.add(
                paths.field(path, "filename"), f"cannot read {source.filename!r}: {e.strerror or e}"
            )
            return None
    else:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        problems.add(paths.field(path, kind), f"{what} that is not UTF-8 is not supported")
        return None
