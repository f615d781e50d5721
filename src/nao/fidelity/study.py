"""A search under a fidelity scheduler: new candidates at the lowest rung, promotions continue.

:class:`FidelityStudy` is :class:`nao.study.Study`'s loop with a scheduler in it. A free worker
asks the scheduler for a job; a new candidate comes from the strategy (budget permitting) and
is trained to the lowest rung; a promotion trains a known candidate further (an evaluator with
``evaluate_at(archs, epochs)`` continues it from its checkpoint). Every finished job is journaled
with its ``fidelity`` (epochs) and told to the strategy (test metrics removed). The budget counts
distinct candidates, as a Study's does; the run ends when no new candidate may start and the
scheduler has no promotion left.

Resume (after ``kill -9``): the journal's results are answered from the journal instead of being
trained again, and the loop runs as before, so the scheduler's rungs and promotions are rebuilt
from the journal and a sequential run ends exactly as the uninterrupted one.

>>> from nao.spaces import get_space
>>> from nao.strategies import make_strategy
>>> from nao.fidelity import ASHA
>>> class Toy:  # scores grow with the epochs trained
...     max_fidelity = 9.0
...     def evaluate_at(self, archs, epochs):
...         return [Result(a, "ok", {"val_acc": sum(a.tokens) / 24 * epochs / 9}) for a in archs]
>>> space = get_space("nb201")
>>> study = FidelityStudy(space, make_strategy("random", space, seed=0), Toy(), ASHA((1, 3, 9)))
>>> best = study.run(budget=27)
>>> study.n_candidates, [len(r) for r in study.scheduler.done]
(27, [27, 9, 3])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace

from nao.errors import ConfigError
from nao.executors import Executor, SequentialExecutor
from nao.fidelity.scheduler import Record, Scheduler
from nao.fidelity.strategy import fidelity_of
from nao.results import Objective, Result, search_view
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy
from nao.study import agreed_objective, check_max_cost

log = logging.getLogger(__name__)

_MAX_IDLE_ASKS = 200


class AtFidelity:
    """``evaluator`` seen as an ordinary evaluator that trains to one rung (``epochs``).

    One per rung, created once, so executors ship the evaluator to their workers once per rung.
    Each result's ``fidelity`` is the rung's (also for a failure that stopped earlier: the rung it
    was trained for is what the scheduler and a resume need).
    """

    def __init__(self, evaluator, epochs: float) -> None:
        self.evaluator, self.epochs = evaluator, float(epochs)
        self.batch_size = getattr(evaluator, "batch_size", 1)

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        return [_stamp(r, self.epochs) for r in self.evaluator.evaluate_at(archs, self.epochs)]


def _stamp(result: Result, epochs: float) -> Result:
    return replace(result, fidelity=float(epochs))


def check_ladder(rungs: Sequence[float], eta: float, budget: int, flag: str = "--fidelity") -> None:
    """ConfigError when ``budget`` candidates cannot bring even one to the top rung.

    >>> check_ladder((1, 3, 9), 3, 9)
    >>> check_ladder((1, 3, 9), 3, 8)
    Traceback (most recent call last):
    ...
    nao.errors.ConfigError: --fidelity: a ladder of 3 rungs (1, 3, 9 epochs) with eta 3 needs --budget >= 9 candidates to promote one to the top rung; got 8
    """
    need = math.ceil(eta ** (len(rungs) - 1) - 1e-9)
    if budget < need:
        shown = ", ".join(f"{r:g}" for r in rungs)
        raise ConfigError(f"{flag}: a ladder of {len(rungs)} rungs ({shown} epochs) with eta {eta:g} needs --budget >= "
                          f"{need} candidates to promote one to the top rung; got {budget}")


class FidelityStudy:
    """Runs ``strategy`` under ``scheduler`` with an evaluator that can train further.

    Args:
        space, strategy, executor, journal, objective, callbacks: as :class:`nao.study.Study`.
        evaluator: has ``evaluate_at(archs, epochs)`` (e.g. :class:`nao.evaluators.training.TrainingEvaluator`).
        scheduler: :mod:`nao.fidelity.scheduler`; its ``rungs`` are the epochs of each rung.
        replay: a previous run's journal: answered without training.
    """

    def __init__(self, space: SearchSpace, strategy: Strategy, evaluator, scheduler: Scheduler,
                 executor: Executor | None = None, journal=None, objective: Objective | str | None = None,
                 replay: Sequence[Result] = (), callbacks: Sequence[Callable[[Result], None]] = ()) -> None:
        if not hasattr(evaluator, "evaluate_at"):
            raise ConfigError(f"--fidelity: the {type(evaluator).__name__} cannot train a candidate further "
                              "(a supernet or table kind); use --fidelity none")
        self.space, self.strategy, self.scheduler = space, strategy, scheduler
        self.executor = executor or SequentialExecutor()
        self.journal, self.callbacks = journal, list(callbacks)
        self.objective = agreed_objective(strategy, objective)
        self._at = [AtFidelity(evaluator, f) for f in scheduler.rungs]
        self.history: list[Result] = []  # every rung evaluation, in completion order
        self._arch: dict[Hashable, Architecture] = {}
        self._running: dict[Hashable, int] = {}  # candidate -> rung it is being trained to
        self._replay: dict[tuple[Hashable, int], Result] = {}
        for r in replay:
            f = fidelity_of(r)
            if f is not None and f in scheduler.rungs:
                self._replay[(space.key(r.arch), scheduler.rungs.index(f))] = r

    @property
    def n_candidates(self) -> int:
        """Distinct candidates started (the budget's unit)."""
        return len(self._arch)

    @property
    def n_evaluated(self) -> int:
        """Finished rung evaluations (a promotion is one more)."""
        return len(self.history)

    def best(self) -> Result | None:
        """The best ok result of the highest rung reached."""
        rec = self.scheduler.best()
        if rec is None:
            return None
        top = self.scheduler.rungs[rec.rung]
        return next(r for r in self.history if self.space.key(r.arch) == rec.candidate and fidelity_of(r) == top)

    def ranked(self) -> list[Result]:
        """Each candidate's result at the highest rung it reached, best first: higher rungs first,
        then by the objective (a 1-epoch accuracy is no rival to a 9-epoch one). Failed ones left out."""
        last: dict[Hashable, tuple[int, Result]] = {}
        for r in self.history:
            key, rung = self.space.key(r.arch), self.scheduler.rungs.index(fidelity_of(r))
            if key not in last or rung >= last[key][0]:
                last[key] = (rung, r)
        ok = [(rung, r) for rung, r in last.values() if r.ok and math.isfinite(self.objective.score(r))]
        return [r for _, r in sorted(ok, key=lambda x: (x[0], self.objective.score(x[1])), reverse=True)]

    @property
    def spent_cost(self) -> float:
        """Compute of the rung evaluations recorded so far (``Result.cost``: a promotion pays what it adds)."""
        return math.fsum(r.cost for r in self.history)

    def cost_reached(self, max_cost: float | None) -> bool:
        """Whether ``max_cost`` (``None``: no bound) is spent."""
        return max_cost is not None and self.spent_cost >= max_cost

    def run(self, budget: int, max_cost: float | None = None) -> Result | None:
        """Train until ``budget`` candidates have started and no promotion is left, or (with ``max_cost``)
        until the recorded evaluations cost that much (those running finish: :class:`nao.study.Study`'s
        overshoot rule); return :meth:`best`."""
        if budget < 1:
            raise ConfigError(f"--budget must be at least 1, got {budget}")
        check_max_cost(max_cost)
        idle = 0
        while True:
            while (self.executor.pending < self.executor.slots(self._at[0])
                   and not self.cost_reached(max_cost)):
                job = self.scheduler.next_job()
                if job is None:
                    break
                if job.candidate is None:
                    arch = self._new() if self.n_candidates < budget and idle < _MAX_IDLE_ASKS else None
                    if arch is None:
                        idle += 1
                        break
                else:
                    arch = self._arch[job.candidate]
                idle = 0
                self._start(arch, job.rung)
            if self.executor.pending == 0:
                if self.cost_reached(max_cost) or self.scheduler.next_job() is None or self.n_candidates >= budget or idle >= _MAX_IDLE_ASKS:
                    break
                continue  # replayed answers freed the way: ask again
            for r in self.executor.poll():
                self._finish(r)
        return self.best()

    def _new(self) -> Architecture | None:
        for arch in self.strategy.ask(1):
            self.space.check(arch)
            key = self.space.key(arch)
            if key not in self._arch:
                self._arch[key] = arch
                return arch
        return None

    def _start(self, arch: Architecture, rung: int) -> None:
        key = self.space.key(arch)
        self.scheduler.start(key, rung)
        self._running[key] = rung
        replayed = self._replay.pop((key, rung), None)
        if replayed is not None:
            self._finish(replayed, journaled=True)
        else:
            self.executor.submit(self._at[rung], [arch])

    def _finish(self, result: Result, journaled: bool = False) -> None:
        key = self.space.key(result.arch)
        rung = self._running.pop(key)
        result = _stamp(result, self.scheduler.rungs[rung])  # a worker's death carries no rung of its own
        score = self.objective.score(result)
        ok = result.ok and math.isfinite(score)
        self.scheduler.report(Record(key, rung, score if ok else None, "ok" if ok else "failed"))
        self.history.append(result)
        if not journaled and self.journal is not None:
            self.journal.append(result)
        self.strategy.tell([search_view(result)])
        for cb in self.callbacks:
            cb(result)
