"""NB201 as a multi-fidelity simulator: N parallel workers on a simulated clock.

The table's 12-epoch and 200-epoch validation columns are two rungs. A query's simulated
duration (and compute) is the table's own ``train_time_s`` (the 200-epoch training, GPU
seconds) scaled by its epochs: a 12-epoch query costs ``train_time_s * 12/200``.

**What a promotion pays.** NB201's 12-epoch column is a *separate* training (its own 12-epoch
cosine schedule), not a checkpoint of the 200-epoch run, so the 200-epoch score cannot be had by
continuing the 12-epoch model: by default (``promotion="restart"``) a promotion pays the full
200-epoch cost. ``promotion="continue"`` charges only the difference
(``train_time_s * (200-12)/200``): what a scheduler that continues from a checkpoint would pay if
the table's 200-epoch score were the continued model's (it is not quite: optimistic).

The event loop: every free worker asks its arm for a task; the task finishes at ``now +
duration``; the earliest finish is told to the arm, and so on until the compute budget is spent
(no task starts once started compute reaches it). A (candidate, rung) already answered costs
nothing (the Study's rule: a repeated query is answered from history). After every finished task
the trace records cumulative compute, wall time and the incumbent: the best-validation
architecture of the highest rung reached, scored by its 200-epoch *test* accuracy (reports only:
no arm ever sees a test column).

>>> import os
>>> from nao.data.paths import data_root
>>> from nao.spaces import get_space
>>> from nao.evaluators.tabular import TabularBenchmark
>>> path = os.path.join(data_root(), "nasbench201", "nb201_cifar10.csv.gz")
>>> table = TwoFidelityTable.of(TabularBenchmark.load(path, get_space("nb201")))  # doctest: +SKIP
>>> trace = simulate(make_arm("random-asha", table, seed=0), table, workers=4, max_cost_s=36000)  # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark
from nao.fidelity.scheduler import Record, Scheduler, balanced_eta, make_scheduler
from nao.fidelity.strategy import MultiFidelityNAO
from nao.results import Result
from nao.spaces.base import Architecture
from nao.strategies import make_strategy
from nao.strategies.base import Strategy

#: The table's validation column per rung, and the epochs each stands for.
RUNG_COLUMNS = ("val_acc_12ep", "val_acc")
RUNG_EPOCHS = (12.0, 200.0)
PROMOTION_COSTS = ("restart", "continue")


@dataclass(frozen=True)
class TwoFidelityTable:
    """A table seen as two rungs (12 and 200 epochs), with each query's simulated cost."""

    table: TabularBenchmark
    promotion: str = "restart"
    columns: tuple[str, ...] = RUNG_COLUMNS
    epochs: tuple[float, ...] = RUNG_EPOCHS

    @classmethod
    def of(cls, table: TabularBenchmark, promotion: str = "restart") -> TwoFidelityTable:
        """Check that ``table`` has both rungs and a cost column; ConfigError naming ``--fidelity``."""
        missing = [c for c in (*RUNG_COLUMNS, "train_time_s") if c not in table.metrics]
        if missing:
            raise ConfigError(f"--fidelity: benchmark {table.path} has no {', '.join(missing)} column "
                              "(a multi-fidelity simulation needs val_acc_12ep, val_acc and train_time_s)")
        if promotion not in PROMOTION_COSTS:
            raise ConfigError(f"--promotion-cost must be one of {', '.join(PROMOTION_COSTS)}, got {promotion!r}")
        return cls(table, promotion)

    @property
    def top(self) -> int:
        return len(self.columns) - 1

    def score(self, arch: Architecture, rung: int) -> float:
        return float(self.table.metrics[self.columns[rung]][self.table.row(arch)])

    def test(self, arch: Architecture) -> float:
        """200-epoch test accuracy (percent) for reports; validation when the table has no test column."""
        col = "test_acc" if "test_acc" in self.table.metrics else "val_acc"
        return 100.0 * float(self.table.metrics[col][self.table.row(arch)])

    def cost_s(self, arch: Architecture, rung: int, trained_to: int | None) -> float:
        """GPU seconds to bring ``arch`` to ``rung`` when it was already trained to ``trained_to`` (or None)."""
        t = float(self.table.metrics["train_time_s"][self.table.row(arch)])
        done = 0.0 if trained_to is None or self.promotion == "restart" else self.epochs[trained_to]
        return t * (self.epochs[rung] - done) / self.epochs[-1]


class TableAtFidelity:
    """A two-fidelity table as an evaluator with ``evaluate_at`` (for :class:`nao.fidelity.study.FidelityStudy`).

    ``evaluate_at(archs, 12)`` answers from the 12-epoch columns, ``evaluate_at(archs, 200)`` from
    the 200-epoch ones; ``cost_s`` is the table's training time for those epochs (a promotion pays
    the full 200 epochs: the columns are separate trainings). Test columns ride along for reports.
    """

    batch_size = 1
    fidelity_unit = "epochs"
    cost_unit = "gpu_s"  # the table's own GPU seconds, as TabularEvaluator

    def __init__(self, table: TwoFidelityTable) -> None:
        self.table, self.space = table, table.table.space
        self.max_fidelity = table.epochs[-1]

    def evaluate_at(self, archs, epochs: float) -> list[Result]:
        if epochs not in self.table.epochs:
            raise ConfigError(f"--fidelity: the table has rungs {', '.join(f'{e:g}' for e in self.table.epochs)} "
                              f"epochs, not {epochs:g}")
        rung = self.table.epochs.index(epochs)
        suffix = "_12ep" if rung < self.table.top else ""
        out = []
        for arch in archs:
            row = self.table.table.row(arch)
            metrics = {"val_acc": self.table.score(arch, rung)}
            if f"test_acc{suffix}" in self.table.table.metrics:
                metrics["test_acc"] = float(self.table.table.metrics[f"test_acc{suffix}"][row])
            cost = self.table.cost_s(arch, rung, None)
            out.append(Result(arch, "ok", metrics, cost, fidelity=float(epochs), cost=cost))
        return out


@dataclass
class Task:
    """One training job: ``arch`` to ``rung``; ``payload`` is the arm's own (an Optuna trial)."""

    arch: Architecture
    rung: int
    payload: Any = None


class Arm:
    """A strategy under test: proposes tasks, is told their validation scores."""

    def propose(self) -> Task | None:
        """The next task for a free worker; None: nothing now (wait for a running task)."""
        raise NotImplementedError

    def complete(self, task: Task, score: float) -> None:
        """``task`` finished with validation ``score`` (a fraction)."""
        raise NotImplementedError


def _result(arch: Architecture, score: float, epochs: float) -> Result:
    return Result(arch, "ok", {"val_acc": score}, fidelity=epochs)


class StrategyArm(Arm):
    """A library strategy, at full fidelity (``scheduler=None``) or under a fidelity scheduler.

    Under a scheduler the strategy is asked only for new candidates and told the scores of every
    rung (a :class:`~nao.fidelity.strategy.MultiFidelityNAO` learns from them all; random search
    ignores them); the scheduler decides promotions.
    """

    def __init__(self, strategy: Strategy, table: TwoFidelityTable, scheduler: Scheduler | None = None,
                 arch_of: dict[Hashable, Architecture] | None = None) -> None:
        self.strategy, self.table, self.scheduler = strategy, table, scheduler
        # Each candidate's architecture, filled as candidates are made; given when the scheduler's ranker reads it too.
        self._arch: dict[Hashable, Architecture] = {} if arch_of is None else arch_of

    def _new(self) -> Architecture | None:
        for arch in self.strategy.ask(1):
            key = self.table.table.space.key(arch)
            if key not in self._arch:
                self._arch[key] = arch
                return arch
        return None

    def propose(self) -> Task | None:
        if self.scheduler is None:
            arch = self._new()
            return None if arch is None else Task(arch, self.table.top)
        job = self.scheduler.next_job()
        if job is None:
            return None
        if job.candidate is not None:
            self.scheduler.start(job.candidate, job.rung)
            return Task(self._arch[job.candidate], job.rung)
        arch = self._new()
        if arch is None:
            return None
        self.scheduler.start(self.table.table.space.key(arch), job.rung)
        return Task(arch, job.rung)

    def complete(self, task: Task, score: float) -> None:
        if self.scheduler is not None:
            self.scheduler.report(Record(self.table.table.space.key(task.arch), task.rung, score))
        self.strategy.tell([_result(task.arch, score, self.table.epochs[task.rung])])


@dataclass
class Trace:
    """Per finished task: cumulative compute (GPU s), simulated wall time (s), incumbent's test (%),
    incumbent's validation at its rung (%), busy worker-seconds (for idle shares), promotions, and
    ``rework_s``: GPU seconds of epochs a promoted candidate had already trained (what a restart
    pays again and a continuation saves)."""

    compute_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    busy_s: float = 0.0
    promotions: int = 0
    rework_s: float = 0.0


def simulate(arm: Arm, table: TwoFidelityTable, workers: int, max_cost_s: float) -> Trace:
    """Run ``arm`` with ``workers`` simulated workers until ``max_cost_s`` GPU seconds are spent."""
    if workers < 1:
        raise ConfigError(f"--sim-workers must be at least 1, got {workers}")
    if not max_cost_s > 0:
        raise ConfigError(f"--max-gpu-hours must be a positive number, got {max_cost_s / 3600}")
    space = table.table.space
    known: dict[tuple[Hashable, int], float] = {}
    trained_to: dict[Hashable, int] = {}
    best: dict[int, tuple[float, Architecture]] = {}  # rung -> (val, arch) of its best
    events: list[tuple[float, int, Task, float]] = []  # (finish time, order, task, cost)
    trace, now, started, spent, order, free = Trace(), 0.0, 0.0, 0.0, 0, workers
    queries = 0
    while True:
        while free > 0 and started < max_cost_s:
            task = arm.propose()
            if task is None:
                break
            key = space.key(task.arch)
            if (key, task.rung) in known:  # answered from history: free, instant
                arm.complete(task, known[(key, task.rung)])
                continue
            cost = table.cost_s(task.arch, task.rung, trained_to.get(key))
            if key in trained_to:
                trace.promotions += 1
                trace.rework_s += table.cost_s(task.arch, trained_to[key], None)
            heapq.heappush(events, (now + cost, order, task, cost))
            order, started, free = order + 1, started + cost, free - 1
        if not events:
            break
        now, _, task, cost = heapq.heappop(events)
        free, spent, queries = free + 1, spent + cost, queries + 1
        trace.busy_s += cost
        key = space.key(task.arch)
        score = table.score(task.arch, task.rung)
        known[(key, task.rung)] = score
        trained_to[key] = max(task.rung, trained_to.get(key, -1))
        if task.rung not in best or score > best[task.rung][0]:
            best[task.rung] = (score, task.arch)
        val, inc = best[max(best)]
        trace.compute_s.append(spent)
        trace.wall_s.append(now)
        trace.test.append(table.test(inc))
        trace.val.append(100.0 * val)
        trace.queries.append(queries)
        arm.complete(task, score)
    if hasattr(arm, "close"):
        arm.close()
    return trace


#: Arms of ``nao bench --fidelity`` (``-mf``: under the scheduler named by ``--fidelity``).
ARMS = ("nao-mf", "nao", "random-mf", "random", "optuna-tpe-hyperband", "optuna-tpe")
#: Further arms, on request: multi-fidelity NAO whose promotions also follow its predictor.
EXTRA_ARMS = ("nao-mf-blend", "dehb")


def predictor_ranker(strategy: MultiFidelityNAO, table: TwoFidelityTable, arch_of: dict[Hashable, Architecture]):
    """Order a rung by the mean of two ranks: measured score and the controllers' prediction.

    The low rung's score is a noisy view of the top rung's; the predictor, trained on every
    label, is another. Averaging ranks needs no common scale. Before the first fit: scores only.
    """

    def rank(rung: int, recs: list[Record]) -> list[Record]:
        pred = strategy.predicted([arch_of[r.candidate] for r in recs])
        if pred is None or rung == table.top:
            return recs
        by_pred = np.empty(len(recs))
        by_pred[np.argsort(-pred, kind="stable")] = np.arange(len(recs))
        both = np.arange(len(recs)) + by_pred
        return [recs[i] for i in np.argsort(both, kind="stable")]

    return rank


def make_arm(name: str, table: TwoFidelityTable, seed: int, scheduler: str = "asha", eta: float | None = None,
             nao_options: dict[str, Any] | None = None) -> Arm:
    """An arm by name: ``nao-mf`` (multi-fidelity NAO under ``scheduler``), ``nao`` (full fidelity),
    ``random-mf`` (random search under ``scheduler``), ``random``, ``optuna-tpe-hyperband``
    (Optuna TPE + HyperbandPruner), ``optuna-tpe`` (full fidelity). ``eta``: our scheduler's reduction
    factor (None: :func:`~nao.fidelity.scheduler.balanced_eta` of the table's rungs, 200/12); the peers
    keep their own documented defaults."""
    space = table.table.space
    eta = balanced_eta(table.epochs) if eta is None else eta
    if name in ("nao-mf", "nao-mf-blend"):
        strategy = MultiFidelityNAO(space, seed=seed, max_fidelity=table.epochs[-1], **(nao_options or {}))
        arch_of: dict[Hashable, Architecture] = {}
        ranker = predictor_ranker(strategy, table, arch_of) if name == "nao-mf-blend" else None
        return StrategyArm(strategy, table, make_scheduler(scheduler, table.epochs, eta, ranker), arch_of)
    if name == "random-mf":
        return StrategyArm(make_strategy("random", space, seed=seed), table, make_scheduler(scheduler, table.epochs, eta))
    if name in ("nao", "random"):
        return StrategyArm(make_strategy(name, space, seed=seed), table)
    from nao.fidelity.peers import DEHBArm, OptunaArm  # peers' packages are imported only when asked for

    if name == "optuna-tpe-hyperband":
        return OptunaArm(table, seed, "tpe", "hyperband")
    if name == "optuna-tpe":
        return OptunaArm(table, seed, "tpe", None)
    if name == "dehb":
        return DEHBArm(table, seed)
    raise ConfigError(f"--strategies: unknown arm {name!r} for --fidelity; choose from {', '.join(ARMS + EXTRA_ARMS)}")


def value_at(trace: Trace, xs: np.ndarray, axis: str = "compute_s") -> np.ndarray:
    """The incumbent's test accuracy at each of ``xs`` (compute or wall seconds); NaN before the first result."""
    t = np.asarray(getattr(trace, axis))
    idx = np.searchsorted(t, xs, side="right") - 1
    vals = np.asarray(trace.test)
    return np.where(idx >= 0, vals[np.clip(idx, 0, None)], math.nan)
