"""NAO option variants against the baselines on both NB201 CIFAR-10 landscapes, many seeds.

``nao bench`` runs registered strategies with their defaults; this script runs the ``nao``
strategy with option overrides (to measure one idea at a time) next to any registered
strategy, on the 200-epoch table (``val_acc``) and on the same cells' 12-epoch fidelity
(``val_acc_12ep``, see ``nb201_other_fidelity.py``). Scores are as in ``nao bench``: test
accuracy (%) of the best-validation architecture among the first N unique queries. Run::

    python benchmarks/nao_sample_efficiency.py --budget 50 --seeds 30 \\
        --variant 'small={"seed_archs": 10, "round_fraction": 0.25}' --baselines local
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from nao.bench import best_test_at, best_val_at, checkpoints_for, summarize
from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark, TabularEvaluator
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

sys.path.insert(0, str(Path(__file__).parent))
from nb201_other_fidelity import write_12ep_table  # noqa: E402

_EVALUATORS: dict[str, TabularEvaluator] = {}
_PROXIES: dict = {}


def _init(tables: dict[str, str], proxies: str | None = None) -> None:
    import torch

    torch.set_num_threads(1)
    space = get_space("nb201")
    for name, path in tables.items():
        _EVALUATORS[name] = TabularEvaluator(space, TabularBenchmark.load(path, space))
    if proxies:
        from nao.proxies.table import ProxyTable

        _PROXIES["table"] = ProxyTable.load(proxies, space)


def _job(args: tuple[str, str, str, dict, int, int]) -> tuple[str, str, int, list[float], list[float], float]:
    landscape, label, strategy, opts, seed, budget = args
    ev = _EVALUATORS[landscape]
    start = time.perf_counter()
    zero_cost = None
    if "table" in _PROXIES and not opts.pop("no_proxies", False):  # "no_proxies": true runs an arm without them
        from nao.proxies.source import TableZeroCost

        zero_cost = TableZeroCost(_PROXIES["table"])
    study = Study(ev.space, make_strategy(strategy, ev.space, seed=seed, zero_cost=zero_cost, **opts), ev)
    study.run(budget)
    points = checkpoints_for(budget)
    scores = [best_test_at(study.history, n) for n in points]
    vals = [best_val_at(study.history, n) for n in points]
    zc_s = zero_cost.spent_s if zero_cost is not None else 0.0
    return landscape, label, seed, scores, vals, time.perf_counter() - start, zc_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--variant", action="append", default=[], help='NAME=JSON options of the nao strategy')
    p.add_argument("--baselines", default="", help="comma-separated registered strategies run with defaults")
    p.add_argument("--landscapes", default="200ep,12ep")
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--proxies", default=None, help="a proxy file: every arm gets zero-cost proxies (nao, *-zc use them)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    runs: list[tuple[str, str, dict]] = [(b, b, {}) for b in args.baselines.split(",") if b]
    for v in args.variant:
        name, _, opts = v.partition("=")
        opts_d = json.loads(opts or "{}")
        runs.append((name, opts_d.pop("strategy", "nao"), opts_d))  # "strategy": another registered one
    with tempfile.TemporaryDirectory() as tmp:
        tables = {}
        for land in args.landscapes.split(","):
            if land == "200ep":
                tables[land] = args.benchmark
            else:
                tables[land] = str(Path(tmp) / "nb201_12ep.csv.gz")
                write_12ep_table(Path(args.benchmark), Path(tables[land]))
        jobs = [(land, label, strat, opts, seed, args.budget)
                for land in tables for label, strat, opts in runs for seed in range(args.seeds)]
        points = checkpoints_for(args.budget)
        scores: dict = {}
        vals: dict = {}
        times: dict = {}
        zc_spent: dict = {}
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(tables, args.proxies)) as pool:
            for land, label, seed, s, v, dt, zc_s in pool.map(_job, jobs):
                zc_spent.setdefault((land, label), []).append(zc_s)
                scores.setdefault(land, {}).setdefault(label, {}).setdefault(seed, s)
                vals.setdefault(land, {}).setdefault(label, {}).setdefault(seed, v)
                times[(land, label)] = times.get((land, label), 0.0) + dt
    out: dict = {}
    for land, per in scores.items():
        print(f"\n{land}: test acc (%) of the best-val arch | best val acc (%) after N queries, "
              f"mean ± sem over {args.seeds} seeds")
        print(f"{'variant':<14}" + "".join(f"{'test@' + str(n):>16}" for n in points)
              + "".join(f"{'val@' + str(n):>16}" for n in points) + "   s/run  proxy CPU-s/run")
        for label, by_seed in per.items():
            seeds = sorted(by_seed)
            cols = [summarize([by_seed[k][i] for k in seeds]) for i in range(len(points))]
            vcols = [summarize([vals[land][label][k][i] for k in seeds], "val_") for i in range(len(points))]
            out.setdefault(land, {})[label] = {str(n): {**c, **v} for n, c, v in zip(points, cols, vcols)}
            cells = "".join(f"{c['mean']:>10.2f} ± {c['sem']:.2f}" for c in cols)
            cells += "".join(f"{v['val_mean']:>10.2f} ± {v['val_sem']:.2f}" for v in vcols)
            zc_mean = sum(zc_spent[(land, label)]) / len(zc_spent[(land, label)])
            out[land][label]["proxy_s_per_run"] = zc_mean
            print(f"{label:<14}{cells}   {times[(land, label)] / args.seeds:5.1f}  {zc_mean:10.0f}", flush=True)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"variants": [v for v in args.variant], "results": out}, indent=2))


if __name__ == "__main__":
    main()
