"""How often do Optuna's samplers re-propose a network already evaluated, and what does a run cost?

The ``optuna-tpe`` / ``optuna-gp`` strategies answer a re-proposed network from the history (no
budget) and fall back to a random unseen cell after ``max_repeats`` such answers in a row
(:mod:`nao.strategies.optuna_samplers`). This script runs each strategy for ``--budget`` unique
queries on the NB201 CIFAR-10 table and prints, per strategy, the mean number of repeats, of
fallbacks, of Optuna trials, and the seconds per run (this process, one thread)::

    OMP_NUM_THREADS=1 python benchmarks/optuna_repeats.py --seeds 10
    OMP_NUM_THREADS=1 python benchmarks/optuna_repeats.py --seeds 1 --budget 30 --constraint 'params_m<=0.3443'

With ``--constraint`` every strategy only proposes feasible cells (:func:`nao.constraints.constrain`);
a refused cell is told to Optuna as a failed trial, and the table adds the refusals.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nao.constraints import ConstrainedStrategy, constrain
from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark, TabularEvaluator
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--strategies", default="optuna-tpe,optuna-gp")
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--constraint", default=None, help="e.g. 'params_m<=0.3443'")
    args = p.parse_args()
    space = get_space("nb201")
    evaluator = TabularEvaluator(space, TabularBenchmark.load(args.benchmark, space))
    print(f"{'strategy':<12}{'repeats':>10}{'fallbacks':>11}{'trials':>9}{'refused':>9}{'s/run':>8}   "
          f"({args.seeds} seeds, {args.budget} unique queries{', ' + args.constraint if args.constraint else ''})")
    for name in args.strategies.split(","):
        rows = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            outer = (constrain(name, space, args.constraint, evaluator.table, seed=seed) if args.constraint
                     else make_strategy(name, space, seed=seed))
            Study(space, outer, evaluator).run(args.budget)
            strategy = outer.inner if isinstance(outer, ConstrainedStrategy) else outer
            refused = outer.n_infeasible if isinstance(outer, ConstrainedStrategy) else 0
            rows.append((strategy.n_repeats, strategy.n_fallbacks, len(strategy.study.trials), refused,
                         time.perf_counter() - t0))
        mean = np.mean(rows, axis=0)
        print(f"{name:<12}{mean[0]:>10.1f}{mean[1]:>11.1f}{mean[2]:>9.1f}{mean[3]:>9.1f}{mean[4]:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
