"""Compare strategies on a tabular benchmark over many seeds, on equal terms.

Every strategy gets the same budget of unique queries. For each checkpoint N the score of a
run is the *test* accuracy (percent) of the architecture with the best *validation*
accuracy among its first N unique queries: search only ever saw validation accuracy.

>>> from nao.bench import checkpoints_for
>>> checkpoints_for(150)
[25, 50, 100, 150]
>>> checkpoints_for(60)
[25, 50, 60]
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark, TabularEvaluator
from nao.results import Result
from nao.spaces import get_space
from nao.strategies import make_strategy, strategy_names
from nao.study import Study

DEFAULT_CHECKPOINTS = (25, 50, 100, 150)


def checkpoints_for(budget: int, base: Sequence[int] = DEFAULT_CHECKPOINTS) -> list[int]:
    """The standard checkpoints up to ``budget``, plus ``budget`` itself."""
    points = [c for c in base if c < budget]
    return [*points, budget]


def best_test_at(history: Sequence[Result], n: int, report: str = "test_acc") -> float:
    """Percent ``report`` accuracy of the best-validation result among the first ``n``."""
    best = None
    for r in history[:n]:
        if r.ok and "val_acc" in r.metrics and (best is None or r.metrics["val_acc"] > best.metrics["val_acc"]):
            best = r
    if best is None:
        return float("nan")
    return 100.0 * best.metrics.get(report, best.metrics["val_acc"])


@dataclass(frozen=True)
class _Job:
    strategy: str
    seed: int


# Per-process state of bench workers: the table is loaded once per worker, not per job.
_WORKER: dict = {}


def _init_worker(space_name: str, path: str, budget: int, checkpoints: list[int], threads: int) -> None:
    import torch

    torch.set_num_threads(threads)  # seeds run in parallel processes; don't oversubscribe cores
    space = get_space(space_name)
    _WORKER.update(
        space=space,
        evaluator=TabularEvaluator(space, TabularBenchmark.load(path, space)),
        budget=budget,
        checkpoints=checkpoints,
    )


def _run_job(job: _Job) -> tuple[_Job, list[float], float]:
    space, evaluator = _WORKER["space"], _WORKER["evaluator"]
    start = time.perf_counter()
    study = Study(space, make_strategy(job.strategy, space, seed=job.seed), evaluator)
    study.run(_WORKER["budget"])
    report = "test_acc" if "test_acc" in evaluator.table.metrics else "val_acc"
    scores = [best_test_at(study.history, n, report) for n in _WORKER["checkpoints"]]
    return job, scores, time.perf_counter() - start


def summarize(values: Sequence[float]) -> dict:
    """Mean, standard error of the mean and the raw values."""
    arr = np.asarray(values, dtype=float)
    sem = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "sem": sem, "per_seed": [float(v) for v in arr]}


def run_bench(
    space: str,
    benchmark: str | os.PathLike,
    strategies: Sequence[str],
    budget: int,
    seeds: int,
    workers: int | None = None,
    progress: Callable[[str, int, float], None] | None = None,
) -> dict[str, dict[str, dict]]:
    """Run every strategy for seeds ``0..seeds-1`` and summarise per checkpoint.

    Returns ``{strategy: {str(N): {"mean", "sem", "per_seed"}}, "_time_s": {strategy: s}}``.
    """
    sp = get_space(space)
    known = strategy_names()
    for name in strategies:
        if name not in known:
            raise ConfigError(f"--strategies: unknown strategy {name!r}; choose from {', '.join(known)}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    table = TabularBenchmark.load(benchmark, sp)  # validate once, in this process, with clear errors
    if budget < 1 or budget > len(table):
        raise ConfigError(f"--budget {budget} must be between 1 and the {len(table)} architectures in {benchmark}")
    checkpoints = checkpoints_for(budget)
    jobs = [_Job(s, seed) for s in strategies for seed in range(seeds)]
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    scores: dict[str, dict[int, list[float]]] = {s: {c: [0.0] * seeds for c in checkpoints} for s in strategies}
    times = dict.fromkeys(strategies, 0.0)
    init = (space, str(benchmark), budget, checkpoints, 1)
    if workers <= 1:
        _init_worker(*init)
        results = map(_run_job, jobs)
    else:
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=init)
        results = pool.map(_run_job, jobs)
    for job, job_scores, elapsed in results:
        for c, v in zip(checkpoints, job_scores):
            scores[job.strategy][c][job.seed] = v
        times[job.strategy] += elapsed
        if progress:
            progress(job.strategy, job.seed, elapsed)
    if workers > 1:
        pool.shutdown()
    out: dict[str, dict] = {s: {str(c): summarize(v) for c, v in per.items()} for s, per in scores.items()}
    out["_time_s"] = times
    return out


def format_table(summary: dict[str, dict[str, dict]]) -> str:
    """A plain-text table: one row per strategy, ``mean ± sem`` per checkpoint."""
    strategies = [s for s in summary if not s.startswith("_")]
    points = list(summary[strategies[0]])
    head = f"{'strategy':<10}" + "".join(f"{'@' + p:>18}" for p in points)
    lines = [head, "-" * len(head)]
    for s in strategies:
        cells = "".join(f"{summary[s][p]['mean']:>11.2f} ± {summary[s][p]['sem']:<4.2f}" for p in points)
        lines.append(f"{s:<10}{cells}")
    return "\n".join(lines)
