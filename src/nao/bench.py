"""Compare strategies on a tabular benchmark over many seeds, on equal terms.

Every strategy gets the same budget of unique queries. For each checkpoint N the score of a
run is the *test* accuracy (percent) of the architecture with the best *validation*
accuracy among its first N unique queries: search only ever saw validation accuracy. Beside
it the summary gives that best validation accuracy itself (``val_*``: the search's own
objective). With a constraint (``params_m<=0.5``) every strategy only proposes feasible
architectures (:mod:`nao.constraints`), so both figures are over feasible ones.

Compute is counted too (the table's ``train_time_s``, unit ``gpu_s``): each checkpoint gives the
compute a run spent on its first N queries (``cost_*``), and ``_by_cost`` the same score at equal
compute: the best-validation architecture among the queries a run made within the compute of N
average queries of the table (N times its mean ``train_time_s``; a run whose budget ran out
first is scored on all of its queries).

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from nao.constraints import ConstrainedStrategy, Constraint, constrain, table_feasibility
from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark, TabularEvaluator
from nao.results import Result
from nao.spaces import get_space
from nao.strategies import make_strategy, strategy_names
from nao.study import Study, check_budget

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


def queries_within(history: Sequence[Result], cost: float) -> int:
    """How many of the first results fit in ``cost`` (cumulative ``Result.cost``), all if they all do.

    >>> from nao.spaces import Architecture
    >>> rs = [Result(Architecture("nb201", (0,) * 6), "ok", cost=c) for c in (2.0, 3.0, 4.0)]
    >>> queries_within(rs, 5.0), queries_within(rs, 1.0), queries_within(rs, 99.0)
    (2, 0, 3)
    """
    spent = np.cumsum([r.cost for r in history])
    return int(np.searchsorted(spent, cost, side="right"))


def best_val_at(history: Sequence[Result], n: int) -> float:
    """Percent best validation accuracy among the first ``n`` results (the search's objective)."""
    vals = [r.metrics["val_acc"] for r in history[:n] if r.ok and "val_acc" in r.metrics]
    return 100.0 * max(vals) if vals else float("nan")


def best_so_far_curves(history: Sequence[Result], n: int, report: str = "test_acc") -> tuple[list[float], list[float]]:
    """Per query ``1..n``: :func:`best_test_at` and :func:`best_val_at` in one pass (NaN before the first ok result).

    >>> from nao.spaces import Architecture
    >>> a = Architecture("nb201", (0,) * 6)
    >>> best_so_far_curves([Result(a, "ok", {"val_acc": .5, "test_acc": .4}), Result(a, "ok", {"val_acc": .4})], 3)
    ([40.0, 40.0, 40.0], [50.0, 50.0, 50.0])
    """
    tests, vals = [], []
    best = None
    for i in range(n):
        r = history[i] if i < len(history) else None  # a run that stopped early keeps its best
        if r is not None and r.ok and "val_acc" in r.metrics and (best is None or r.metrics["val_acc"] > best.metrics["val_acc"]):
            best = r
        tests.append(float("nan") if best is None else 100.0 * best.metrics.get(report, best.metrics["val_acc"]))
        vals.append(float("nan") if best is None else 100.0 * best.metrics["val_acc"])
    return tests, vals


def summarize_curves(per_seed: Sequence[Sequence[float]]) -> dict:
    """Mean and standard error per query over seeds (``None`` where no seed has a value yet, for JSON)."""
    arr = np.asarray(per_seed, dtype=float)  # (seeds, queries)
    count = np.isfinite(arr).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, np.nansum(arr, 0) / np.maximum(count, 1), np.nan)
        dev = np.where(np.isfinite(arr), arr - mean, 0.0)
        sem = np.where(count > 1, np.sqrt((dev**2).sum(0) / np.maximum(count - 1, 1) / np.maximum(count, 1)), 0.0)

    def plain(a: np.ndarray) -> list[float | None]:
        return [float(v) if np.isfinite(v) else None for v in a]

    return {"mean": plain(mean), "sem": plain(np.where(count > 0, sem, np.nan))}


@dataclass(frozen=True)
class _Job:
    strategy: str
    seed: int


# Per-process state of bench workers: the table is loaded once per worker, not per job.
_WORKER: dict = {}


def _init_worker(space_name: str, path: str, budget: int, checkpoints: list[int], threads: int,
                 constraint: Constraint | None = None, cost_levels: Sequence[float] = (),
                 proxies: str | None = None) -> None:
    import torch

    torch.set_num_threads(threads)  # seeds run in parallel processes; don't oversubscribe cores
    space = get_space(space_name)
    if proxies is not None:
        from nao.proxies.table import ProxyTable

        _WORKER["proxies"] = ProxyTable.load(proxies, space)
    else:
        _WORKER.pop("proxies", None)
    _WORKER.update(
        space=space,
        evaluator=TabularEvaluator(space, TabularBenchmark.load(path, space)),
        budget=budget,
        checkpoints=checkpoints,
        constraint=constraint,
        cost_levels=list(cost_levels),
    )


def _run_job(job: _Job) -> tuple[_Job, list[float], list[float], float, float, dict[str, list[float]],
                                 tuple[list[float], list[float]]]:
    """One run: (job, test per checkpoint, val per checkpoint, infeasible fraction, seconds, compute:
    ``{"cost": spent after each checkpoint, "test"/"val": scores within each cost level}``, per-query curves)."""
    space, evaluator = _WORKER["space"], _WORKER["evaluator"]
    start = time.perf_counter()
    zero_cost = None
    if "proxies" in _WORKER:  # a fresh source per run: each run pays for the cells it scores
        from nao.proxies.source import TableZeroCost

        zero_cost = TableZeroCost(_WORKER["proxies"])
    if _WORKER["constraint"] is None:
        strategy = make_strategy(job.strategy, space, seed=job.seed, zero_cost=zero_cost)
    else:
        strategy = constrain(job.strategy, space, _WORKER["constraint"], evaluator.table, seed=job.seed,
                             zero_cost=zero_cost)
    zc_spent: list[float] = []  # proxy seconds paid by the time of each query
    study = Study(space, strategy, evaluator,
                  callbacks=[lambda _r: zc_spent.append(zero_cost.spent_s if zero_cost else 0.0)])
    study.run(_WORKER["budget"])
    # Proxy scoring is compute too: each query's cost carries what was paid for proxies since the last one.
    history = [replace(r, cost=r.cost + zc_spent[i] - (zc_spent[i - 1] if i else 0.0))
               for i, r in enumerate(study.history)]
    report = "test_acc" if "test_acc" in evaluator.table.metrics else "val_acc"
    tests = [best_test_at(history, n, report) for n in _WORKER["checkpoints"]]
    vals = [best_val_at(history, n) for n in _WORKER["checkpoints"]]
    infeasible = strategy.infeasible_fraction if isinstance(strategy, ConstrainedStrategy) else 0.0
    within = [queries_within(history, c) for c in _WORKER["cost_levels"]]
    compute = {"cost": [float(sum(r.cost for r in history[:n])) for n in _WORKER["checkpoints"]],
               "test": [best_test_at(history, k, report) for k in within],
               "val": [best_val_at(history, k) for k in within]}
    curves = best_so_far_curves(history, _WORKER["budget"], report)
    return job, tests, vals, infeasible, time.perf_counter() - start, compute, curves


def summarize(values: Sequence[float], prefix: str = "") -> dict:
    """Mean, standard error of the mean and the raw values (keys ``{prefix}mean`` ...)."""
    arr = np.asarray(values, dtype=float)
    sem = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else 0.0
    return {f"{prefix}mean": float(arr.mean()), f"{prefix}sem": sem, f"{prefix}per_seed": [float(v) for v in arr]}


def feasible_optimum(table: TabularBenchmark, constraint: Constraint | None = None) -> dict:
    """The best a search could report on ``table`` (under ``constraint``), in percent.

    ``best_val``: the highest validation accuracy; ``test_of_best_val``: the test accuracy of
    that row (the ceiling of the bench's score); ``best_test``: the highest test accuracy.
    """
    rows = np.ones(len(table), dtype=bool)
    if constraint is not None:
        rows = np.array([constraint.holds(v) for v in table.metrics[constraint.metric]])
    out: dict = {"constraint": None if constraint is None else str(constraint),
                 "feasible_rows": int(rows.sum()), "rows": len(table)}
    if not rows.any():
        return out
    val = np.where(rows, table.metrics["val_acc"], -np.inf)
    test = table.metrics.get("test_acc", table.metrics["val_acc"])
    best = int(np.argmax(val))  # first row on ties, as best_test_at
    out.update(best_val=100.0 * float(val[best]), test_of_best_val=100.0 * float(test[best]),
               best_test=100.0 * float(np.max(np.where(rows, test, -np.inf))))
    return out



def map_jobs(fn: Callable, jobs: Iterable, workers: int, init: Callable, initargs: tuple) -> Iterator:
    """``fn`` over ``jobs`` in order: in this process (``workers <= 1``, after ``init(*initargs)``) or in a
    process pool whose workers each run ``init`` once; the pool is shut down however the caller stops."""
    if workers <= 1:
        init(*initargs)
        yield from map(fn, jobs)
        return
    pool = ProcessPoolExecutor(workers, initializer=init, initargs=initargs)
    try:
        yield from pool.map(fn, jobs)
    finally:
        pool.shutdown(cancel_futures=True)

def run_bench(
    space: str,
    benchmark: str | os.PathLike,
    strategies: Sequence[str],
    budget: int,
    seeds: int,
    workers: int | None = None,
    progress: Callable[[str, int, float], None] | None = None,
    constraint: str | Constraint | None = None,
    proxies: str | os.PathLike | None = None,
) -> dict[str, dict[str, dict]]:
    """Run every strategy for seeds ``0..seeds-1`` and summarise per checkpoint.

    With ``proxies`` (a proxy file of the table's cells, :mod:`nao.proxies.table`) every strategy gets
    zero-cost proxies (those that use them: ``nao``, ``random-zc``, ``local-zc``), and the seconds each run
    pays for them join its compute (``cost_*``, ``_by_cost``).

    Returns ``{strategy: {str(N): {"mean", "sem", "per_seed", "val_mean", "val_sem",
    "val_per_seed", "cost_mean", "cost_sem", "cost_per_seed"}}, "_time_s": {strategy: s}}``:
    ``mean`` etc. are the test accuracy of the best-validation architecture, ``val_*`` that best
    validation accuracy (percent), ``cost_*`` the compute spent on the first N queries. When the
    table has ``train_time_s``, ``"_by_cost"`` is ``{"unit": "gpu_s", "levels": {str(N): compute},
    strategy: {str(N): {"mean", ..., "val_mean", ...}}}``: the scores at equal compute.
    ``"_curves"`` holds test and val per query ``1..budget`` (``{strategy: {"test_mean", "test_sem",
    "val_mean", "val_sem"}}``, for :func:`nao.viz.benchplot.plot_bench`) and ``"_optimum"`` the
    table's (feasible) optimum (:func:`feasible_optimum`). With
    ``constraint`` (e.g. ``"params_m<=0.5"``, a cost column of the table) every strategy is
    wrapped by :func:`nao.constraints.constrain`, and the summary adds ``"_constraint"``
    (:func:`feasible_optimum`) and ``"_infeasible_fraction"`` (``{strategy: {"mean",
    "per_seed"}}``: share of proposals rejected before evaluation).
    """
    sp = get_space(space)
    known = strategy_names()
    for name in strategies:
        if name not in known:
            raise ConfigError(f"--strategies: unknown strategy {name!r}; choose from {', '.join(known)}")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    table = TabularBenchmark.load(benchmark, sp)  # validate once, in this process, with clear errors
    check_budget(budget, sp, len(table), str(benchmark))
    if proxies is not None:
        from nao.proxies.table import ProxyTable

        ProxyTable.load(proxies, sp).check_covers(table.archs, str(benchmark))  # BenchmarkFileError naming the cell
        proxies = str(proxies)
    if isinstance(constraint, str):
        constraint = table_feasibility(constraint, table).constraint  # ConfigError naming the text
    if constraint is not None:
        optimum = feasible_optimum(table, constraint)
        if optimum["feasible_rows"] < budget:
            raise ConfigError(f"--constraint {constraint}: only {optimum['feasible_rows']} feasible architectures "
                              f"in {benchmark}, fewer than --budget {budget}")
    checkpoints = checkpoints_for(budget)
    jobs = [_Job(s, seed) for s in strategies for seed in range(seeds)]
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    scores: dict[str, dict[int, list[float]]] = {s: {c: [0.0] * seeds for c in checkpoints} for s in strategies}
    vals: dict[str, dict[int, list[float]]] = {s: {c: [0.0] * seeds for c in checkpoints} for s in strategies}
    infeasible = {s: [0.0] * seeds for s in strategies}
    curves: dict[str, dict[str, list]] = {s: {"test": [[]] * seeds, "val": [[]] * seeds} for s in strategies}
    times = dict.fromkeys(strategies, 0.0)
    costs = {s: {c: [0.0] * seeds for c in checkpoints} for s in strategies}
    by_cost = {s: {k: {c: [0.0] * seeds for c in checkpoints} for k in ("test", "val")} for s in strategies}
    # Equal-compute levels: N average queries of the table (its mean train_time_s is a 200-epoch training).
    mean_cost = float(np.mean(table.metrics["train_time_s"])) if "train_time_s" in table.metrics else 0.0
    levels = [c * mean_cost for c in checkpoints] if mean_cost > 0 else []
    init = (space, str(benchmark), budget, checkpoints, 1, constraint, levels, proxies)
    for job, job_tests, job_vals, job_infeasible, elapsed, compute, (test_curve, val_curve) in map_jobs(
            _run_job, jobs, workers, _init_worker, init):
        curves[job.strategy]["test"][job.seed], curves[job.strategy]["val"][job.seed] = test_curve, val_curve
        for c, t, v in zip(checkpoints, job_tests, job_vals):
            scores[job.strategy][c][job.seed] = t
            vals[job.strategy][c][job.seed] = v
        for i, c in enumerate(checkpoints):
            costs[job.strategy][c][job.seed] = compute["cost"][i]
            if levels:
                by_cost[job.strategy]["test"][c][job.seed] = compute["test"][i]
                by_cost[job.strategy]["val"][c][job.seed] = compute["val"][i]
        infeasible[job.strategy][job.seed] = job_infeasible
        times[job.strategy] += elapsed
        if progress:
            progress(job.strategy, job.seed, elapsed)
    out: dict[str, dict] = {
        s: {str(c): {**summarize(per[c]), **summarize(vals[s][c], "val_"), **summarize(costs[s][c], "cost_")}
            for c in checkpoints}
        for s, per in scores.items()
    }
    out["_time_s"] = times
    if levels:
        out["_by_cost"] = {"unit": "gpu_s", "levels": {str(c): lv for c, lv in zip(checkpoints, levels)},
                           **{s: {str(c): {**summarize(by_cost[s]["test"][c]), **summarize(by_cost[s]["val"][c], "val_")}
                                  for c in checkpoints} for s in strategies}}
    out["_curves"] = {s: {f"{part}_{k}": v for part in ("test", "val") for k, v in summarize_curves(c[part]).items()}
                      for s, c in curves.items()}
    out["_optimum"] = feasible_optimum(table, constraint)
    if constraint is not None:
        out["_constraint"] = optimum
        out["_infeasible_fraction"] = {s: {"mean": float(np.mean(v)), "per_seed": v} for s, v in infeasible.items()}
    return out


def format_table(summary: dict[str, dict[str, dict]]) -> str:
    """Plain-text tables, one row per strategy and ``mean ± sem`` per checkpoint: the test accuracy
    of the best-validation architecture, then the best validation accuracy (and, under a
    constraint, the feasible optimum and each strategy's share of infeasible proposals); then
    the compute each strategy spent, and its score at equal compute, when the table has a cost."""
    strategies = [s for s in summary if not s.startswith("_")]
    points = list(summary[strategies[0]])
    infeasible = summary.get("_infeasible_fraction")
    head = f"{'strategy':<10}" + "".join(f"{'@' + p:>18}" for p in points)
    lines = []
    for title, prefix in (("test accuracy (%) of the best-validation architecture", ""),
                          ("best validation accuracy (%) found (the search's objective)", "val_")):
        extra = f"{'infeasible':>12}" if infeasible and not prefix else ""
        lines += [title, head + extra, "-" * len(head + extra)]
        for s in strategies:
            cells = "".join(f"{summary[s][p][prefix + 'mean']:>11.2f} ± {summary[s][p][prefix + 'sem']:<4.2f}"
                            for p in points)
            if extra:
                cells += f"{100 * infeasible[s]['mean']:>11.1f}%"
            lines.append(f"{s:<10}{cells}")
        lines.append("")
    lines += _cost_lines(summary, strategies, points)
    opt = summary.get("_constraint")
    if opt:
        lines.append(f"feasible optimum under {opt['constraint']} ({opt['feasible_rows']} of {opt['rows']} rows): "
                     f"best val {opt.get('best_val', float('nan')):.2f}, its test {opt.get('test_of_best_val', float('nan')):.2f}, "
                     f"best test {opt.get('best_test', float('nan')):.2f}")
    return "\n".join(lines).rstrip("\n")


def _cost_lines(summary: dict[str, dict], strategies: list[str], points: list[str]) -> list[str]:
    """The compute tables (GPU-hours): spent after N queries, and the scores within N average queries' compute."""
    by_cost = summary.get("_by_cost")
    if not by_cost:
        return []
    hours = 1 / 3600
    head = f"{'strategy':<10}" + "".join(f"{'@' + p:>18}" for p in points)
    lines = ["compute spent on the first N queries (GPU-hours: the table's training times)", head, "-" * len(head)]
    for s in strategies:
        lines.append(f"{s:<10}" + "".join(f"{summary[s][p]['cost_mean'] * hours:>11.2f} ± {summary[s][p]['cost_sem'] * hours:<4.2f}"
                                           for p in points))
    levels = ", ".join(f"@{p} = {by_cost['levels'][p] * hours:.1f}" for p in points)
    for title, prefix in (("test accuracy (%) of the best-validation architecture", ""),
                          ("best validation accuracy (%)", "val_")):
        lines += ["", f"at equal compute, {title} within the compute of N average queries (GPU-h: {levels})",
                  head, "-" * len(head)]
        for s in strategies:
            lines.append(f"{s:<10}" + "".join(f"{by_cost[s][p][prefix + 'mean']:>11.2f} ± {by_cost[s][p][prefix + 'sem']:<4.2f}"
                                               for p in points))
    return lines
