"""Where a search gets zero-cost scores from, and what they cost it.

A :class:`ZeroCost` answers ``scores(archs)`` (a ``(n, proxies)`` array) and charges each distinct network's
scoring once: :attr:`ZeroCost.spent_s` is the seconds a search has paid for proxies so far, added to its
compute budget beside its trainings. Two backends: :class:`TableZeroCost` reads a proxy file (the seconds it
records per cell are the price) and :class:`LiveZeroCost` builds and scores each network on the run's
minibatch (the measured seconds are the price). Strategies get one through their ``zero_cost`` keyword.

On a benchmark table the price is this CPU's seconds counted as GPU seconds: a GPU scores a cell in tens of
milliseconds, so the count overstates the proxies' cost, which is the safe side for a comparison.

>>> import numpy as np
>>> from nao.spaces import get_space
>>> space = get_space("nb201")
>>> zc = FunctionZeroCost(space, ("size",), lambda a: ([float(sum(a.tokens))], 0.5))
>>> a, b = space.sample(np.random.default_rng(0)), space.sample(np.random.default_rng(1))
>>> zc.scores([a, b, a]).shape, zc.spent_s  # three lookups, two networks paid for
((3, 1), 1.0)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence

import numpy as np

from nao.proxies.aggregate import AGGREGATE_PROXIES, aggregate, quantile_features
from nao.spaces.base import Architecture, SearchSpace


class ZeroCost(ABC):
    """Zero-cost scores of architectures, memoised per pruned network and paid for once each.

    Attributes:
        space: the search space.
        names: proxy names, the columns of :meth:`scores`.
        members: the proxies the aggregate and the predictor features use (those of ``names`` among
            :data:`~nao.proxies.aggregate.AGGREGATE_PROXIES`, else all of ``names``).
        spent_s: seconds charged so far.
    """

    def __init__(self, space: SearchSpace, names: Sequence[str]) -> None:
        self.space = space
        self.names = tuple(names)
        self.members = tuple(n for n in AGGREGATE_PROXIES if n in self.names) or self.names
        self._cols = [self.names.index(m) for m in self.members]
        self._cache: dict[Hashable, np.ndarray] = {}
        self._reference: np.ndarray | None = None
        self.spent_s = 0.0

    @abstractmethod
    def _score(self, arch: Architecture) -> tuple[np.ndarray, float]:
        """One pruned network's scores (aligned with :attr:`names`) and the seconds they cost."""

    def scores(self, archs: Sequence[Architecture]) -> np.ndarray:
        """``(len(archs), len(names))`` raw scores; networks not scored before are scored and paid for now."""
        out = np.empty((len(archs), len(self.names)))
        for i, arch in enumerate(archs):
            pruned = self.space.prune(arch)
            key = self.space.key(pruned)
            if key not in self._cache:
                values, seconds = self._score(pruned)
                self._cache[key] = np.asarray(values, dtype=float)
                self.spent_s += float(seconds)
            out[i] = self._cache[key]
        return out

    @property
    def scored(self) -> int:
        """Distinct networks scored (and paid for) so far."""
        return len(self._cache)

    def aggregate(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The label-free aggregate of ``archs``, ranked among themselves (higher is better)."""
        return aggregate(self.scores(archs)[:, self._cols])

    def set_reference(self, archs: Sequence[Architecture]) -> None:
        """Make ``archs`` (a uniform random sample of the space, e.g. a seed pool) the population that
        :meth:`features` ranks against, so a cell's features never change as more cells are scored."""
        self._reference = self.scores(archs)[:, self._cols]

    def features(self, archs: Sequence[Architecture]) -> np.ndarray:
        """``(n, members)`` quantiles of ``archs``' scores in the reference population (0..1): the one set by
        :meth:`set_reference`, else every network scored so far."""
        values = self.scores(archs)[:, self._cols]
        reference = self._reference if self._reference is not None else np.stack(list(self._cache.values()))[:, self._cols]
        return quantile_features(values, reference)


    def aggregate_vs_reference(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The aggregate with each proxy's rank taken in the reference population: ``sum log quantile``
        (quantiles floored at half a rank), so a cell's value does not depend on which others are scored with it."""
        q = self.features(archs)
        n_ref = len(self._reference) if self._reference is not None else len(self._cache)
        return np.log(np.maximum(q, 0.5 / max(n_ref, 1))).sum(axis=1)


class FunctionZeroCost(ZeroCost):
    """Scores from a function ``arch -> (values, seconds)`` (tests, and proxies computed elsewhere)."""

    def __init__(self, space: SearchSpace, names: Sequence[str],
                 fn: Callable[[Architecture], tuple[Sequence[float], float]]) -> None:
        super().__init__(space, names)
        self._fn = fn

    def _score(self, arch: Architecture) -> tuple[np.ndarray, float]:
        values, seconds = self._fn(arch)
        return np.asarray(values, dtype=float), float(seconds)


class TableZeroCost(ZeroCost):
    """Scores read from a proxy file (:class:`~nao.proxies.table.ProxyTable`); its ``zc_time_s`` is the price."""

    def __init__(self, table) -> None:  # a ProxyTable (not imported: keeps this module light)
        super().__init__(table.space, table.names)
        self.table = table

    def _score(self, arch: Architecture) -> tuple[np.ndarray, float]:
        row = self.table.row(arch)
        return np.array([self.table.values[n][row] for n in self.names]), float(self.table.seconds[row])


class LiveZeroCost(ZeroCost):
    """Scores computed now: each network built untrained (seeded) and scored on the run's minibatch."""

    def __init__(self, space: SearchSpace, batch, names: Sequence[str], num_classes: int, seed: int = 0,
                 image_size: int = 32) -> None:
        super().__init__(space, names)
        self.batch, self.num_classes, self.seed, self.image_size = batch, num_classes, seed, image_size

    def _score(self, arch: Architecture) -> tuple[np.ndarray, float]:
        from nao.proxies.table import score_cell

        values, seconds = score_cell(self.space, arch, self.batch, self.names, self.num_classes, self.seed,
                                     self.image_size)
        return np.array([values[n] for n in self.names]), seconds
