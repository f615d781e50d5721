"""The evaluator interface: score a batch of architectures.

>>> from nao.evaluators.base import Evaluator
>>> Evaluator.__abstractmethods__
frozenset({'evaluate'})
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace


class Evaluator(ABC):
    """Maps architectures to :class:`Result` values.

    Batched on purpose: a supernet scores many architectures in one pass. An evaluator
    should return a failed result (not raise) for an architecture that cannot be trained;
    it raises :class:`nao.errors.NaoError` for user errors that make the whole run invalid.
    """

    space: SearchSpace
    #: Unit of :attr:`~nao.results.Result.cost`, named once per run (``result.json``'s ``cost_unit``):
    #: ``gpu_s`` (a table's training seconds), ``image_epochs``, ``token_epochs``, or ``s`` (seconds,
    #: where nothing more telling is known). An evaluator that leaves ``cost`` at 0 is never
    #: stopped by a compute budget.
    cost_unit: str = "s"
    #: Architectures one :meth:`evaluate` call scores; executors hand the evaluator this many at a time
    #: (a supernet scores a whole round at once). What executors read from an evaluator: this,
    #: :meth:`evaluate` and :meth:`close`.
    batch_size: int = 1

    @abstractmethod
    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        """One result per architecture, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (files, processes)."""
