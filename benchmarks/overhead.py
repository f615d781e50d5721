"""Overhead of the run machinery, and parallel speed-up of the executors.

1. Journal + executor overhead: a 150-query NAS-Bench-201 search with the tabular evaluator,
   through ``Study`` + ``SequentialExecutor`` + ``Journal`` (+ ``RunLog``, as ``nao search``
   runs it), against a bare ask/evaluate/tell loop doing the same work. Tabular lookups take
   microseconds, so this is the worst case for relative overhead.
2. Parallel executors: an evaluator that sleeps 1 s per architecture, 20 evaluations, on 2 CPUs
   (Ray local cluster with ``num_cpus=2``, and the local process pool with 2 workers).

    python benchmarks/overhead.py                  # both parts
    python benchmarks/overhead.py --part overhead --repeats 21
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

from nao.data.paths import data_root
from nao.evaluators.base import Evaluator
from nao.evaluators.tabular import TabularEvaluator
from nao.executors import ProcessExecutor, SequentialExecutor, make_executor
from nao.journal import Journal
from nao.results import Result, search_view
from nao.rundir import RunDir, RunLog
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

BUDGET = 150


def bare_loop(space, strategy, evaluator, budget: int) -> None:
    """The least a search must do: ask, skip known keys, evaluate, tell."""
    seen: dict = {}
    while len(seen) < budget:
        for arch in strategy.ask(1):
            key = space.key(arch)
            if key in seen:
                strategy.tell([seen[key]])
                continue
            result = evaluator.evaluate([arch])[0]
            seen[key] = search_view(result)
            strategy.tell([seen[key]])


def study_run(space, strategy, evaluator, budget: int, tmp: Path, mode: str):
    """A callable running the library's loop with ``mode``'s attachments; set-up (files) is done here, untimed."""
    if mode == "study":
        return lambda: Study(space, strategy, evaluator, SequentialExecutor()).run(budget)
    fsync = 0.0 if mode == "journal, fsync every record" else 1.0
    journal = Journal(tmp / "journal.jsonl", space, fsync_every_s=fsync)
    callbacks = []
    if mode == "journal + search.log (as nao search)":
        callbacks.append(RunLog(RunDir.create(tmp / "run", {}), space))

    def go() -> None:
        Study(space, strategy, evaluator, SequentialExecutor(), journal=journal, callbacks=callbacks).run(budget)
        journal.close()  # the final fsync belongs to the run
        for cb in callbacks:
            cb.close()

    return go


MODES = ("study", "journal (default fsync policy)", "journal, fsync every record", "journal + search.log (as nao search)")


def part_overhead(repeats: int, strategies: tuple[str, ...] = ("random", "rea", "local"), nao_repeats: int = 1) -> None:
    space = get_space("nb201")
    evaluator = TabularEvaluator(space, data_root() / "nasbench201" / "nb201_cifar10.csv.gz")
    print(f"## journal + executor overhead: {BUDGET} unique NB201 queries, tabular evaluator, "
          f"median of {repeats} runs (seeds 0..{repeats - 1}; nao: {nao_repeats})\n")
    print("Cells: wall time of the run in ms (overhead against the bare loop; machinery cost per query in µs).\n")
    print("| strategy | bare loop (ms) | " + " | ".join(MODES) + " |")
    print("|---|---|" + "---|" * len(MODES))
    for name in strategies:
        n = nao_repeats if name == "nao" else repeats
        modes = ("bare", *MODES) if name != "nao" else ("bare", MODES[-1])
        times: dict[str, list[float]] = {m: [] for m in modes}
        for seed in range(n):
            for mode in times:  # interleaved, so drifts of the machine hit every mode alike
                strategy = make_strategy(name, space, seed=seed)
                with tempfile.TemporaryDirectory() as tmp:
                    if mode == "bare":
                        go = functools.partial(bare_loop, space, strategy, evaluator, BUDGET)
                    else:
                        go = study_run(space, strategy, evaluator, BUDGET, Path(tmp), mode)
                    start = time.perf_counter()
                    go()
                    times[mode].append(time.perf_counter() - start)
        bare = statistics.median(times["bare"])
        cells = []
        for m in MODES:
            if m not in times:
                cells.append("")
                continue
            t = statistics.median(times[m])
            cells.append(f"{1e3 * t:.1f} ({100 * (t / bare - 1):+.1f}%; {1e6 * (t - bare) / BUDGET:.0f} µs)")
        print(f"| {name} | {1e3 * bare:.1f} | " + " | ".join(cells) + " |", flush=True)
    print()


class Sleeper(Evaluator):
    """Scores an architecture after sleeping ``seconds`` (a stand-in for training)."""

    def __init__(self, space, seconds: float = 1.0) -> None:
        self.space = space
        self.seconds = seconds

    def evaluate(self, archs):
        time.sleep(self.seconds * len(archs))
        return [Result(a, "ok", {"val_acc": sum(a.tokens) / 24}) for a in archs]


def part_parallel(n: int = 20, sleep_s: float = 1.0) -> None:
    import ray

    space = get_space("nb201")
    print(f"## parallel executors: {n} evaluations sleeping {sleep_s:g} s each, 2 CPUs\n")
    print("| executor | start-up (s) | search wall time (s) | ideal (s) |")
    print("|---|---|---|---|")
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ex = make_executor("ray")
    ray_start = time.perf_counter() - start
    rows = [("ray (local cluster, num_cpus=2)", ex, ray_start)]
    start = time.perf_counter()
    pool = ProcessExecutor(workers=2)
    rows.append(("processes (2 workers, spawn)", pool, time.perf_counter() - start))
    for label, executor, startup in rows:
        study = Study(space, make_strategy("random", space, seed=0), Sleeper(space, sleep_s), executor)
        t0 = time.perf_counter()
        study.run(n)
        wall = time.perf_counter() - t0
        assert study.n_evaluated == n and all(r.ok for r in study.history)
        executor.close()
        print(f"| {label} | {startup:.1f} | {wall:.2f} | {n * sleep_s / executor.capacity:.1f} |")
    ray.shutdown()
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["overhead", "parallel", "all"], default="all")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--strategies", default="random,rea,local,nao", help="comma-separated (nao: --nao-repeats runs)")
    ap.add_argument("--nao-repeats", type=int, default=1)
    args = ap.parse_args()
    if args.part in ("overhead", "all"):
        part_overhead(args.repeats, tuple(args.strategies.split(",")), args.nao_repeats)
    if args.part in ("parallel", "all"):
        part_parallel()


if __name__ == "__main__":
    main()
