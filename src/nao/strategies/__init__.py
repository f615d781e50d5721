"""Search strategies (ask/tell): ``nao`` and the baselines ``random``, ``rea``, ``local``, ``bananas``, and
Optuna's own samplers as peers (``optuna-tpe``, ``optuna-gp``; the ``optuna`` extra).

>>> from nao.strategies import strategy_names
>>> "random" in strategy_names()
True
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from nao.errors import ConfigError
from nao.registry import STRATEGIES
from nao.results import Objective
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy


def make_strategy(name: str, space: SearchSpace, seed: int = 0, *, objective: Objective | str = "val_acc",
                  feasible: Callable[[Architecture], bool] | None = None, zero_cost: Any = None,
                  **kwargs: Any) -> Strategy:
    """Build the registered strategy ``name`` for ``space``, ranking by ``objective`` and, in a
    constrained search, generating only what ``feasible`` accepts; ``zero_cost``
    (:class:`~nao.proxies.source.ZeroCost`) gives it zero-cost proxies (:class:`Strategy`).

    Raises :class:`~nao.errors.ConfigError` for an unknown name or option (:func:`check_strategy_options`).
    """
    check_strategy_options(name, kwargs)
    return STRATEGIES.get(name)(space, seed=seed, objective=objective, feasible=feasible, zero_cost=zero_cost,
                                **kwargs)


# Constructor arguments the run wires itself (every strategy takes them): not options a user sets.
_WIRED = ("self", "space", "seed", "objective", "feasible", "zero_cost")


def check_strategy_options(name: str, options: Mapping[str, Any], space: SearchSpace | None = None) -> None:
    """Raise :class:`~nao.errors.ConfigError` naming the first option strategy ``name`` does not take,
    or, given the ``space``, the first value its constructor refuses.

    Run kinds call it before a run directory exists, so a misspelt option or a bad value
    (``per_round=0``) is an input error, not a run that fails once started.

    >>> check_strategy_options("nao", {"seed_archs": 5})
    >>> check_strategy_options("local", {"seed_archs": 5})
    Traceback (most recent call last):
    ...
    nao.errors.ConfigError: unknown option 'seed_archs' of strategy 'local'; it takes: first_improvement
    """
    known: list[str] = []
    for klass in STRATEGIES.get(name).__mro__:  # a constructor with **kwargs passes them on to its base's
        params = inspect.signature(klass.__init__).parameters
        known += [k for k, p in params.items() if k not in _WIRED and k not in known
                  and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    for key in options:
        if key not in known:
            raise ConfigError(f"unknown option {key!r} of strategy {name!r}; it takes: {', '.join(known) or 'none'}")
    if space is not None:  # constructors check their values (and build nothing expensive)
        klass = STRATEGIES.get(name)
        wired: dict[str, Any] = {}
        if klass.needs_zero_cost:  # a stand-in source: whether the run has proxies is the kind's check
            from nao.proxies.source import FunctionZeroCost

            wired["zero_cost"] = FunctionZeroCost(space, ("stand_in",), lambda _arch: ([0.0], 0.0))
        try:
            klass(space, seed=0, **wired, **options)
        except ConfigError:
            raise
        except (TypeError, ValueError) as err:  # e.g. per_round="ten": int() refuses it
            raise ConfigError(f"strategy {name!r}: bad option value ({err})") from err


def strategy_names() -> list[str]:
    return STRATEGIES.names()


__all__ = ["Strategy", "check_strategy_options", "make_strategy", "strategy_names"]
