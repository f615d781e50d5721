"""SemiNAS (Luo, Tan, Wang, Qin, Chen, Liu; NeurIPS 2020): NAO whose controllers learn from pseudo-labels too.

>>> from nao.spaces import get_space
>>> SemiNASStrategy(get_space("nb201")).semi_supervised
1000
"""

from __future__ import annotations

from typing import Any

from nao.registry import STRATEGIES
from nao.spaces.base import SearchSpace
from nao.strategies.nao import NAOStrategy

# Pseudo-labelled architectures per SemiNAS round. The paper's NASBench-101 setting uses
# M = 10,000 (about 2.4% of its 423k cells; official script default ``--m 10000``); the
# same share of NB201's 15,625 cells would be ~375. 1000 (as many as the reconstruction
# pre-training sees) keeps the second stage's cost at a fixed number of steps (the pool
# size only changes the number of epochs) and covers a larger share of a small space.
SEMINAS_UNLABELLED = 1000


@STRATEGIES.register("seminas")
class SemiNASStrategy(NAOStrategy):
    """SemiNAS (Luo, Tan, Wang, Qin, Chen, Liu; NeurIPS 2020): NAO whose controllers, after each
    fit on the evaluated architectures, pseudo-label ``semi_supervised`` random unevaluated
    ones and train again on both (labelled pairs repeated ten times, as the official code).

    A registered name rather than only the ``semi_supervised`` option of ``nao`` so that
    ``nao bench --strategies nao,seminas`` compares the two on equal terms; everything else
    (proposal, rounds, defaults) is NAO's, so an improvement to one is one to both.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, *, semi_supervised: int = SEMINAS_UNLABELLED,
                 **kwargs: Any) -> None:
        super().__init__(space, seed, semi_supervised=semi_supervised, **kwargs)
