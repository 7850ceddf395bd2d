"""A new base list as long as the current one (an EDS update: unchanged hosts are the same
dicts) is taken in by looking at its changed entries only: the same base, EDS health, host
set decision (pushed at once or at the end of the merge window) and pushes as the full
rebuild, for every kind of edit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from meshcore.health.membership import Membership, host_key

from .fakes import endpoint, engine_with

Endpoints = list[dict[str, object]]


def _base() -> Endpoints:
    return [endpoint(f"10.0.0.{i}", 80, healthy=i != 4) for i in range(1, 9)]


def _set(at: int, **changes: object) -> Callable[[Endpoints], None]:
    def edit(endpoints: Endpoints) -> None:
        endpoints[at] = {**endpoints[at], **changes}

    return edit


def _swap(endpoints: Endpoints) -> None:
    endpoints[1], endpoints[6] = endpoints[6], endpoints[1]


EDITS: dict[str, Callable[[Endpoints], None]] = {
    "unchanged": lambda e: None,
    "weight changed": _set(2, weight=7),
    "health changed": _set(3, healthy=False),
    "healthy again": _set(3, healthy=True),
    "port changed": _set(5, port=81),
    "address changed": _set(0, address="10.0.1.1"),
    "metadata added": _set(6, metadata={"k": "v"}),
    "reordered": _swap,
    "a host replaced by a duplicate": lambda e: e.__setitem__(5, dict(e[2])),
    "two hosts exchanging addresses": lambda e: (
        _set(1, address="10.0.0.3")(e),
        _set(2, address="10.0.0.2")(e),
    ),
    "an equal copy (not the same dict)": lambda e: e.__setitem__(3, dict(e[3])),
    "removed": lambda e: e.pop(4),
    "added": lambda e: e.append(endpoint("10.0.0.50", 80)),
}


def _full(endpoints: Endpoints) -> dict[tuple[str, int], bool]:
    """The EDS health map as the full rebuild makes it."""
    return {host_key(e): bool(e.get("healthy", True)) for e in endpoints}


@pytest.mark.parametrize("name", EDITS)
async def test_a_changed_base_gives_what_the_full_rebuild_gives(name: str) -> None:
    before = _base()
    engine = engine_with({"c": before})
    membership = Membership(engine, {"c": before})
    membership.attach({"c": before})
    after = list(before)
    EDITS[name](after)
    membership._last_update["c"] = trio.current_time()  # within the merge window
    membership.set_base("c", after)
    assert membership.base("c") == after
    assert membership._eds["c"] == _full(after)
    for key, healthy in _full(after).items():
        assert membership.eds_healthy("c", key) is healthy
    same_hosts = set(_full(after)) == set(_full(before))
    pushed_at_once = [("c", after)] if after != before and not same_hosts else []
    assert engine.endpoint_updates == pushed_at_once
    assert ("c" in membership._due) == same_hosts  # delivered when the window ends
    # The changed entries only, unless the length changed or a host is there twice.
    fresh = Membership(engine_with({"c": before}), {"c": before})
    rebased = fresh._rebase("c", after)
    assert (rebased is None) == (len(after) != len(before) or len(_full(after)) != len(after))
    assert rebased in (None, same_hosts)


async def test_an_unchanged_length_with_a_duplicate_before_takes_the_full_path() -> None:
    before = [*_base(), endpoint("10.0.0.1", 80)]
    membership = Membership(engine_with({"c": before}), {"c": before})
    assert membership._rebase("c", list(before)) is None
    after = list(before)
    after[-1] = endpoint("10.0.0.60", 80)
    membership.set_base("c", after)
    assert membership._eds["c"] == _full(after)
