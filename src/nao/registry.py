"""Name -> constructor registries, filled lazily: spaces, strategies, evaluators, executors, run kinds,
presets and ``nao`` subcommands.

Every registry is a :class:`Registry` with the one loader: on the first lookup it imports the
modules listed for it (each registers its components with ``@REGISTRY.register(name)`` when
imported) and then every module that an installed package names in the registry's entry-point
group (``nao.kinds``, ``nao.strategies``, ...), so a third-party package adds a run kind or a
strategy without touching this file. Contract tests iterate over every registered name.

Adding a component to nao itself is one module plus its line below; adding one from another package
is its module plus an entry point, e.g. in its ``pyproject.toml``::

    [project.entry-points."nao.kinds"]
    my-kind = "my_package.my_kind"

>>> R = Registry("widget")
>>> @R.register("plain")
... class Plain: ...
>>> R.get("plain") is Plain, R.names()
(True, ['plain'])
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from nao.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry(Generic[T]):
    """A mapping from names to constructors, loaded on first use, with a clear error for unknown names.

    Args:
        kind: what is registered (for messages): ``space``, ``run kind``...
        modules: modules of nao whose import registers the built-in components.
        group: entry-point group of third-party components (``None``: none).
    """

    def __init__(self, kind: str, modules: Sequence[str] = (), group: str | None = None) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self.group = group
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (names are unique)."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a component of their own clean up with it)."""
        self._items.pop(name, None)

    def load(self) -> None:
        """Import the listed modules and the entry points' modules, once."""
        if self._loaded:
            return
        self._loaded = True  # first: a module that looks itself up while being imported must not recurse
        for mod in self.modules:
            importlib.import_module(mod)  # a listed module that is missing is an error, not an absence
        if self.group:
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.group):
                try:
                    ep.load()
                except Exception as e:  # a broken plug-in must not take the built-in components with it
                    log.warning("nao: could not load %s %r from %s: %s", self.kind, ep.name, ep.value, e)

    def get(self, name: str) -> T:
        """The constructor for ``name``; raises :class:`ConfigError` listing valid names."""
        if name not in self._items:
            self.load()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self.load()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, constructor) pairs in registration order."""
        self.load()
        return iter(list(self._items.items()))

    def __contains__(self, name: Any) -> bool:
        self.load()
        return name in self._items


# The project's registries: the one table of which module registers what.
SPACES: Registry = Registry("space", ("nao.spaces.nb201", "nao.spaces.cells", "nao.spaces.rnn"), "nao.spaces")
STRATEGIES: Registry = Registry(
    "strategy",
    ("nao.strategies.random", "nao.strategies.rea", "nao.strategies.local", "nao.strategies.nao",
     "nao.strategies.seminas", "nao.strategies.bananas", "nao.strategies.optuna_samplers",
     "nao.strategies.zero_cost"),
    "nao.strategies",
)
EVALUATORS: Registry = Registry(
    "evaluator",
    ("nao.evaluators.tabular", "nao.evaluators.training", "nao.evaluators.supernet", "nao.evaluators.rnn_supernet",
     "nao.evaluators.lm_training"),
    "nao.evaluators",
)
EXECUTORS: Registry = Registry("executor", ("nao.executors",), "nao.executors")
#: Run kinds (:mod:`nao.runs.kinds`): one module each, holding its config, presets, flags and kind class.
KINDS: Registry = Registry(
    "run kind",
    ("nao.runs.kinds.tabular", "nao.runs.kinds.supernet_cnn", "nao.runs.kinds.supernet_rnn",
     "nao.runs.kinds.trained_cnn", "nao.runs.kinds.trained_rnn"),
    "nao.kinds",
)
#: Presets by ``family/name`` (a run kind's presets are registered by the kind's module).
PRESETS: Registry = Registry(
    "preset", (*KINDS.modules, "nao.train.presets", "nao.train.lm", "nao.evaluators.rnn_supernet"), "nao.presets",
)
#: ``nao`` subcommands, in help order: modules with ``add_parser(subparsers)``.
COMMANDS: Registry = Registry(
    "command", ("nao.cli.search", "nao.cli.bench", "nao.cli.proxies", "nao.cli.predict_eval", "nao.cli.train", "nao.cli.report",
                "nao.cli.deploy", "nao.cli.dashboard"),
    "nao.commands",
)
