"""Baselines warm-started by zero-cost proxies, as separate arms beside their plain versions.

* ``random-zc``: proxy-screened random search. Score a pool of random unseen cells with the proxies, query
  them best aggregate first; a fresh pool when one is used up. With a pool of one cell it is random search.
* ``local-zc``: local search whose starting points (the first one, and every restart at a local optimum)
  are the best unqueried cells of such a pool instead of random cells: NASLib's zero-cost warm start for
  local search (White et al., "How Powerful are Performance Predictors in NAS?", NeurIPS'21).

Both need the run's zero-cost proxies (``zero_cost``) and pay for every cell they score.

>>> import numpy as np
>>> from nao.spaces import get_space
>>> from nao.proxies.source import FunctionZeroCost
>>> space = get_space("nb201")
>>> zc = FunctionZeroCost(space, ("convs",), lambda a: ([float(sum(t == 3 for t in a.tokens))], 0.1))
>>> s = ProxyScreenedRandom(space, seed=0, pool=50, zero_cost=zc)
>>> sum(t == 3 for t in s.ask(1)[0].tokens) >= 3  # the pool's best by the proxy comes first
True
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from nao.errors import ConfigError
from nao.registry import STRATEGIES
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.local import LocalSearch
from nao.strategies.random import RandomSearch

#: Cells per scored pool (the NAO strategy's ``zc_pool`` default).
DEFAULT_POOL = 1000


class _ProxyPool:
    """Random unseen cells in aggregate order, best first; refilled with a fresh pool when empty."""

    def __init__(self, owner: Any, pool: int) -> None:
        if owner.zero_cost is None:
            raise ConfigError(f"strategy {owner.registered_name!r} needs zero-cost proxies: give the search a proxy "
                              f"file (--proxies FILE, written by nao proxies)")
        if int(pool) < 1:
            raise ConfigError(f"{owner.registered_name} strategy option pool must be >= 1, got {pool}")
        self.owner, self.pool = owner, int(pool)
        self._queue: list[Architecture] = []

    def pop(self, taken: set[Hashable]) -> Architecture | None:
        """The best-rated cell not in ``taken`` (network keys); None when the space has no unseen cell left."""
        while True:
            while self._queue:
                arch = self._queue.pop(0)
                if self.owner.network_key(arch) not in taken:
                    return arch
            fresh = self.owner.space.sample_distinct(self.owner.rng, self.pool, taken, key=self.owner.network_key,
                                                     accept=self.owner.feasible)
            if not fresh:
                return None
            order = np.argsort(-self.owner.zero_cost.aggregate(fresh), kind="stable")
            self._queue = [fresh[i] for i in order]


@STRATEGIES.register("random-zc")
class ProxyScreenedRandom(RandomSearch):
    """Random search over pools of ``pool`` random cells, each queried in the proxies' aggregate order."""

    registered_name = "random-zc"
    needs_zero_cost = True

    def __init__(self, space: SearchSpace, seed: int = 0, pool: int = DEFAULT_POOL, **base: Any) -> None:
        super().__init__(space, seed, **base)
        self._pool = _ProxyPool(self, pool)

    def ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            arch = self._pool.pop(self._proposed)
            if arch is None:
                break
            self._proposed.add(self.network_key(arch))
            out.append(arch)
        return out


@STRATEGIES.register("local-zc")
class ProxyStartedLocal(LocalSearch):
    """Local search starting (and restarting) from the proxies' best unqueried cells of a scored pool."""

    registered_name = "local-zc"
    needs_zero_cost = True

    def __init__(self, space: SearchSpace, seed: int = 0, first_improvement: bool = True, pool: int = DEFAULT_POOL,
                 **base: Any) -> None:
        super().__init__(space, seed, first_improvement, **base)
        self._pool = _ProxyPool(self, pool)

    def _restart(self) -> list[Architecture]:
        start = self._pool.pop(self._seen)
        if start is None:
            return super()._restart()
        self.current, self._queue, self._best_nbr = None, [], None
        self._start = start
        self._waiting.add(self.space.key(start))
        self._seen.add(self.network_key(start))
        return [start]
