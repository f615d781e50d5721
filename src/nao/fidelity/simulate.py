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

**A zero-cost rung** (arms ending in ``-zc`` and ``mf-nas``, with a proxy file: :mod:`nao.proxies`): below the
table's two trained rungs sits rung 0, the untrained cell's zero-cost proxies (:class:`ZeroCostRung`; a task
with ``rung == PROXY_RUNG``). Its score is the proxies' aggregate of the cell against a reference population (a
uniform random sample of :data:`DEFAULT_ZC_REFERENCE` cells scored when the run starts) and its cost the cell's
``zc_time_s``: *this CPU's* seconds counted as GPU seconds, which overstates what a GPU pays (tens of
milliseconds a cell): the safe side for a comparison against trained-only arms. Promotion out of rung 0 pays
the full 12-epoch training (nothing is continued from a proxy). Every proxy second is compute: the run's
:class:`~nao.proxies.source.ZeroCost` source (``Arm.zero_cost``) charges each pruned network once, whoever
scores it (the reference sample, a rung-0 task, a strategy scoring its own pool through ``zero_cost``), and the
simulator adds the growth of its ``spent_s`` to compute after every call into the arm. A rung-0 task occupies
a worker for its seconds (a cell already paid for is answered at once, free); seconds a strategy pays inside
``ask`` are compute but not simulated wall time (like its controller's own time). A rung-0 score is not an
accuracy: it never becomes the incumbent and is never told to a strategy as a label.

>>> import os
>>> from nao.data.paths import data_root
>>> from nao.spaces import get_space
>>> from nao.evaluators.tabular import TabularBenchmark
>>> path = os.path.join(data_root(), "nasbench201", "nb201_cifar10.csv.gz")
>>> table = TwoFidelityTable.of(TabularBenchmark.load(path, get_space("nb201")))  # doctest: +SKIP
>>> trace = simulate(make_arm("random-asha", table, seed=0), table, workers=4, max_cost_s=36000)  # doctest: +SKIP

Size: this module holds the two-fidelity simulator and, since issue 29, the zero-cost rung, its screen and the
MF-NAS-style arm (704 lines); those three belong in a ``nao.fidelity.zero_cost`` module of their own, a split left
for a session that can re-run the suite after it (issue 29 closing note).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark
from nao.fidelity.scheduler import Job, Record, Scheduler, SuccessiveHalving, balanced_eta, make_scheduler
from nao.fidelity.strategy import MultiFidelityNAO
from nao.results import Result
from nao.spaces.base import Architecture
from nao.strategies import make_strategy
from nao.strategies.base import Strategy

#: The table's validation column per rung, and the epochs each stands for.
RUNG_COLUMNS = ("val_acc_12ep", "val_acc")
RUNG_EPOCHS = (12.0, 200.0)
PROMOTION_COSTS = ("restart", "continue")
#: ``Task.rung`` of a zero-cost scoring: the proxy rung below the table's trained rungs (0: 12 epochs, 1: 200).
PROXY_RUNG = -1
#: Cells of the reference population a run scores first; a rung-0 score is the aggregate against it.
DEFAULT_ZC_REFERENCE = 256
#: MF-NAS on NB201 (Phan & Luong, GECCO'24; github.com/ELO-Lab/MF-NAS, configs/algo_201.yaml): stage 1 scores
#: ``max_eval_stage1: 2000`` cells with a zero-cost metric, stage 2 runs successive halving on its best
#: ``n_candidate: 32``, halving at 12, 25, 50, 100 and 200 epochs, so 2 of the 32 reach 200 epochs.
MFNAS_POOL, MFNAS_KEEP, MFNAS_TOP = 2000, 32, 2
#: The zero-cost rung's reduction factor: MF-NAS's screening ratio on NB201, 2000 scored per 32 trained
#: (module docstring of :class:`ProxyScreen` for why not the balanced factor).
DEFAULT_ZC_ETA = MFNAS_POOL / MFNAS_KEEP


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

    #: The run's zero-cost source (:class:`~nao.proxies.source.ZeroCost`), None without proxies: the simulator
    #: adds the growth of its ``spent_s`` to compute after every call into the arm.
    zero_cost: Any = None

    def propose(self) -> Task | None:
        """The next task for a free worker; None: nothing now (wait for a running task)."""
        raise NotImplementedError

    def complete(self, task: Task, score: float) -> None:
        """``task`` finished with validation ``score`` (a fraction), or its rung-0 score (``PROXY_RUNG``)."""
        raise NotImplementedError

    def proxy_score(self, arch: Architecture) -> float:
        """Rung 0's score of ``arch`` (arms that propose ``PROXY_RUNG`` tasks); paid for through ``zero_cost``."""
        raise NotImplementedError


class ZeroCostRung:
    """Rung 0 of a run: a cell's zero-cost aggregate against a fixed reference population, paid for once.

    ``source`` (a :class:`~nao.proxies.source.TableZeroCost`, shared with the arm's strategy) is the run's
    proxy bill: the reference sample (``reference`` cells drawn uniformly from the space with the run's seed)
    is scored and paid for when the run starts, every other cell when first scored. The score is
    :meth:`~nao.proxies.source.ZeroCost.aggregate_vs_reference` (sum of the log quantiles of the aggregate's
    proxies in the reference), computed by a second source that holds the reference and nothing else, so a
    strategy that sets its own reference on ``source`` (NAO's seed pool) never moves a rung-0 score: a cell's
    score does not depend on which cells were scored before it. Its cost is the cell's ``zc_time_s`` (this
    CPU's seconds counted as GPU seconds: an overstatement, the safe side).
    """

    def __init__(self, proxies: Any, seed: int, reference: int = DEFAULT_ZC_REFERENCE) -> None:
        from nao.proxies.source import TableZeroCost

        space = proxies.space
        self.source = TableZeroCost(proxies)
        self._by_reference = TableZeroCost(proxies)  # its spending is not the run's: source pays for every cell
        rng = np.random.default_rng([seed, 0x2C])  # not the strategy's stream
        self.reference = space.sample_distinct(rng, reference, key=lambda a: space.key(space.prune(a)))
        self.source.scores(self.reference)
        self._by_reference.set_reference(self.reference)
        self._memo: dict[Hashable, float] = {}

    def score(self, arch: Architecture) -> float:
        """The rung-0 score of ``arch`` (higher is better; not an accuracy); pays for the cell if new."""
        self.source.scores([arch])
        key = self.source.space.key(self.source.space.prune(arch))
        if key not in self._memo:
            self._memo[key] = float(self._by_reference.aggregate_vs_reference([arch])[0])
        return self._memo[key]


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


#: Why a rung-0 candidate is told to its strategy as failed (status only: no metric, no label).
SCREENED = "screened by the zero-cost rung: no training yet (not a label)"


class ProxyScreen:
    """A zero-cost rung in front of a scheduler of trained rungs: the ladder proxies -> 12 -> 200 epochs.

    Job rungs count from the proxies: 0 = zero-cost scoring, ``k + 1`` = the trained scheduler's rung ``k``.
    The screen is asynchronous, ASHA's rule on its own rung (Li et al., MLSys 2020): when the trained
    scheduler asks for a new candidate, it gets the best rung-0 cell among the top ``floor(n / eta)`` of the
    ``n`` scored so far that has not gone on yet; when there is none, a new cell is scored. Over an ASHA
    scheduler this is exactly three-rung ASHA with a reduction factor per rung (the trained rungs keep the
    scheduler's ``eta``); a synchronous scheduler (``sh``, ``hyperband``) draws its brackets' new candidates
    from it. ``beyond_quota`` (the space has no unscored cell left) passes on the best remaining cells.

    **Its eta** (default :data:`DEFAULT_ZC_ETA` = 62.5): MF-NAS's screening ratio on NB201, 2000 cells scored
    per 32 trained. The balanced factor of :func:`~nao.fidelity.scheduler.balanced_eta` (equal compute per
    rung) would be the 12-epoch cost over the proxies' cost, ~110 s / ~0.7 s = ~160 on the stand-in proxy
    file: a number set by how slow the CPU that timed the proxies was, and one that screens the whole
    9,445-network space after ~60 trainings. The screening ratio is a published choice on this benchmark and
    does not move with the proxy file's timings.
    """

    def __init__(self, trained: Scheduler, eta: float = DEFAULT_ZC_ETA) -> None:
        if not eta > 1:
            raise ConfigError(f"--zc-eta must be > 1, got {eta}")
        self.trained, self.eta = trained, float(eta)
        self.scores: dict[Hashable, float] = {}  # rung-0 scores, in finishing order
        self.started: set[Hashable] = set()
        self.sent: set[Hashable] = set()  # rung-0 cells passed on to the trained rungs
        self.running: set[Hashable] = set()  # rung-0 cells being scored
        self._ranked: list[tuple[float, int]] = []  # (-score, order) of every scored cell, sorted
        self._unsent: list[tuple[float, int, Hashable]] = []  # heap of the scored cells not passed on

    @property
    def busy(self) -> bool:
        """Whether any job (at any rung) is running."""
        return bool(self.running or self.trained.running)

    def next_job(self, beyond_quota: bool = False) -> Job | None:
        job = self.trained.next_job()
        if job is None:
            return None
        if job.candidate is not None:
            return Job(job.rung + 1, job.candidate)
        while self._unsent and self._unsent[0][2] in self.sent:
            heapq.heappop(self._unsent)
        if self._unsent:
            score, order, cand = self._unsent[0]
            quota = len(self._ranked) if beyond_quota else int(len(self._ranked) // self.eta + 1e-9)
            if bisect.bisect_left(self._ranked, (score, order)) < quota:
                return Job(job.rung + 1, cand)
        return Job(0)

    def start(self, candidate: Hashable, rung: int) -> None:
        if rung == 0:
            if candidate in self.started:
                raise ValueError(f"candidate {candidate!r} was already scored at the zero-cost rung")
            self.started.add(candidate)
            self.running.add(candidate)
            return
        self.trained.start(candidate, rung - 1)
        self.sent.add(candidate)

    def report(self, record: Record) -> None:
        if record.rung > 0:
            self.trained.report(Record(record.candidate, record.rung - 1, record.score, record.status))
            return
        self.running.discard(record.candidate)
        if not record.ok:
            return  # never passed on
        order = len(self.scores)
        self.scores[record.candidate] = float(record.score)
        bisect.insort(self._ranked, (-float(record.score), order))
        heapq.heappush(self._unsent, (-float(record.score), order, record.candidate))


class ScreenedStrategyArm(StrategyArm):
    """A strategy under a :class:`ProxyScreen`: its new candidates are scored by the proxies first (rung 0),
    the screen's best go on to the trained rungs.

    **No rung-0 score is told to the strategy.** The strategy gets the proxies through its own ``zero_cost``
    (the same source, so a cell is paid for once); a multi-fidelity strategy would take a rung-0 score for a
    label of fidelity 0. When a candidate's rung-0 task finishes the strategy is told only that it has no
    result yet: a *failed* :class:`~nao.results.Result` without metrics (``error`` = :data:`SCREENED`,
    ``fidelity`` 0), so a strategy that waits for every proposal of its round (NAO) goes on; NAO leaves failed
    results out of its targets, and a cell promoted later gets its 12-epoch score as usual.
    """

    def __init__(self, strategy: Strategy, table: TwoFidelityTable, screen: ProxyScreen, rung: ZeroCostRung,
                 arch_of: dict[Hashable, Architecture] | None = None) -> None:
        super().__init__(strategy, table, screen, arch_of)
        self.screen, self.rung, self.zero_cost = screen, rung, rung.source
        space = table.table.space
        self._networks = len({space.key(space.prune(a)) for a in table.table.archs})
        self._proposed: set[Hashable] = set()  # pruned networks the strategy has proposed

    def proxy_score(self, arch: Architecture) -> float:
        return self.rung.score(arch)

    def _new(self) -> Architecture | None:
        arch = super()._new()
        if arch is not None:
            self._proposed.add(self.table.table.space.key(self.table.table.space.prune(arch)))
        return arch

    def propose(self) -> Task | None:
        space = self.table.table.space
        job = self.screen.next_job()
        if job is None:
            return None
        if job.candidate is None:
            arch = self._new()
            if arch is not None:
                self.screen.start(space.key(arch), 0)
                return Task(arch, PROXY_RUNG)
            if len(self._proposed) < self._networks and self.screen.busy:
                return None  # the strategy waits for a running job
            job = self.screen.next_job(beyond_quota=True)  # the space is used up: the screen's next best
            if job is None or job.candidate is None:
                return None
        self.screen.start(job.candidate, job.rung)
        return Task(self._arch[job.candidate], job.rung - 1)

    def complete(self, task: Task, score: float) -> None:
        key = self.table.table.space.key(task.arch)
        if task.rung == PROXY_RUNG:
            self.screen.report(Record(key, 0, score))
            self.strategy.tell([Result(task.arch, "failed", error=SCREENED, fidelity=0.0)])
            return
        self.screen.report(Record(key, task.rung + 1, score))
        self.strategy.tell([_result(task.arch, score, self.table.epochs[task.rung])])


class MFNASArm(Arm):
    """MF-NAS (Phan & Luong, "Efficient Multi-Fidelity NAS with Zero-Cost Proxy-Guided Local Search",
    GECCO 2024; github.com/ELO-Lab/MF-NAS) on the table's two trained rungs, round after round.

    MF-NAS's NB201 settings (``configs/algo_201.yaml``, ``algos/sonas/mf_nas.py``, ``algos/sonas/sh.py``):
    stage 1 scores ``max_eval_stage1: 2000`` cells with one zero-cost metric (``metric_stage1: synflow`` in the
    current configuration and ``scripts/run_201_mfnas.sh``; params and FLOPs in the ablation), found by random
    search (``optimizer_stage1: RS``; the GECCO-era configuration used first-improvement local search, which
    the repository now runs as R-MF-NAS), duplicates removed; stage 2 takes the ``n_candidate: 32`` best by
    that metric into successive halving over ``list_iepoch: [12, 25, 50, 100, 200]``, keeping the better half
    (``ceil(n/2)``) at each step, so 2 of the 32 are trained to 200 epochs (1,192 epochs a run when each step
    continues the previous one).

    Here, one round = a fresh pool of :data:`MFNAS_POOL` (2000) networks never scored before (a seeded
    permutation of the table's distinct networks, so pools never overlap), scored at the zero-cost rung (the
    aggregate against the run's reference, :class:`ZeroCostRung`, instead of synflow alone); its
    :data:`MFNAS_KEEP` (32) best go to synchronous successive halving on our two trained rungs with MF-NAS's
    end points, 32 at 12 epochs and the best :data:`MFNAS_TOP` (2) of them at 200 (eta = 16); a promotion
    pays what ``--promotion-cost`` says, as for every arm. Rounds repeat while the budget lasts; once every
    network has been scored, a round takes the 32 best scored networks never trained.
    """

    def __init__(self, table: TwoFidelityTable, seed: int, rung: ZeroCostRung, pool: int = MFNAS_POOL,
                 keep: int = MFNAS_KEEP, top: int = MFNAS_TOP) -> None:
        from nao.proxies.table import distinct_cells

        if not 1 <= top < keep <= pool:
            raise ConfigError(f"mf-nas: need 1 <= top ({top}) < keep ({keep}) <= pool ({pool})")
        self.table, self.rung, self.zero_cost = table, rung, rung.source
        self.pool_size, self.keep = int(pool), int(keep)
        networks = distinct_cells(table.table.space, table.table.archs)
        order = np.random.default_rng([seed, 0x3F]).permutation(len(networks))
        self._order = [networks[i] for i in order]
        self._next = 0
        self.sh = SuccessiveHalving(table.epochs, eta=keep / top, bracket_size=keep)
        self._arch: dict[Hashable, Architecture] = {}
        self._to_score: list[Architecture] = []  # the pool's cells not yet handed out
        self._scoring = 0  # rung-0 tasks running
        self._pool: list[Hashable] = []  # the current round's cells, until ranked
        self._queue: list[Hashable] = []  # the round's best, waiting for the bracket
        self.scores: dict[Hashable, float] = {}
        self.trained: set[Hashable] = set()
        self.pools: list[list[Hashable]] = []  # every round's pool (the space used up: its leftovers)
        self.kept: list[list[Hashable]] = []  # every round's best, in order

    def proxy_score(self, arch: Architecture) -> float:
        return self.rung.score(arch)

    def _key(self, arch: Architecture) -> Hashable:
        return self.table.table.space.key(arch)

    def propose(self) -> Task | None:
        job = self.sh.next_job()
        if job is None:
            return None
        if job.candidate is not None:
            self.sh.start(job.candidate, job.rung)
            return Task(self._arch[job.candidate], job.rung)
        while not self._queue:
            if self._to_score:
                arch = self._to_score.pop(0)
                self._scoring += 1
                return Task(arch, PROXY_RUNG)
            if self._scoring:
                return None  # stage 1's barrier: the pool is ranked once every cell is scored
            if self._pool:
                ranked = sorted(self._pool, key=lambda k: -self.scores[k])
                self._queue, self._pool = ranked[: self.keep], []
                self.kept.append(list(self._queue))
                continue
            fresh = self._order[self._next: self._next + self.pool_size]
            self._next += len(fresh)
            if fresh:
                self._pool, self._to_score = [self._key(a) for a in fresh], list(fresh)
                self._arch.update(zip(self._pool, fresh))
            else:
                self._pool = [k for k in self.scores if k not in self.trained]
                if not self._pool:
                    return None  # every network trained
            self.pools.append(list(self._pool))
        key = self._queue.pop(0)
        self.sh.start(key, job.rung)
        self.trained.add(key)
        return Task(self._arch[key], job.rung)

    def complete(self, task: Task, score: float) -> None:
        key = self._key(task.arch)
        if task.rung == PROXY_RUNG:
            self.scores[key] = score
            self._scoring -= 1
            return
        self.sh.report(Record(key, task.rung, score))


@dataclass
class Trace:
    """Per finished task: cumulative compute (GPU s), simulated wall time (s), incumbent's test (%),
    incumbent's validation at its rung (%), busy worker-seconds (for idle shares), promotions, and
    ``rework_s``: GPU seconds of epochs a promoted candidate had already trained (what a restart
    pays again and a continuation saves). Points are recorded when a *trained* task finishes (a rung-0 score is
    no accuracy), plus a last one when proxy seconds were paid after it; ``compute_s`` includes every proxy
    second, ``proxy_s`` is their total and ``proxy_tasks`` the rung-0 tasks that occupied a worker."""

    compute_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    busy_s: float = 0.0
    promotions: int = 0
    rework_s: float = 0.0
    proxy_s: float = 0.0
    proxy_tasks: int = 0


def simulate(arm: Arm, table: TwoFidelityTable, workers: int, max_cost_s: float) -> Trace:
    """Run ``arm`` with ``workers`` simulated workers until ``max_cost_s`` GPU seconds are spent.

    Proxy seconds (the growth of ``arm.zero_cost.spent_s``) are compute from the moment they are paid.
    """
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
    zero_cost = arm.zero_cost
    paid = 0.0  # proxy seconds already in compute

    def pay() -> float:
        """Proxy seconds paid since the last call, now in compute (started and spent)."""
        nonlocal paid, started, spent
        if zero_cost is None:
            return 0.0
        delta, paid = zero_cost.spent_s - paid, zero_cost.spent_s
        started, spent, trace.proxy_s = started + delta, spent + delta, trace.proxy_s + delta
        return delta

    def point() -> None:
        if best:
            val, inc = best[max(best)]
            test, val = table.test(inc), 100.0 * val
        else:
            test = val = math.nan
        trace.compute_s.append(spent)
        trace.wall_s.append(now)
        trace.test.append(test)
        trace.val.append(val)
        trace.queries.append(queries)

    pay()  # what the arm paid when it was built (a zero-cost rung's reference sample)
    while True:
        while free > 0 and started < max_cost_s:
            task = arm.propose()
            pay()  # a strategy's own scoring inside ask: compute, not a worker's time
            if task is None:
                break
            key = space.key(task.arch)
            if task.rung == PROXY_RUNG:
                score = arm.proxy_score(task.arch)
                cost = pay()
                if cost <= 0:  # already paid for (reference, a strategy's pool): known, free, instant
                    arm.complete(task, score)
                    pay()
                    continue
                trace.proxy_tasks += 1
            elif (key, task.rung) in known:  # answered from history: free, instant
                arm.complete(task, known[(key, task.rung)])
                pay()
                continue
            else:
                cost = table.cost_s(task.arch, task.rung, trained_to.get(key))
                if key in trained_to:
                    trace.promotions += 1
                    trace.rework_s += table.cost_s(task.arch, trained_to[key], None)
                started += cost
            heapq.heappush(events, (now + cost, order, task, cost))
            order, free = order + 1, free - 1
        if not events:
            break
        now, _, task, cost = heapq.heappop(events)
        free = free + 1
        trace.busy_s += cost
        if task.rung == PROXY_RUNG:  # paid when started; no accuracy, no trace point
            arm.complete(task, arm.proxy_score(task.arch))
            pay()
            continue
        spent, queries = spent + cost, queries + 1
        key = space.key(task.arch)
        score = table.score(task.arch, task.rung)
        known[(key, task.rung)] = score
        trained_to[key] = max(task.rung, trained_to.get(key, -1))
        if task.rung not in best or score > best[task.rung][0]:
            best[task.rung] = (score, task.arch)
        point()
        arm.complete(task, score)
        pay()
    if not trace.compute_s or spent > trace.compute_s[-1]:
        point()  # proxy seconds paid after the last trained result (or no trained result at all)
    if hasattr(arm, "close"):
        arm.close()
    return trace


#: Arms of ``nao bench --fidelity`` (``-mf``: under the scheduler named by ``--fidelity``).
ARMS = ("nao-mf", "nao", "random-mf", "random", "optuna-tpe-hyperband", "optuna-tpe")
#: Further arms, on request: multi-fidelity NAO whose promotions also follow its predictor.
EXTRA_ARMS = ("nao-mf-blend", "dehb")
#: Arms that need zero-cost proxies (``--proxies``; run by default when it is given): multi-fidelity NAO and
#: random search with a zero-cost rung below the trained ones, MF-NAS, full-fidelity NAO with proxies.
ZC_ARMS = ("nao-mf-zc", "random-mf-zc", "mf-nas", "nao-zc")
#: The seed pool of the ``nao-zc`` arm: NAO with its proxy seed pool turned on at the measured size.
ZC_ARM_POOL = 1000


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
             nao_options: dict[str, Any] | None = None, proxies: Any = None, zc_eta: float | None = None) -> Arm:
    """An arm by name: ``nao-mf`` (multi-fidelity NAO under ``scheduler``), ``nao`` (full fidelity),
    ``random-mf`` (random search under ``scheduler``), ``random``, ``optuna-tpe-hyperband``
    (Optuna TPE + HyperbandPruner), ``optuna-tpe`` (full fidelity). ``eta``: our scheduler's reduction
    factor (None: :func:`~nao.fidelity.scheduler.balanced_eta` of the table's rungs, 200/12); the peers
    keep their own documented defaults.

    With ``proxies`` (a :class:`~nao.proxies.table.ProxyTable` of the table's cells), the :data:`ZC_ARMS`:
    ``nao-mf-zc`` (multi-fidelity NAO with the proxies as its ``zero_cost``, under ``scheduler`` on the ladder
    proxies -> 12 -> 200 epochs: :class:`ScreenedStrategyArm`), ``random-mf-zc`` (random search on that
    ladder), ``mf-nas`` (:class:`MFNASArm`) and ``nao-zc`` (full-fidelity NAO with the proxies). ``zc_eta``:
    the zero-cost rung's reduction factor (None: :data:`DEFAULT_ZC_ETA`). Only these arms use the proxies;
    ``nao_options`` reach ``nao-mf``, ``nao-mf-blend``, ``nao-mf-zc`` and ``nao-zc``."""
    space = table.table.space
    eta = balanced_eta(table.epochs) if eta is None else eta
    if name in ZC_ARMS:
        if proxies is None:
            raise ConfigError(f"--strategies {name}: this arm needs zero-cost proxies: give --proxies FILE "
                              "(the table's cells scored by nao proxies)")
        if name == "nao-zc":
            from nao.proxies.source import TableZeroCost

            source = TableZeroCost(proxies)
            # NAO's proxy seed pool is opt-in (nao.strategies.nao.DEFAULT_ZC_POOL); this arm is the opted-in NAO.
            opts = {"zc_pool": ZC_ARM_POOL, **(nao_options or {})}
            arm = StrategyArm(make_strategy("nao", space, seed=seed, zero_cost=source, **opts), table)
            arm.zero_cost = source
            return arm
        rung = ZeroCostRung(proxies, seed)
        if name == "mf-nas":
            return MFNASArm(table, seed, rung)
        screen = ProxyScreen(make_scheduler(scheduler, table.epochs, eta), DEFAULT_ZC_ETA if zc_eta is None else zc_eta)
        screened: Strategy
        if name == "nao-mf-zc":
            screened = MultiFidelityNAO(space, seed=seed, max_fidelity=table.epochs[-1], zero_cost=rung.source,
                                        **(nao_options or {}))
        else:
            screened = make_strategy("random", space, seed=seed, zero_cost=rung.source)
        return ScreenedStrategyArm(screened, table, screen, rung)
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
    raise ConfigError(f"--strategies: unknown arm {name!r} for --fidelity; choose from "
                      f"{', '.join(ARMS + EXTRA_ARMS + ZC_ARMS)}")


def value_at(trace: Trace, xs: np.ndarray, axis: str = "compute_s") -> np.ndarray:
    """The incumbent's test accuracy at each of ``xs`` (compute or wall seconds); NaN before the first result."""
    t = np.asarray(getattr(trace, axis))
    idx = np.searchsorted(t, xs, side="right") - 1
    vals = np.asarray(trace.test)
    return np.where(idx >= 0, vals[np.clip(idx, 0, None)], math.nan)
