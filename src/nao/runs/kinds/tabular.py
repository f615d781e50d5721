"""Kind ``tabular``: search a benchmark table (NAS-Bench-201 format); scores are looked up.

>>> import tempfile
>>> path = synthetic_table(tempfile.mkdtemp() + "/t.csv.gz", seed=1)
>>> TabularConfig(benchmark=str(path)).objective
'val_acc'
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nao.config import Config
from nao.constraints import constrained_strategy, constraint_summary, table_feasibility
from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.evaluators.tabular import TabularEvaluator, column_epochs
from nao.fidelity.runs import fidelity_strategy
from nao.fidelity.scheduler import balanced_eta, make_scheduler
from nao.fidelity.simulate import TableAtFidelity, TwoFidelityTable
from nao.fidelity.study import check_ladder
from nao.presets import register_preset
from nao.registry import STRATEGIES
from nao.results import Objective
from nao.runs.executor import ExecutorConfig
from nao.runs.flags import EXECUTOR_FLAGS, FIDELITY_FLAGS, flag
from nao.runs.skeleton import RunContext, RunKind, Search, register_kind
from nao.spaces import get_space
from nao.strategies import check_strategy_options


@dataclass
class TabularConfig(Config):
    """A search over a benchmark table.

    Attributes:
        preset: the preset it came from (for the record).
        space: the table's search space (``nb201``).
        benchmark: the table (``.csv.gz``); stored resolved so a run resumes from any directory.
        strategy: ``nao``, ``local``, ``rea``, ``random``, ...
        strategy_options: keyword arguments of the strategy.
        objective: the validation column optimised (``val_acc``; ``val_acc_12ep`` for the
            12-epoch landscape).
        constraint: only architectures satisfying e.g. ``params_m<=0.5`` (a column known before training)
            are proposed; infeasible proposals cost no budget (:mod:`nao.constraints`).
        budget: unique architectures evaluated (a run setting: a resume may raise it).
        max_cost: also stop once the evaluations cost this much compute (``gpu_s``: the table's
            ``train_time_s`` scaled to the objective's epochs); ``None``: the budget alone bounds the run.
        seed: seeds the strategy.
        proxies: a proxy file of the table's cells (``nao proxies``): the strategy gets zero-cost proxies
            (``nao`` ranks its seed pool and feeds its GP with them, ``random-zc``/``local-zc`` need them),
            every result carries the cell's ``zc_*`` scores, and the seconds paid for scoring join the cost.
        executor: where evaluations run.
    """

    preset: str = "default"
    space: str = "nb201"
    benchmark: str = ""
    strategy: str = "nao"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    objective: str = "val_acc"
    constraint: str | None = None
    budget: int = 100
    max_cost: float | None = None  # a bound on compute, in the evaluator's cost_unit (None: count only)
    fidelity: str = "none"  # asha, sh, hyperband: the 12- and 200-epoch columns as two rungs (nao.fidelity)
    # The fidelity scheduler's reduction factor (the top 1/eta of the 12-epoch rung goes on); None: the rungs'
    # ratio, 200/12, so that each rung spends the same compute (nao.fidelity.scheduler.balanced_eta).
    eta: float | None = None
    seed: int = 0
    proxies: str | None = None
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


@register_preset("tabular", "default")
def _default() -> TabularConfig:
    return TabularConfig()


@register_kind
class TabularKind(RunKind):
    """Every candidate is a row of the table; any executor."""

    name = "tabular"
    task, evaluator, default_for_task = "tabular", "tabular", True
    help = "search a benchmark table (NAS-Bench-201 format)"
    config_class = TabularConfig
    flags = (
        flag("--benchmark", help="benchmark table (.csv.gz); required for a new run", path=True),
        flag("--objective", help="validation column optimised (default val_acc; e.g. val_acc_12ep)"),
        flag("--constraint", help="e.g. 'params_m<=0.5': only architectures that satisfy it are proposed "
                                  "(no budget spent on others)"),
        flag("--proxies", metavar="ZC.csv.gz", path=True,
             help="zero-cost proxies of the table's cells (written by nao proxies): nao and the *-zc strategies use "
                  "them; their scoring seconds count as compute"),
        *EXECUTOR_FLAGS,
        *FIDELITY_FLAGS,
    )
    scores_from = "table"
    resumable_changes = ("budget", "executor")

    def max_budget(self) -> tuple[int, str]:
        return len(self.evaluator.table), str(self.evaluator.table.path)

    def prepare(self) -> None:
        cfg = self.config
        if not cfg.benchmark:
            raise ConfigError("a tabular search needs --benchmark FILE (a .csv.gz table)")
        cfg.benchmark = str(Path(cfg.benchmark).resolve())  # resumable from any directory
        self.space = get_space(cfg.space)
        check_strategy_options(cfg.strategy, cfg.strategy_options, self.space)
        # The objective's column names the fidelity a query costs (val_acc_12ep: 12 of the table's 200 epochs).
        self.evaluator: Evaluator = TabularEvaluator(self.space, Path(cfg.benchmark),  # validates the file
                                                     epochs=column_epochs(Objective.of(cfg.objective).metric))
        self.objective = Objective.of(cfg.objective)
        self.feasibility = table_feasibility(cfg.constraint, self.evaluator.table) if cfg.constraint else None
        self.two = None
        if cfg.fidelity != "none":  # the table's two rungs; ConfigError naming --fidelity without them
            if cfg.constraint or self.objective.metric != "val_acc":
                raise ConfigError("--fidelity on a table searches val_acc over both rungs, without --constraint")
            self.two = TwoFidelityTable.of(self.evaluator.table)
            self.eta = balanced_eta(self.two.epochs) if cfg.eta is None else cfg.eta
            check_ladder(self.two.epochs, self.eta, cfg.budget)
        self.proxies = None
        if STRATEGIES.get(cfg.strategy).needs_zero_cost and not cfg.proxies:
            raise ConfigError(f"strategy {cfg.strategy} needs zero-cost proxies: add --proxies FILE (written by nao proxies)")
        if cfg.proxies:
            from nao.proxies.table import ProxyTable

            if cfg.fidelity != "none":
                raise ConfigError("--proxies with --fidelity on a table: use nao bench --fidelity SCHED --proxies FILE "
                                  "(the simulator's zero-cost rung); nao search takes --proxies at full fidelity")
            cfg.proxies = str(Path(cfg.proxies).resolve())
            self.proxies = ProxyTable.load(cfg.proxies, self.space)  # BenchmarkFileError naming file and line
            self.proxies.check_covers(self.evaluator.table.archs, cfg.benchmark)
        self.executor = cfg.executor.build()  # an unreachable Ray address fails here

    def build(self, ctx: RunContext) -> Search:
        cfg = self.config
        zero_cost = None
        if self.proxies is not None:
            from nao.proxies.source import TableZeroCost

            zero_cost = TableZeroCost(self.proxies)
            self.evaluator = ProxyCharging(self.evaluator, zero_cost)
        strategy = constrained_strategy(cfg.strategy, self.space, self.feasibility, seed=cfg.seed,
                                        objective=self.objective, zero_cost=zero_cost, **cfg.strategy_options)
        if self.two is not None:  # candidates at 12 epochs, the top 1/eta promoted to 200 (nao.fidelity)
            strategy = fidelity_strategy(strategy, self.space, cfg.seed, self.two.epochs[-1], cfg.strategy_options)
            return Search(self.space, TableAtFidelity(self.two), strategy, self.objective, cfg.budget, self.executor,
                          scheduler=make_scheduler(cfg.fidelity, self.two.epochs, self.eta))
        return Search(self.space, self.evaluator, strategy, self.objective, cfg.budget, self.executor)

    def finish(self, ctx: RunContext, search: Search, study) -> dict[str, Any]:
        return constraint_summary(ctx, search.strategy, self.config.constraint, "never evaluated")

    def close(self) -> None:
        executor = getattr(self, "executor", None)
        if executor is not None:
            executor.close()


class ProxyCharging(Evaluator):
    """A table evaluator whose results carry the cell's zero-cost scores (``zc_<proxy>``) and the proxy seconds
    the strategy paid since the previous evaluation (added to ``cost`` and ``cost_s``), so a run's compute and
    ``--max-cost`` count what scoring cost. A resume re-scores the strategy's pools and pays for them again:
    an overcount, on the safe side."""

    def __init__(self, inner: TabularEvaluator, zero_cost) -> None:
        self.inner, self.zero_cost, self.space = inner, zero_cost, inner.space
        self.batch_size, self.cost_unit, self.table = inner.batch_size, inner.cost_unit, inner.table
        self._charged = 0.0

    def evaluate(self, archs):
        from dataclasses import replace

        out = []
        for r in self.inner.evaluate(archs):
            scores = self.zero_cost.scores([r.arch])[0]  # the cell's own scores (paid for if new)
            due, self._charged = self.zero_cost.spent_s - self._charged, self.zero_cost.spent_s
            metrics = {**r.metrics, **{f"zc_{n}": float(v) for n, v in zip(self.zero_cost.names, scores)}}
            out.append(replace(r, metrics=metrics, cost_s=r.cost_s + due, cost=r.cost + due))
        return out


def synthetic_table(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a synthetic NB201-format table of the whole space (15,625 rows) with learnable structure
    (tests, examples); returns its path.

    Accuracy rises with convolutions and falls with ``none`` edges, plus seeded noise, so
    strategies have something to find; columns as in NAS-Bench-201 (percent).
    """
    from nao.spaces.nb201 import NB201_OPS

    sp = get_space("nb201")
    rng = np.random.default_rng(seed)
    archs = [sp.make(list(t)) for t in itertools.product(range(len(NB201_OPS)), repeat=sp.length)]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["arch_str", "val_acc", "test_acc", "val_acc_12ep", "test_acc_12ep", "train_time_s", "params_m"])
    for a in archs:
        ops = [NB201_OPS[t] for t in a.tokens]
        quality = sum(("conv_3x3" in o) * 2.0 + ("conv_1x1" in o) - ("none" in o) * 1.5 for o in ops)
        val = 70 + 2.5 * quality + rng.normal(0, 0.5)
        convs = sum("conv" in o for o in ops)
        w.writerow([sp.format(a), f"{val:.3f}", f"{val + rng.normal(0, 0.3):.3f}", f"{val - 10:.3f}",
                    f"{val - 10.2:.3f}", f"{20 + 5 * convs:.1f}", f"{0.1 + 0.15 * convs:.3f}"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(out.getvalue().encode()))
    return path
