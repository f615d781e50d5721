"""Regularized evolution (Real et al., 2019): tournament selection, mutate, age out the oldest.

With the default ``population=10, sample=3`` it matches the NAS-Bench-201 reference setting.

>>> from nao.spaces import get_space
>>> s = RegularizedEvolution(get_space("nb201"), seed=0)
>>> len(s.ask(3))  # the initial population is random
3
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

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

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 10, sample: int = 3) -> None:
        super().__init__(space, seed)
        if not (1 <= sample <= population):
            raise ValueError(f"need 1 <= sample ({sample}) <= population ({population})")
        self.population_size = population
        self.sample_size = sample
        self.population: deque[Result] = deque(maxlen=population)
        self._asked_initial = 0

    def ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n and self._asked_initial < self.population_size:
            out.append(self.space.sample(self.rng))
            self._asked_initial += 1
        if out or len(self.population) < self.population_size:
            # Children need a full population; until every initial member is told, wait.
            return out
        for _ in range(n):
            idx = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
            parent = max((self.population[i] for i in sorted(idx)), key=self.score)
            out.append(self.space.mutate(parent.arch, self.rng))
        return out

    def tell(self, results: Sequence[Result]) -> None:
        self.population.extend(results)
