"""Multi-fidelity NAO: the controller learns from the scores of every rung.

:class:`MultiFidelityNAO` is NAO (:class:`nao.strategies.nao.NAOStrategy`, same rounds, same
proposals) whose controller is fitted on one target per architecture built from all the
fidelities it was scored at (:func:`nao.fidelity.targets.fidelity_targets`, default
``calibrated``). A scheduler asks it only for *new* candidates (trained at the lowest rung);
promotions are the scheduler's. A result's fidelity is its ``fidelity`` (epochs trained); a result
without one counts as the top fidelity.

It also exposes :meth:`MultiFidelityNAO.predicted`, the controllers' view of a candidate, for
a scheduler that wants to rank a rung by the predictor as well as by the measured score.

>>> from nao.spaces import get_space
>>> s = MultiFidelityNAO(get_space("nb201"), seed=0, seed_archs=4)
>>> len(s.ask(10))
4
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from nao.fidelity.targets import fidelity_targets
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.nao import NAOStrategy


def fidelity_of(result: Result) -> float | None:
    """Epochs behind ``result`` (:attr:`Result.fidelity`); None if unknown."""
    return None if result.fidelity is None else float(result.fidelity)


class MultiFidelityNAO(NAOStrategy):
    """NAO fitted on the scores of all rungs.

    Args:
        space, seed: as :class:`~nao.strategies.nao.NAOStrategy`.
        targets: ``calibrated`` (default), ``raw`` or ``top``: how scores of several fidelities
            become one target (:mod:`nao.fidelity.targets`).
        max_fidelity: the top rung's fidelity (results without a fidelity count as this).
        **kwargs: NAO's options.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, *, targets: str = "calibrated",
                 max_fidelity: float = math.inf, **kwargs: Any) -> None:
        super().__init__(space, seed, **kwargs)
        fidelity_targets({}, targets)  # ConfigError for an unknown mode, before any work
        self.targets, self.max_fidelity = targets, float(max_fidelity)
        self._scores: dict[Hashable, dict[float, float]] = {}

    def tell(self, results: Sequence[Result]) -> None:
        for r in results:
            rec = self._note(r.arch)
            value = self.score(r)
            f = fidelity_of(r)
            self._scores.setdefault(self.space.key(r.arch), {})[self.max_fidelity if f is None else f] = value
            if rec.value is None or not math.isfinite(rec.value):
                rec.value = value  # told: no longer outstanding (the targets come from _scores)

    def _evaluated(self) -> tuple[list[Architecture], np.ndarray]:
        top = max((f for by in self._scores.values() for f in by), default=None)
        t = fidelity_targets(self._scores, self.targets, top)
        recs = sorted((r for k, r in self._records.items() if k in t), key=lambda r: r.order)
        return [r.arch for r in recs], np.array([t[self.space.key(r.arch)] for r in recs], dtype=float)

    def predicted(self, archs: Sequence[Architecture]) -> np.ndarray | None:
        """The controllers' mean prediction (their normalised scale) for ``archs``; None before the first fit."""
        if not self._models or not archs:
            return None
        return np.mean([m.predict(m.tokens(list(archs))).detach().cpu().numpy() for m in self._models], axis=0)
