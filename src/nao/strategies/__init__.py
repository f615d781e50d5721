"""Search strategies (ask/tell): ``nao`` and the baselines ``random``, ``rea``, ``local``, ``bananas``.

>>> from nao.strategies import strategy_names
>>> "random" in strategy_names()
True
"""

from __future__ import annotations

import importlib
from typing import Any

from nao.registry import STRATEGIES
from nao.spaces.base import SearchSpace
from nao.strategies.base import Strategy

_STRATEGY_MODULES = ("nao.strategies.random", "nao.strategies.rea", "nao.strategies.local", "nao.strategies.nao",
                     "nao.strategies.bananas")


def _load_all() -> None:
    for mod in _STRATEGY_MODULES:
        importlib.import_module(mod)  # a listed module that is missing is an error, not an absence


def make_strategy(name: str, space: SearchSpace, seed: int = 0, **kwargs: Any) -> Strategy:
    """Build the registered strategy ``name`` for ``space``."""
    _load_all()
    return STRATEGIES.get(name)(space, seed=seed, **kwargs)


def strategy_names() -> list[str]:
    _load_all()
    return STRATEGIES.names()


__all__ = ["Strategy", "make_strategy", "strategy_names"]
