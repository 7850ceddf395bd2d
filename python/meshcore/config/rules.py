"""PGV's rules and the supported-field table on a message (a bootstrap, an xDS resource or a
part of one), reported as `pgv.check` then `unsupported.check` report them. A first pass
without paths only says whether anything is wrong: one walk of the set fields for the table
and for the typed configs PGV checks, and PGV's errors only counted. A valid message (nearly
every one) costs that pass; one with a problem is then checked by the reporting passes."""

from __future__ import annotations

from google.protobuf.message import Message

from . import pgv, unsupported
from .errors import Problems


def check(msg: Message, path: str, problems: Problems) -> None:
    """Reports in `problems` what `pgv.check` and `unsupported.check` of `msg` at `path`
    report, in their order."""
    if not clean(msg):
        pgv.check(msg, problems, path)
        unsupported.check(msg, path, problems)


def clean(msg: Message) -> bool:
    """Whether `check` reports nothing for `msg` (False also when a pass fails: the
    reporting passes handle that as they always do)."""
    found: list[Message] = []
    try:
        return (
            unsupported.clean(msg, found)
            and pgv.valid(msg)
            and all(pgv.valid(inner) for inner in found)
        )
    except Exception:
        return False
