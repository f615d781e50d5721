"""``nao search``: run a search and write a run directory.

    nao search --space nb201 --benchmark FILE --strategy nao --budget 100 --seed 0 --out DIR
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nao.errors import ConfigError
from nao.evaluators.tabular import TabularEvaluator
from nao.journal import Journal
from nao.results import Result
from nao.rundir import RunDir
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

log = logging.getLogger("nao.search")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for an architecture (default: NAO-WS on the digits dataset)")
    p.add_argument("--space", default="nb201", help="search space (default: nb201)")
    p.add_argument("--strategy", default="nao", help="search strategy: nao, local, rea, random (default: nao)")
    p.add_argument("--evaluator", default="tabular", help="how architectures are scored (default: tabular)")
    p.add_argument("--benchmark", default=None, help="benchmark table for --evaluator tabular (.csv.gz)")
    p.add_argument("--budget", type=int, default=100, help="unique architectures to evaluate (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=None, help="run directory (default: runs/search-<time>)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The run's configuration: every search flag, resolved."""
    keys = ("space", "strategy", "evaluator", "benchmark", "budget", "seed")
    return {k: getattr(args, k) for k in keys}


def build_evaluator(config: dict[str, Any], space):
    if config["evaluator"] == "tabular":
        if not config.get("benchmark"):
            raise ConfigError("--evaluator tabular needs --benchmark FILE (a .csv.gz table)")
        return TabularEvaluator(space, Path(config["benchmark"]))
    raise ConfigError(f"--evaluator {config['evaluator']!r} is not available; choose: tabular")


def check_budget(budget: int, space, evaluator) -> None:
    """Reject a budget the space (or the benchmark table) cannot fill, before any work."""
    if budget < 1:
        raise ConfigError(f"--budget must be at least 1, got {budget}")
    size = space.size()
    if size is not None and budget > size:
        raise ConfigError(f"--budget {budget} exceeds the {size} architectures in space {space.name!r}")
    table = getattr(evaluator, "table", None)
    if table is not None and budget > len(table):
        raise ConfigError(f"--budget {budget} exceeds the {len(table)} architectures in {table.path}")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    space = get_space(config["space"])
    evaluator = build_evaluator(config, space)  # validates the benchmark before anything is written
    check_budget(config["budget"], space, evaluator)
    strategy = make_strategy(config["strategy"], space, seed=config["seed"])
    out = Path(args.out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
    rundir = RunDir.create(out, config)
    bar = tqdm(total=config["budget"], desc="search", unit="arch", disable=args.quiet, file=sys.stderr)

    def progress(r: Result) -> None:
        bar.update(1)
        best = study.best()
        if best is not None:
            bar.set_postfix(best_val=f"{best.metrics['val_acc']:.4f}")

    with Journal(rundir.journal_path, space) as journal:
        study = Study(space, strategy, evaluator, journal=journal, callbacks=[progress])
        try:
            best = study.run(config["budget"])
        finally:
            bar.close()
            rundir.write_best(study.best(), space, study.n_evaluated)
    if best is None:
        print(f"no successful evaluation; see {rundir.journal_path}")
        return 1
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(best.metrics.items()))
    print(f"best of {study.n_evaluated}: {space.format(best.arch)}")
    print(f"metrics: {shown}")
    print(f"run directory: {rundir.path}")
    return 0
