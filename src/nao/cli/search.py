"""``nao search``: run a search and write a run directory.

    nao search --space nb201 --benchmark FILE --strategy nao --budget 100 --seed 0 --out DIR
    nao search --resume DIR                       # continue an interrupted run where it stopped
    nao search ... --executor ray --address auto  # evaluate in parallel (also: --executor processes)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.evaluators.tabular import TabularEvaluator
from nao.executors import Executor, make_executor
from nao.journal import Journal, read_journal_for_resume
from nao.results import Result
from nao.rundir import RunDir, RunLog, check_tensorboard, refuse_changed_flags
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

log = logging.getLogger("nao.search")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for an architecture (default: NAO-WS on the digits dataset)")
    p.add_argument("--space", default=None, help="search space (default: nb201 with --benchmark, else nao-ws)")
    # --strategy and --seed default to None (resolved in run) so --resume can tell a flag given from one left out.
    p.add_argument("--strategy", default=None, help="search strategy: nao, local, rea, random (default: nao)")
    p.add_argument("--evaluator", default=None, choices=["tabular", "supernet"],
                   help="how architectures are scored (default: tabular with --benchmark, else supernet)")
    p.add_argument("--benchmark", default=None, help="benchmark table for --evaluator tabular (.csv.gz)")
    p.add_argument("--budget", type=int, default=None,
                   help="unique architectures to evaluate (default: 100 tabular; the preset's for supernet)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    p.add_argument("--out", default=None, help="run directory (default: runs/search-<time>)")
    ws = p.add_argument_group("supernet (NAO-WS) search")
    ws.add_argument("--dataset", default=None, choices=["digits", "cifar10"], help="dataset (default: the preset's; digits, embedded, without a preset)")
    ws.add_argument("--data-dir", default=None, help="where CIFAR-10 lives (default: $NAO_DATA or ../shared/data)")
    ws.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: cpu)")
    ws.add_argument("--preset", default=None, help="digits, cpu (16x16 CIFAR-10 subset, ~25 min on 2 cores), smoke, short, paper "
                         "(default: digits; short for --dataset cifar10)")
    ws.add_argument("--subset", type=int, default=None, help="use only this many training images (smoke runs)")
    ws.add_argument("--supernet-score", default=None, choices=["acc", "loss"],
                    help="rank the supernet's pool by validation accuracy (official) or minus validation loss "
                         "(default: the preset's)")
    ws.add_argument("--image-size", type=int, default=None,
                    help="shrink images to this side by area averaging, a divisor of 32 for CIFAR (default: the preset's)")
    _add_run_flags(p)
    p.add_argument("--task", choices=["cnn", "ptb"], default="cnn",
                   help="cnn: image cells (default); ptb: recurrent cells on Penn Treebank (NAO-WS-RNN)")
    from nao.cli.lm import add_lm_search_args  # PTB flags; ones this parser already has are reused

    add_lm_search_args(p)
    p.set_defaults(func=run)


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """Flags of the run itself: resume, executor, logging. None means 'not given' (see resume_config)."""
    g = p.add_argument_group("runs: resume, executors, logging")
    g.add_argument("--resume", metavar="DIR", default=None,
                   help="continue the run in DIR (its config.json decides every search flag)")
    g.add_argument("--executor", default=None, choices=["sequential", "processes", "ray"],
                   help="where evaluations run (default: sequential, in this process)")
    g.add_argument("--workers", type=int, default=None, help="--executor processes: worker processes (default: cores)")
    g.add_argument("--address", default=None, help="--executor ray: cluster address, host:port or auto (default: start a local one)")
    g.add_argument("--cpus-per-eval", type=float, default=None, help="--executor ray: CPUs per evaluation (default: 1)")
    g.add_argument("--gpus-per-eval", type=float, default=None, help="--executor ray: GPUs per evaluation (default: 0)")
    g.add_argument("--max-retries", type=int, default=None,
                   help="restarts of an evaluation whose worker died, then it is recorded as failed (default: 2)")
    g.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars to DIR/tensorboard")


# Flags that define what a run computes: --resume refuses values that differ from the run's.
SEARCH_KEYS = ("space", "strategy", "evaluator", "benchmark", "seed")
# Flags that may change when a run is resumed: how far it goes and where it runs.
EXECUTOR_KEYS = ("workers", "address", "cpus_per_eval", "gpus_per_eval", "max_retries")
RUNTIME_KEYS = ("budget", "executor", *EXECUTOR_KEYS)
# Which executor each executor-specific flag applies to.
_EXECUTOR_FLAGS = {"workers": ("processes",), "address": ("ray",), "cpus_per_eval": ("ray",),
                   "gpus_per_eval": ("ray",), "max_retries": ("processes", "ray")}


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The run's configuration: every search flag, resolved."""
    config = {k: getattr(args, k, None) for k in (*SEARCH_KEYS, *RUNTIME_KEYS)}
    if config["benchmark"]:
        config["benchmark"] = str(Path(config["benchmark"]).resolve())  # resumable from any directory
    config["executor"] = config["executor"] or "sequential"
    return config


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
    if args.task == "ptb":
        from nao.cli.lm import resume_lm_search, run_lm_search

        if args.resume:
            return resume_lm_search(args)

        return run_lm_search(args)
    if args.resume:
        return resume(args)
    if (args.evaluator or ("tabular" if args.benchmark else "supernet")) == "supernet":
        from nao.ws import search_from_args  # NAO-WS: supernet rounds, rerank, final training

        _refuse_run_flags_for_supernet(args)

        return search_from_args(args)
    args.evaluator, args.space = "tabular", args.space or "nb201"
    args.budget = 100 if args.budget is None else args.budget
    args.strategy = args.strategy or "nao"
    args.seed = 0 if args.seed is None else args.seed
    return run_study(config_from_args(args), args)


def _refuse_run_flags_for_supernet(args: argparse.Namespace) -> None:
    # One supernet's shared weights live in this process: spreading its evaluations over workers
    # would train separate copies. Say so instead of silently ignoring the flag.
    for key in ("executor", *EXECUTOR_KEYS):
        value = getattr(args, key, None)
        if value is not None and not (key == "executor" and value == "sequential"):
            raise ConfigError(f"--{key.replace('_', '-')} {value}: the supernet evaluator runs in this process only")


def resume(args: argparse.Namespace) -> int:
    """``--resume DIR``: rebuild the run from its config, replay its journal, continue."""
    rundir = RunDir.open(args.resume)  # ConfigError (exit 2) if DIR is not a run
    saved = rundir.config()
    if saved.get("task") == "ptb":
        from nao.cli.lm import resume_lm_search  # NAO-WS-RNN: replay + supernet checkpoint

        return resume_lm_search(args)
    if "supernet" in saved:
        from nao.ws import resume_from_args  # NAO-WS: replay, supernet checkpoint, kept reranks

        _refuse_run_flags_for_supernet(args)
        return resume_from_args(args)
    config = resume_config(args, saved, args.resume)
    # Replaying re-asks the strategy and answers from the journal: exact only when the run was, and
    # stays, sequential. Otherwise the journal is handed to the strategy as known results up front.
    exact = saved.get("executor", "sequential") == "sequential" and config["executor"] == "sequential"
    return run_study(config, args, rundir=rundir, exact_replay=exact)


def resume_config(args: argparse.Namespace, saved: dict[str, Any], where: str) -> dict[str, Any]:
    """The resumed run's config: ``saved``, with runtime flags overridden; conflicting search flags raise."""
    missing = [k for k in SEARCH_KEYS if k not in saved]
    if missing or "budget" not in saved:
        raise ConfigError(f"--resume {where}: config.json lacks {', '.join(missing or ['budget'])}; not a nao search run")
    given = {k: getattr(args, k, None) for k in SEARCH_KEYS}
    if given["benchmark"] is not None and saved["benchmark"] is not None:
        given["benchmark"] = str(Path(given["benchmark"]).resolve())  # the run stores it resolved
    refuse_changed_flags(where, given, saved, args.out)
    config = dict(saved)
    if args.executor is not None and args.executor != saved.get("executor", "sequential"):
        config.update({k: None for k in EXECUTOR_KEYS})  # another executor: the old one's options don't apply
    for k in RUNTIME_KEYS:
        if getattr(args, k, None) is not None:
            config[k] = getattr(args, k)
    config["executor"] = config.get("executor") or "sequential"
    return config


def build_executor(config: dict[str, Any]) -> Executor:
    """The configured executor; flags meant for another executor are refused by name."""
    name = config.get("executor") or "sequential"
    for key, owners in _EXECUTOR_FLAGS.items():
        if config.get(key) is not None and name not in owners:
            raise ConfigError(f"--{key.replace('_', '-')} applies to --executor {' or '.join(owners)}, not {name}")
    return make_executor(name, **{k: config.get(k) for k, owners in _EXECUTOR_FLAGS.items() if name in owners})


class SlowedEvaluator(Evaluator):
    """Test hook: sleeps before each batch. Set ``NAO_TEST_EVAL_DELAY_S`` so a test can kill a run midway."""

    def __init__(self, inner: Evaluator, delay_s: float) -> None:
        self.inner, self.space, self.delay_s = inner, inner.space, delay_s
        self.batch_size = getattr(inner, "batch_size", 1)

    def evaluate(self, archs: Sequence) -> list[Result]:
        time.sleep(self.delay_s)
        return self.inner.evaluate(archs)


def load_previous(rundir: RunDir, space, budget: int) -> tuple[list[Result], list[str]]:
    """The journal of a run being resumed (a torn last line cut from the file) and warnings to log."""
    previous, notes = read_journal_for_resume(rundir.journal_path, space)
    if len(previous) > budget:
        raise ConfigError(f"--budget {budget} is below the {len(previous)} evaluations already in {rundir.journal_path}")
    return previous, notes


def run_study(config: dict[str, Any], args: argparse.Namespace, rundir: RunDir | None = None,
              exact_replay: bool = True) -> int:
    """Build everything from ``config`` (checking it before writing anything), then search into the run directory."""
    space = get_space(config["space"])
    evaluator = build_evaluator(config, space)  # validates the benchmark before anything is written
    check_budget(config["budget"], space, evaluator)
    if os.environ.get("NAO_TEST_EVAL_DELAY_S"):
        evaluator = SlowedEvaluator(evaluator, float(os.environ["NAO_TEST_EVAL_DELAY_S"]))
    strategy = make_strategy(config["strategy"], space, seed=config["seed"])
    if args.tensorboard:
        check_tensorboard()
    executor = build_executor(config)  # an unreachable Ray address fails here, before anything is written
    try:
        if rundir is None:
            rundir = RunDir.create(Path(args.out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}"), config)
            previous: list[Result] = []
            notes: list[str] = []
        else:
            previous, notes = load_previous(rundir, space, config["budget"])
            rundir.note_resume(config)
        return _search(config, args, rundir, space, strategy, evaluator, executor, previous, exact_replay, notes)
    finally:
        executor.close()


def _search(config, args, rundir, space, strategy, evaluator, executor, previous, exact_replay, notes=()) -> int:
    budget = config["budget"]
    bar = tqdm(total=budget, desc="search", unit="arch", disable=args.quiet, file=sys.stderr)

    def progress(r: Result) -> None:
        bar.update(1)
        best = study.best()
        if best is not None:
            bar.set_postfix(best_val=f"{best.metrics['val_acc']:.4f}")

    with RunLog(rundir, space, tensorboard=args.tensorboard, skip=previous) as runlog, \
            Journal(rundir.journal_path, space) as journal:
        for note in notes:  # now that search.log records them too
            log.warning("%s", note)
        runlog.info("%s: %s", "resumed" if previous else "started",
                    " ".join(f"{k}={v}" for k, v in sorted(config.items()) if v is not None))
        if previous:
            runlog.info("replaying %d journaled evaluations (%s)", len(previous), "exact" if exact_replay else "warm start")
        study = Study(space, strategy, evaluator, executor, journal=journal, replay=previous,
                      callbacks=[progress, runlog])
        if previous and not exact_replay:
            study.tell(previous)  # recorded from the replay (not journaled twice), then told to the strategy
        try:
            best = study.run(budget)
        finally:
            bar.close()
            rundir.write_best(study.best(), space, study.n_evaluated)
            rundir.write_predictions(strategy, space)
        _warn_unreplayed(study, previous)
        runlog.info("finished: %d evaluated, best %s", study.n_evaluated,
                    f"val_acc={best.metrics['val_acc']:.4f} {space.format(best.arch)}" if best else "none")
    if best is None:
        print(f"no successful evaluation; see {rundir.journal_path}")
        return 1
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(best.metrics.items()))
    print(f"best of {study.n_evaluated}: {space.format(best.arch)}")
    print(f"metrics: {shown}")
    print(f"run directory: {rundir.path}")
    return 0


def _warn_unreplayed(study: Study, previous: Sequence[Result]) -> None:
    ids = {id(r) for r in previous}
    used = sum(1 for r in study.history if id(r) in ids)
    if used < len(previous):
        log.warning("%d journaled evaluations were not proposed again by the resumed strategy; they stay in "
                    "the journal but are not part of this search's history", len(previous) - used)
