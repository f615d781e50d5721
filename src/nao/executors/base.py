"""The executor interface and the bookkeeping every executor shares.

:class:`Executor` is what the :class:`~nao.study.Study` talks to; :func:`evaluate_guarded`
turns an evaluator's ordinary exceptions into failed results (used inside every worker);
``_Retrier``, ``_EvaluatorShipping`` and ``_Task`` are the parallel executors' shared parts.

>>> from nao.executors.base import batch_size_of
>>> class Pair: batch_size = 2
>>> batch_size_of(Pair()), batch_size_of(object())
(2, 1)
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nao.errors import NaoError
from nao.evaluators.base import Evaluator
from nao.results import Result
from nao.spaces.base import Architecture

log = logging.getLogger(__name__)

# How much of a failing evaluation's traceback is kept in ``Result.info`` (journal size).
_MAX_TRACEBACK_CHARS = 2_000


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

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batch_size_of(evaluator: Evaluator) -> int:
    """Architectures the evaluator scores in one call (``batch_size`` attribute, default 1)."""
    return max(1, int(getattr(evaluator, "batch_size", 1)))


def _chunks(archs: Sequence[Architecture], size: int) -> list[list[Architecture]]:
    return [list(archs[i : i + size]) for i in range(0, len(archs), size)]


@dataclass
class _Fatal:
    """A NaoError raised inside a worker, carried back to be raised in the caller."""

    error: NaoError


def evaluate_guarded(evaluator: Evaluator, archs: Sequence[Architecture]) -> list[Result] | _Fatal:
    """``evaluator.evaluate(archs)``, with ordinary exceptions turned into failed results.

    Used by every executor (and inside workers), so a crashing evaluation never stops a
    search. A :class:`NaoError` is returned as :class:`_Fatal` for the caller to raise.
    """
    start = time.perf_counter()
    try:
        results = list(evaluator.evaluate(archs))
    except NaoError as e:
        return _Fatal(e)
    except Exception as e:  # noqa: BLE001 - any evaluator bug becomes a failed result
        cost = time.perf_counter() - start
        message = f"{type(e).__name__}: {e}"
        tb = traceback.format_exc()[-_MAX_TRACEBACK_CHARS:]
        return [replace(Result.failed(a, message, cost), info={"traceback": tb}) for a in archs]
    if len(results) != len(archs):
        message = f"evaluator {type(evaluator).__name__} returned {len(results)} results for {len(archs)} architectures"
        return [Result.failed(a, message) for a in archs]
    return results


def _unwrap(outcome: list[Result] | _Fatal) -> list[Result]:
    if isinstance(outcome, _Fatal):
        raise outcome.error
    return outcome


def _log_failures(results: Sequence[Result]) -> None:
    for r in results:
        if not r.ok:
            log.warning("evaluation failed (%s): %s", r.error, r.arch.tokens)


# -- shared bookkeeping of parallel executors -----------------------------------------------


@dataclass
class _Task:
    """One batch of architectures and how often it has been started."""

    archs: list[Architecture]
    token: str  # which evaluator evaluates it (see _EvaluatorShipping)
    attempts: int = 0


@dataclass
class _Retrier:
    """Decides what happens to a task whose worker died: run again, or fail it."""

    max_retries: int

    def on_death(self, task: _Task, reason: str) -> list[Result] | None:
        """``None`` to retry ``task``; otherwise its failed results (retries used up)."""
        if task.attempts <= self.max_retries:
            log.warning("%s; retrying (attempt %d of %d)", reason, task.attempts + 1, self.max_retries + 1)
            return None
        message = f"{reason}; gave up after {task.attempts} attempt(s)"
        log.warning("%s", message)
        return [replace(Result.failed(a, message), info={"attempts": task.attempts}) for a in task.archs]


def _in_use(by_token: dict[str, Any], tasks: Any) -> dict[str, Any]:
    """The entries of ``by_token`` that queued or running tasks still need (a retry needs its evaluator)."""
    needed = {t.token for t in tasks}
    return {k: v for k, v in by_token.items() if k in needed}


def _with_attempts(results: list[Result], attempts: int) -> list[Result]:
    # Only retried evaluations carry the count, so ordinary journals stay minimal.
    if attempts <= 1:
        return results
    return [replace(r, info={**r.info, "attempts": attempts}) for r in results]


@dataclass
class _EvaluatorShipping:
    """Gives each evaluator a token so workers deserialise it once, not once per task."""

    tokens: dict[int, tuple[str, Evaluator]] = field(default_factory=dict)

    def token(self, evaluator: Evaluator) -> tuple[str, bool]:
        """The evaluator's token and whether it is new."""
        entry = self.tokens.get(id(evaluator))
        if entry is not None and entry[1] is evaluator:
            return entry[0], False
        # Unique across executors and runs: Ray's worker processes outlive an executor.
        token = uuid.uuid4().hex
        self.tokens[id(evaluator)] = (token, evaluator)  # holding it keeps id() unique
        return token, True
