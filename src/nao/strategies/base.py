"""The strategy interface: ask for architectures, be told their results.

>>> from nao.strategies.base import Strategy
>>> sorted(Strategy.__abstractmethods__)
['ask', 'tell']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nao.results import Objective, Result
from nao.spaces.base import Architecture, SearchSpace

if TYPE_CHECKING:
    from nao.proxies.source import ZeroCost


class Strategy(ABC):
    """A search strategy driven by ask/tell.

    ``ask(n)`` proposes up to ``n`` architectures (it may return fewer, or ones already
    evaluated: the :class:`~nao.study.Study` answers those from its history without
    spending budget). ``tell`` receives results in the order asked, test metrics removed.
    Strategies own their RNG (seeded in the constructor) and hold no global state, so a
    run is a pure function of the seed and the sequence of results told. ``tell`` must not
    depend on how results are chunked into calls (a resumed run replays them in batches).

    Every strategy's constructor takes, besides its own options, the keywords ``objective``
    (:attr:`objective`; default ``"val_acc"``), ``feasible`` (:attr:`feasible`) and ``zero_cost``
    (:attr:`zero_cost`), and passes them on to this one.
    """

    #: The validation metric optimised and its direction (the :class:`~nao.study.Study` checks it is
    #: its own); strategies rank only through :meth:`score`.
    objective: Objective
    #: Given by a constrained search (:meth:`~nao.constraints.Feasibility.accepts`) to strategies
    #: that generate candidates in bulk (NAO): only architectures it accepts are generated, so
    #: no proposal has to be refused (and a round redone) afterwards. None: no filter.
    feasible: Callable[[Architecture], bool] | None
    #: Given by a search with zero-cost proxies (:mod:`nao.proxies.source`): scores of untrained networks,
    #: each paid for once (its ``spent_s`` joins the search's compute). Strategies that use it say how;
    #: the others ignore it. None: no proxies.
    zero_cost: ZeroCost | None
    #: True for strategies that cannot run without :attr:`zero_cost` (runs refuse them before they start).
    needs_zero_cost: bool = False

    def __init__(self, space: SearchSpace, seed: int = 0, *, objective: Objective | str = "val_acc",
                 feasible: Callable[[Architecture], bool] | None = None, zero_cost: ZeroCost | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.objective = Objective.of(objective)  # ConfigError for a test metric
        self.feasible = feasible
        self.zero_cost = zero_cost

    @abstractmethod
    def ask(self, n: int) -> list[Architecture]:
        """Up to ``n`` proposals (an empty list means the strategy has nothing left)."""

    @abstractmethod
    def tell(self, results: Sequence[Result]) -> None:
        """Results for previously asked architectures."""

    def round_left(self) -> int | None:
        """Proposals of the current round not yet handed out; None for a strategy without rounds
        (one that decides each proposal when asked). Progress lines use it for a round's ETA."""
        return None

    def network_key(self, arch: Architecture) -> Hashable:
        """The key of ``arch`` after :meth:`~nao.spaces.base.SearchSpace.prune`: equal for two
        table rows that build the same network. Every built-in strategy skips proposals whose
        network it has already asked for, so budgets are compared on distinct networks."""
        return self.space.key(self.space.prune(arch))

    def score(self, result: Result) -> float:
        """Higher is better: :attr:`objective`'s metric, negated when it is minimised; failed: ``-inf``."""
        return self.objective.score(result)
