"""Name -> constructor registries for spaces, strategies, evaluators and executors.

New components register themselves with a decorator and are then reachable from the CLI
and covered by the contract tests, which iterate over every registered name.

>>> from nao.registry import Registry
>>> R = Registry("widget")
>>> @R.register("plain")
... class Plain: ...
>>> R.get("plain") is Plain, R.names()
(True, ['plain'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from nao.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to constructors, with a clear error for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (names are unique)."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """The constructor for ``name``; raises :class:`ConfigError` listing valid names."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: Any) -> bool:
        return name in self._items


# The project's registries. Components register themselves on import; the packages'
# ``__init__`` modules import every component so that lookups by name see them all.
SPACES: Registry = Registry("space")
STRATEGIES: Registry = Registry("strategy")
EVALUATORS: Registry = Registry("evaluator")
EXECUTORS: Registry = Registry("executor")
