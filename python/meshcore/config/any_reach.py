"""Which message types can hold a typed config (`google.protobuf.Any`) somewhere below them,
from the descriptor graph (recursive types included), so that walks looking for typed
configs skip the subtrees that cannot have one."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

ANY = "google.protobuf.Any"

# Per descriptor, final once set: every descriptor it can reach was solved with it.
_REACHES: dict[Descriptor, bool] = {}


def reaches_any(descriptor: Descriptor) -> bool:
    """Whether a message of this type can hold an `Any` at any depth (an `Any` itself does)."""
    known = _REACHES.get(descriptor)
    if known is None:
        _solve(descriptor)
        known = _REACHES[descriptor]
    return known


def _solve(root: Descriptor) -> None:
    """Solves `root` and every unsolved type it can reach: a type reaches `Any` when it is
    `Any` or one of its message fields' types reaches it. Types in a cycle are solved
    together (backwards from the `Any`s over the reversed field edges), so no answer
    depends on an unfinished one."""
    users: dict[Descriptor, list[Descriptor]] = {}  # type -> the unsolved types using it
    seeds: list[Descriptor] = []
    pending = [root]
    seen = {root}
    while pending:
        descriptor = pending.pop()
        if descriptor.full_name == ANY:
            seeds.append(descriptor)
            continue
        for fd in descriptor.fields:
            child = fd.message_type
            if child is None:
                continue
            if _REACHES.get(child):
                seeds.append(descriptor)
            elif child not in _REACHES:
                users.setdefault(child, []).append(descriptor)
                if child not in seen:
                    seen.add(child)
                    pending.append(child)
    reached: set[Descriptor] = set()
    while seeds:
        descriptor = seeds.pop()
        if descriptor not in reached:
            reached.add(descriptor)
            seeds.extend(users.get(descriptor, ()))
    for descriptor in seen:
        _REACHES[descriptor] = descriptor in reached
