"""Executors run evaluations for the :class:`~nao.study.Study`.

An executor accepts architectures (``submit``) and hands back results as they finish
(``poll``). The sequential executor evaluates in submission order, in batches of the
evaluator's ``batch_size``, so a run is reproducible from its seed.

>>> from nao.executors import SequentialExecutor
>>> SequentialExecutor().capacity
1
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from nao.evaluators.base import Evaluator
from nao.registry import EXECUTORS
from nao.results import Result
from nao.spaces.base import Architecture


class Executor(ABC):
    """Runs an evaluator's work, possibly in parallel.

    ``capacity`` is how many evaluations the study should keep in flight; the study refills
    the executor as results come back.
    """

    capacity: int = 1

    def slots(self, evaluator: Evaluator) -> int:
        """How many evaluations the study should keep in flight for ``evaluator``."""
        return self.capacity

    @abstractmethod
    def submit(self, evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
        """Queue architectures for evaluation."""

    @abstractmethod
    def poll(self) -> list[Result]:
        """Block until at least one queued evaluation finishes and return the finished ones."""

    @property
    @abstractmethod
    def pending(self) -> int:
        """Number of submitted evaluations not yet returned by ``poll``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers."""


@EXECUTORS.register("sequential")
class SequentialExecutor(Executor):
    """Evaluates in this process, in order, ``evaluator.batch_size`` architectures at a time."""

    capacity = 1

    def slots(self, evaluator: Evaluator) -> int:
        # One batch at a time: strategies are asked for exactly what the evaluator scores in
        # one call, so sequential strategies (evolution, local search) see every result first.
        return max(1, int(getattr(evaluator, "batch_size", 1)))

    def __init__(self) -> None:
        self._queue: list[tuple[Evaluator, Architecture]] = []

    def submit(self, evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
        self._queue.extend((evaluator, a) for a in archs)

    def poll(self) -> list[Result]:
        if not self._queue:
            return []
        evaluator = self._queue[0][0]
        size = max(1, int(getattr(evaluator, "batch_size", 1)))
        batch = [a for _, a in self._queue[:size]]
        del self._queue[:size]
        return list(evaluator.evaluate(batch))

    @property
    def pending(self) -> int:
        return len(self._queue)
