"""PGV's rules and the supported-field table on a message (a bootstrap, an xDS resource or a
part of one), reported as `pgv.check` then `unsupported.check` report them. A first pass
without paths only says whether anything is wrong: one walk of the set fields checks the
table and, on each message it visits, the parts of PGV's function for the fields that
message has set (`pgv_split.local_plan`; the messages the walk visits itself are left out
of PGV's descent), PGV's whole check for the messages it does not visit, and PGV's check of
every typed config. A valid message (nearly every one) costs that pass; one with a problem
is then checked by the reporting passes."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from . import pgv, pgv_split, unsupported
from .errors import Problems
from .type_urls import type_name, unpack
from .unsupported import DESCEND, EMPTY, ENUM, SCAN, SKIP, TYPED
from .walk import MAP, SINGLE, value_typed_configs


def check(msg: Message, path: str, problems: Problems) -> None:
    """Reports in `problems` what `pgv.check` and `unsupported.check` of `msg` at `path`
    report, in their order."""
    if not clean(msg):
        pgv.check(msg, problems, path)
        unsupported.check(msg, path, problems)


def clean(msg: Message) -> bool:
    """Whether `check` reports nothing for `msg` (False also when a pass fails: the
    reporting passes handle that as they always do)."""
    try:
        return _clean(msg)
    except Exception:
        return False


@functools.cache
def _walked(descriptor: Descriptor) -> frozenset[FieldDescriptor]:
    """The fields whose messages `_clean` visits itself."""
    steps = unsupported.clean_steps(descriptor)
    return frozenset(fd for fd, step in steps.items() if step.action == DESCEND)


def _clean(msg: Message) -> bool:
    """Nothing to report in `msg` and under it: the table's verdict on its set fields,
    PGV's (`pgv_split`) on it and on the messages under it."""
    descriptor = msg.DESCRIPTOR
    steps = unsupported.clean_steps(descriptor)
    fields = msg.ListFields()
    plan = pgv_split.local_plan(msg, _walked(descriptor))
    if plan is None:
        errors = pgv_split.full_errors(msg)
    else:
        errors = pgv_split.plan_errors(plan, msg, fields)
    if errors:
        return False
    for fd, value in fields:
        step = steps.get(fd) or unsupported.step_of(descriptor, fd)  # an extension
        action, kind, rule, _, allowed = step
        if action == SKIP:
            continue
        if action == DESCEND:
            if kind == SINGLE:
                if not _clean(value):
                    return False
                continue
            # Not `_each`: the walk's own descent, one call less per message (~2 % of the
            # pass over a 1,000-virtual-host route config).
            for child in value.values() if kind == MAP else value:
                if not _clean(child):
                    return False
        elif action == ENUM:
            if not (value in allowed if kind == SINGLE else all(v in allowed for v in value)):
                return False
        elif action == SCAN:  # typed configs the table does not look into: PGV's check
            if any(pgv_split.quick_errors(inner) for inner in value_typed_configs(kind, value)):
                return False
        elif action == TYPED:
            if not all(_clean_typed(packed, rule.types) for packed in _each(kind, value)):
                return False
        elif action == EMPTY:
            if any(child.ListFields() for child in _each(kind, value)):
                return False
        else:  # REPORT
            return False
    return True


def _each(kind: int, value: Any) -> Iterable[Any]:
    """The values of a set field of shape `kind` (`walk.shaped_values` without paths, map
    entries in their own order: only whether each is clean counts)."""
    return (value,) if kind == SINGLE else value.values() if kind == MAP else value


def _clean_typed(packed: Message, types: frozenset[str] | None) -> bool:
    """Nothing to report for typed config `packed` (the table's `_check_typed`) nor in it."""
    type_url: str = getattr(packed, "type_url", "")
    if not type_url:
        return False
    if types is not None and type_name(type_url) not in types:
        return False
    inner = unpack(packed)
    if inner is None:
        return False
    return _clean(inner)
