"""Config problems: one `Problem` per wrong field (its Envoy-style path and what is wrong)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: `path` is Envoy-style (`static_resources.clusters[2]`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be loaded; `problems` lists everything wrong with it."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class Problems:
    """Collects problems in the order found, once each."""

    def __init__(self) -> None:
        self._items: dict[Problem, None] = {}
        self._suppressed: set[str] = set()

    def add(self, path: str, message: str) -> None:
        if not self._hidden(path):
            self._items.setdefault(Problem(path or "(bootstrap)", message), None)

    def suppress(self, path: str) -> None:
        """Drops later problems at or under `path` (a part already reported as unusable,
        e.g. a typed config of an unknown type, whose absence would be reported again)."""
        self._suppressed.add(path)

    def _hidden(self, path: str) -> bool:
        return any(path == s or path.startswith((f"{s}.", f"{s}[")) for s in self._suppressed)

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self._items.setdefault(problem, None)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def as_list(self) -> list[Problem]:
        return list(self._items)
