"""Regularized evolution (Real et al., 2019): tournament selection, mutate, age out the oldest.

With the default ``population=10, sample=3`` it matches the NAS-Bench-201 reference setting.
The mutation is a uniformly random one-change neighbour of the parent among those whose network
(after pruning) was not asked for yet, so the budget goes to new networks as it does for the
other strategies; when every neighbour is known the child is a random new network.

>>> from nao.spaces import get_space
>>> s = RegularizedEvolution(get_space("nb201"), seed=0)
>>> len(s.ask(3))  # the initial population is random
3
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from typing import Any

from nao.registry import STRATEGIES
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy


@STRATEGIES.register("rea")
class RegularizedEvolution(Strategy):
    """Aging evolution.

    Args:
        space: the search space.
        seed: RNG seed.
        population: population size (oldest member dies when a child is added).
        sample: tournament size.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 10, sample: int = 3, **base: Any) -> None:
        super().__init__(space, seed, **base)
        if not (1 <= sample <= population):
            raise ValueError(f"need 1 <= sample ({sample}) <= population ({population})")
        self.population_size = population
        self.sample_size = sample
        self.population: deque[Result] = deque(maxlen=population)
        self._asked_initial = 0
        self._seen: set[Hashable] = set()  # network keys asked for or told

    def ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n and self._asked_initial < self.population_size:
            out += self.space.sample_distinct(self.rng, 1, self._seen, key=self.network_key) or [self.space.sample(self.rng)]
            self._seen.add(self.network_key(out[-1]))
            self._asked_initial += 1
        if out or len(self.population) < self.population_size:
            # Children need a full population; until every initial member is told, wait.
            return out
        for _ in range(n):
            idx = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
            parent = max((self.population[i] for i in sorted(idx)), key=self.score)
            out.append(self._child(parent.arch))
        return out

    def _child(self, parent: Architecture) -> Architecture:
        new = [a for a in self.space.neighbours(parent) if self.network_key(a) not in self._seen]
        if new:
            child = new[int(self.rng.integers(len(new)))]
        else:  # every neighbour's network is known: explore (an exhausted space repeats one, free)
            child = (self.space.sample_distinct(self.rng, 1, self._seen, key=self.network_key)
                     or [self.space.mutate(parent, self.rng)])[0]
        self._seen.add(self.network_key(child))
        return child

    def tell(self, results: Sequence[Result]) -> None:
        self.population.extend(results)
        self._seen.update(self.network_key(r.arch) for r in results)
