"""Random search: uniform samples from the space, never proposing a network twice.

A sample equal after pruning to one already proposed (another table row of the same network,
:meth:`~nao.strategies.base.Strategy.network_key`) is rejected like an exact repeat.

>>> from nao.spaces import get_space
>>> s = RandomSearch(get_space("nb201"), seed=0)
>>> len(s.ask(5))
5
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from nao.registry import STRATEGIES
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy

# Rejection sampling gives up after this many consecutive repeats (the space is nearly exhausted).
_MAX_REJECTS = 10_000


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    """Uniform random sampling without replacement (by the pruned network's key)."""

    def __init__(self, space: SearchSpace, seed: int = 0, **base: Any) -> None:
        super().__init__(space, seed, **base)
        self._proposed: set[Hashable] = set()  # network keys

    def ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        rejects = 0
        while len(out) < n and rejects < _MAX_REJECTS:
            arch = self.space.sample(self.rng)
            key = self.network_key(arch)
            if key in self._proposed:
                rejects += 1
                continue
            rejects = 0
            self._proposed.add(key)
            out.append(arch)
        return out

    def tell(self, results: Sequence[Result]) -> None:
        for r in results:
            self._proposed.add(self.network_key(r.arch))
