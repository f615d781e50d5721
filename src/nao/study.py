"""The Study: one ask -> evaluate -> journal -> tell loop, with honest budget counting.

The budget counts unique architectures (by the space's ``key``) that were evaluated,
failed ones included. A proposal already evaluated is answered from the history at no
cost; one already in flight waits for that evaluation. Strategies only ever see
validation-side metrics (:func:`nao.results.search_view`).

A search may also be bounded by compute: ``run(budget, max_cost=C)`` starts no evaluation once
the results recorded so far cost ``C`` or more (``Result.cost``, in the evaluator's
``cost_unit``). Evaluations already running finish and are recorded, so a run overshoots ``C`` by
at most the cost of the evaluations in flight when the bound is reached (one evaluation with the
sequential executor). Replayed journal results count at their recorded cost.

Resuming replays a journal: the strategy is rebuilt from its seed and the loop runs again,
with recorded architectures answered from the journal instead of the evaluator, so a
sequential run that is interrupted and resumed ends exactly as an uninterrupted one.

>>> import numpy as np
>>> from nao.spaces import get_space
>>> from nao.strategies import make_strategy
>>> from nao.evaluators.base import Evaluator
>>> from nao.results import Result
>>> class Count(Evaluator):
...     def __init__(self, space): self.space = space
...     def evaluate(self, archs):
...         return [Result(a, "ok", {"val_acc": sum(a.tokens) / 24}) for a in archs]
>>> space = get_space("nb201")
>>> study = Study(space, make_strategy("random", space, seed=0), Count(space))
>>> best = study.run(budget=20)
>>> study.n_evaluated
20
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence

from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.executors import Executor, SequentialExecutor
from nao.results import Objective, Result, best, search_view
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy

log = logging.getLogger(__name__)

# After this many consecutive asks that yield nothing new to evaluate, the strategy is
# considered exhausted (it only re-proposes known architectures).
_MAX_IDLE_ASKS = 200


def agreed_objective(strategy: Strategy, objective: Objective | str | None) -> Objective:
    """``objective`` (default: the strategy's), checked to be what ``strategy`` ranks by.

    ValueError when they differ: the Study would keep one best and the strategy chase another.
    """
    if objective is None:
        return strategy.objective
    wanted = Objective.of(objective)  # ConfigError for a test metric
    if wanted != strategy.objective:
        raise ValueError(f"the study optimises {wanted.metric}:{wanted.mode} but the strategy ranks by "
                         f"{strategy.objective.metric}:{strategy.objective.mode}: build it with the same objective")
    return wanted


class Study:
    """Runs a strategy against an evaluator under a budget of unique evaluations.

    Args:
        space: the search space.
        strategy: proposes architectures.
        evaluator: scores them.
        executor: runs evaluations (default: sequential, in this process).
        journal: optional object with ``append(result)`` called once per new evaluation.
        objective: the validation metric optimised and its direction (``"val_acc"``, ``"val_ppl"``,
            ``Objective("val_score", "max")``); default: the strategy's, which it must equal
            (the strategy is built with it: ``make_strategy(..., objective=...)``).
        replay: results from a previous run's journal, answered without evaluating.
        callbacks: called with each new result after it is journaled (progress bars, logs).
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        evaluator: Evaluator,
        executor: Executor | None = None,
        journal=None,
        objective: Objective | str | None = None,
        replay: Sequence[Result] = (),
        callbacks: Sequence[Callable[[Result], None]] = (),
    ) -> None:
        self.space = space
        self.strategy = strategy
        self.evaluator = evaluator
        self.executor = executor or SequentialExecutor()
        self.journal = journal
        self.objective = agreed_objective(strategy, objective)
        self.callbacks = list(callbacks)
        self.history: list[Result] = []  # unique evaluations, in completion order
        self._by_key: dict[Hashable, Result] = {}
        self._in_flight: dict[Hashable, int] = {}  # key -> number of asks waiting on it
        self._replay: dict[Hashable, Result] = {space.key(r.arch): r for r in replay}

    # -- bookkeeping -----------------------------------------------------------------------
    @property
    def n_evaluated(self) -> int:
        """Unique architectures evaluated so far (the budget's unit)."""
        return len(self.history)

    @property
    def spent_cost(self) -> float:
        """Compute of the evaluations recorded so far (``Result.cost``, the evaluator's unit)."""
        return math.fsum(r.cost for r in self.history)

    def best(self) -> Result | None:
        """The ok result with the best objective, earliest first on ties."""
        return best(self.history, self.objective)

    def _record(self, result: Result) -> None:
        key = self.space.key(result.arch)
        self.history.append(result)
        self._by_key[key] = result
        if key in self._replay:
            self._replay.pop(key)
        elif self.journal is not None:
            self.journal.append(result)
        for cb in self.callbacks:
            cb(result)

    # -- one step --------------------------------------------------------------------------
    def ask(self, n: int) -> tuple[list[Architecture], list[Result]]:
        """Ask the strategy for ``n`` proposals; split them into new ones and known results.

        Returns ``(to_evaluate, cached)``: architectures nobody has evaluated or queued yet
        (unique by key), and history results for proposals already evaluated.
        """
        new: list[Architecture] = []
        cached: list[Result] = []
        for arch in self.strategy.ask(n):
            self.space.check(arch)
            key = self.space.key(arch)
            if key in self._by_key:
                cached.append(self._by_key[key])
            elif key in self._in_flight:
                self._in_flight[key] += 1
            elif len(new) < n:  # proposals beyond n are dropped unseen: never spend more than asked
                self._in_flight[key] = 1
                new.append(arch)
        return new, cached

    def tell(self, results: Sequence[Result]) -> None:
        """Record newly evaluated results and pass them (test metrics removed) to the strategy."""
        told: list[Result] = []
        for r in results:
            key = self.space.key(r.arch)
            waiting = self._in_flight.pop(key, 1)
            if key not in self._by_key:
                self._record(r)
            told.extend([search_view(r)] * waiting)
        if told:
            self.strategy.tell(told)

    # -- the loop --------------------------------------------------------------------------
    def run(self, budget: int, max_cost: float | None = None) -> Result | None:
        """Evaluate until ``budget`` unique architectures are done, or (with ``max_cost``) until the
        recorded evaluations cost ``max_cost`` or more; return the best result."""
        check_budget(budget, self.space)
        check_max_cost(max_cost)
        idle = 0
        while self.n_evaluated < budget:
            room = budget - self.n_evaluated - self.executor.pending
            slots = min(room, self.executor.slots(self.evaluator) - self.executor.pending)
            if self.cost_reached(max_cost):
                slots = 0  # compute spent: start nothing more, let what runs finish
            if slots > 0 and idle < _MAX_IDLE_ASKS:
                new, cached = self.ask(slots)
                if cached:
                    self.strategy.tell([search_view(r) for r in cached])
                idle = 0 if new else idle + 1
                self._dispatch(new)
                # Nothing in flight: either nothing new was proposed (ask again, counted by `idle`)
                # or every proposal was answered from the replayed journal (keep going).
                if self.executor.pending == 0:
                    continue
            if self.executor.pending == 0:
                if self.n_evaluated < budget and slots > 0:
                    log.warning("strategy proposed nothing new %d times in a row; stopping early", idle)
                break
            self.tell(self.executor.poll())
            idle = 0
        return self.best()

    def cost_reached(self, max_cost: float | None) -> bool:
        """Whether ``max_cost`` (``None``: no bound) is spent."""
        return max_cost is not None and self.spent_cost >= max_cost

    def _dispatch(self, archs: list[Architecture]) -> None:
        """Answer replayed architectures from the journal; submit the rest to the executor."""
        replayed = [self._replay[k] for k in map(self.space.key, archs) if k in self._replay]
        fresh = [a for a in archs if self.space.key(a) not in self._replay]
        if replayed:
            self.tell(replayed)
        if fresh:
            self.executor.submit(self.evaluator, fresh)


def check_budget(budget: int, space: SearchSpace, maximum: int | None = None, where: str = "") -> None:
    """The one budget rule: at least 1, at most the space's size and ``maximum`` (a run kind's own
    bound, e.g. the rows of a benchmark table, named by ``where``). Run kinds call it before a run
    directory exists; :meth:`Study.run` calls it again for direct library use.

    >>> from nao.spaces import get_space
    >>> check_budget(100, get_space("nb201"))
    >>> check_budget(20_000, get_space("nb201"))
    Traceback (most recent call last):
    ...
    nao.errors.ConfigError: --budget 20000 exceeds the 15625 architectures in space 'nb201'
    """
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise ConfigError(f"--budget must be a whole number, got {budget!r}")
    if budget < 1:
        raise ConfigError(f"--budget must be at least 1, got {budget}")
    size = space.size()
    if size is not None and budget > size:
        raise ConfigError(f"--budget {budget} exceeds the {size} architectures in space {space.name!r}")
    if maximum is not None and budget > maximum:
        raise ConfigError(f"--budget {budget} exceeds the {maximum} architectures in {where or 'this search'}")


def check_max_cost(max_cost: float | None) -> None:
    """Raise :class:`~nao.errors.ConfigError` unless ``max_cost`` is ``None`` or a positive finite number.

    >>> check_max_cost(3.5)
    >>> check_max_cost(0)
    Traceback (most recent call last):
    ...
    nao.errors.ConfigError: --max-cost must be a positive number (compute in the kind's cost unit), got 0
    """
    if max_cost is None:
        return
    ok = isinstance(max_cost, (int, float)) and not isinstance(max_cost, bool) and math.isfinite(max_cost)
    if not ok or max_cost <= 0:
        raise ConfigError(f"--max-cost must be a positive number (compute in the kind's cost unit), got {max_cost!r}")
