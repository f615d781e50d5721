"""Local search: hill-climb over one-change neighbours, restart at a local optimum.

On NAS-Bench-201 this simple method is a strong baseline (White et al., 2021, "Local
search is state of the art for NAS benchmarks"). This version uses first improvement:
neighbours of the current architecture are queried in random order and the search moves
as soon as one beats it; when all neighbours are worse it restarts from a random point.
Neighbours whose network (after pruning) was already asked for are skipped, so the budget
goes to new networks as it does for the other strategies.

>>> from nao.spaces import get_space
>>> s = LocalSearch(get_space("nb201"), seed=0)
>>> len(s.ask(1))
1
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from nao.registry import STRATEGIES
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy


@STRATEGIES.register("local")
class LocalSearch(Strategy):
    """First-improvement hill climbing with random restarts.

    Args:
        space: the search space.
        seed: RNG seed.
        first_improvement: move as soon as a better neighbour is found (else scan all
            neighbours and move to the best).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, first_improvement: bool = True, **base: Any) -> None:
        super().__init__(space, seed, **base)
        self.first_improvement = first_improvement
        self.current: Result | None = None
        self._queue: list[Architecture] = []  # neighbours of current not yet asked
        self._waiting: set[Hashable] = set()  # asked, result not yet told
        self._best_nbr: Result | None = None
        self._start: Architecture | None = None  # a restart point asked but not told
        self._seen: set[Hashable] = set()  # network keys asked for or told

    def _restart(self) -> list[Architecture]:
        self.current, self._queue, self._best_nbr = None, [], None
        self._start = self.space.sample(self.rng)
        for _ in range(100):  # prefer a network not asked for yet (bounded: the space may be exhausted)
            if self.network_key(self._start) not in self._seen:
                break
            self._start = self.space.sample(self.rng)
        self._waiting.add(self.space.key(self._start))
        self._seen.add(self.network_key(self._start))
        return [self._start]

    def ask(self, n: int) -> list[Architecture]:
        if self.current is None:
            return [] if self._start is not None else self._restart()
        out = []
        while self._queue and len(out) < n:
            arch = self._queue.pop()
            if self.network_key(arch) in self._seen:
                continue  # the same network as one already asked for
            self._seen.add(self.network_key(arch))
            self._waiting.add(self.space.key(arch))
            out.append(arch)
        if not out and not self._waiting:
            return self._restart()  # neighbourhood exhausted without improvement
        return out

    def tell(self, results: Sequence[Result]) -> None:
        for r in results:
            self._seen.add(self.network_key(r.arch))
            self._waiting.discard(self.space.key(r.arch))
            if self.current is None:
                if self._start is not None and self.space.key(r.arch) == self.space.key(self._start):
                    self._move(r)
                continue
            if self.score(r) > self.score(self.current):
                if self.first_improvement:
                    self._move(r)
                    continue
                if self._best_nbr is None or self.score(r) > self.score(self._best_nbr):
                    self._best_nbr = r
        self._queue = [a for a in self._queue if self.network_key(a) not in self._seen]
        if not self.first_improvement and not self._queue and not self._waiting and self._best_nbr is not None:
            self._move(self._best_nbr)

    def _move(self, result: Result) -> None:
        """Make ``result`` the current point and queue its neighbours in random order."""
        self.current, self._start, self._best_nbr = result, None, None
        nbrs = self.space.neighbours(result.arch)
        order = self.rng.permutation(len(nbrs))
        self._queue = [nbrs[i] for i in order]
        self._waiting.clear()
