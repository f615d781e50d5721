"""One console line per finished candidate, for searches whose candidates take minutes.

A trained-candidates search on a cluster runs for hours; a user wants to see after each
candidate what it scored, how long it took, what is still running or waiting, and when the
round (NAO refits its controller between rounds) and the search will end. The rates behind
the ETAs count only candidates finished by this process, so a resumed run's replayed journal
does not make them look instant.

>>> from nao.results import Objective, Result, Tally
>>> from nao.spaces.base import Architecture
>>> lines = []
>>> clock = iter([0.0, 10.0, 20.0]).__next__
>>> class Exec: pending, capacity = 3, 2
>>> class Strat:
...     def round_left(self): return 4
>>> bar = CandidateProgress(lines.append, Objective("val_acc", "max"), Strat(), Exec(), budget=10, clock=clock)
>>> bar(Result(Architecture("nb201", (0,) * 6), "ok", {"val_acc": 0.5}, cost_s=9.5, info={"epochs": 2}))
>>> print(lines[0])
candidate 1/10: val_acc 0.5000 (best 0.5000), 2 epochs, 9.5 s | 2 running, 5 waiting | round ETA 1:10, search ETA 1:30
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from nao.executors import Executor
from nao.results import Objective, Result, Tally
from nao.strategies.base import Strategy


def _clock_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class CandidateProgress:
    """A Study callback that says one line per newly evaluated candidate.

    Args:
        say: where lines go (the console).
        objective: the run's objective (what is printed and how ``best`` is chosen).
        strategy: asked for :meth:`~nao.strategies.base.Strategy.round_left` (proposals of the
            current round not yet handed out).
        executor: its ``pending`` and ``capacity`` give the running / waiting counts.
        budget: the search's budget of unique evaluations.
        skip: results replayed from an earlier process's journal: counted, not printed, not timed.
        clock: seconds (injectable for tests).
    """

    def __init__(self, say: Callable[[str], None], objective: Objective, strategy: Strategy, executor: Executor,
                 budget: int, skip: Iterable[Result] = (), clock: Callable[[], float] = time.perf_counter) -> None:
        self.say, self.objective, self.strategy, self.executor = say, objective, strategy, executor
        self.budget, self.clock = budget, clock
        skip = list(skip)
        self.tally = Tally(objective, skip)
        self._seen = {r.arch for r in skip}  # candidates so far: under --fidelity a promotion is no new one
        self.fresh = 0  # finished by this process
        self._t0 = clock()

    def __call__(self, result: Result) -> None:
        value, new = self.tally.add(result)
        promoted = result.arch in self._seen
        self._seen.add(result.arch)
        if not new:
            return
        self.fresh += 1
        label = f"candidate {len(self._seen)}/{self.budget}" + (" promoted" if promoted else "")
        self.say(f"{label}: {self._outcome(result, value)} | {self._queue_text()}")

    def _outcome(self, result: Result, value: float | None) -> str:
        epochs = result.info.get("epochs") if isinstance(result.info, dict) else None
        shown = f"{epochs:.3g}" if isinstance(epochs, float) else epochs  # a fraction of a pass under --fidelity
        spent = (f", {shown} epoch{'s' if epochs != 1 else ''}" if epochs is not None else "") + f", {result.cost_s:.1f} s"
        if value is None:
            return f"failed ({result.error}){spent}"
        return f"{self.objective.metric} {value:.4f} (best {self.tally.best:.4f}){spent}"

    def _queue_text(self) -> str:
        pending = int(self.executor.pending)
        running = min(pending, int(getattr(self.executor, "capacity", 1)))
        round_left = self.strategy.round_left()
        waiting = pending - running + (round_left or 0)
        per_candidate = (self.clock() - self._t0) / self.fresh  # wall seconds per finished candidate, all workers
        etas = []
        if round_left is not None:
            etas.append(f"round ETA {_clock_text((pending + round_left) * per_candidate)}")
        etas.append(f"search ETA {_clock_text(max(0, self.budget - len(self._seen)) * per_candidate)}")
        return f"{running} running, {waiting} waiting | {', '.join(etas)}"
