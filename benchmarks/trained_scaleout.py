"""Scale-out of a trained-candidates search: the same candidates on 1 vs 2 workers, process pool and local Ray.

Every configuration trains the same ``--budget`` candidates (the ``random`` strategy with one seed proposes the
same architectures whatever the executor) with the ``trained-cnn/cpu`` preset's child and data (16x16 CIFAR-10,
5k train / 1k validation, F=8 N=1, 2 epochs), through :class:`~nao.study.Study` as ``nao search`` runs it, and
reports:

- ``start_s``: building the executor (pool spawn, ``ray.init`` and putting the data in the object store);
- ``wall_s``: the search itself (``Study.run``), and the speed-up over the sequential executor;
- ``train_s``: the candidates' own training time, summed (each result's ``cost_s``, measured in the worker);
- ``overhead_s``: per candidate, what a worker slot spent on anything but training:
  ``(wall_s * slots - train_s) / budget`` (scheduling, data hand-off, result transfer, idle slots at the end).

    python benchmarks/trained_scaleout.py --budget 8          # ~6 minutes on 2 idle cores
    python benchmarks/trained_scaleout.py --configs sequential,processes:2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from nao.evaluators.training import TrainingEvaluator
from nao.executors import Executor, make_executor
from nao.presets import preset
from nao.runs.executor import ExecutorConfig
from nao.runs.images import load_splits
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study
from nao.threads import torch_threads


def measure(build: Callable[[], Executor], budget: int, seed: int) -> dict:
    """Build ``executor``, run a ``budget``-candidate random search on it, return the timings."""
    cfg = replace(preset("trained-cnn/cpu"), seed=seed, budget=budget)
    space = get_space(cfg.space)
    data = load_splits(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        evaluator = TrainingEvaluator.from_splits(space, data, network=cfg.network, train_config=cfg.train,
                                                  device="cpu", seed=seed, checkpoint_root=Path(tmp))
        t0 = time.perf_counter()
        ex = build()
        start_s = time.perf_counter() - t0
        try:
            study = Study(space, make_strategy("random", space, seed=seed), evaluator, ex)
            t1 = time.perf_counter()
            with torch_threads(cfg.threads):  # one thread a candidate, as nao search runs it (and as workers do)
                study.run(budget)
            wall_s = time.perf_counter() - t1
        finally:
            ex.close()
    slots = ex.slots(evaluator)
    train_s = sum(r.cost_s for r in study.history)
    return {"workers": slots, "start_s": start_s, "wall_s": wall_s, "train_s": train_s,
            "overhead_s": (wall_s * slots - train_s) / budget, "failed": sum(not r.ok for r in study.history),
            "archs": sorted(space.format(r.arch) for r in study.history)}


def _executor(spec: str) -> Callable[[], Executor]:
    name, _, n = spec.partition(":")
    if name == "ray":  # a local cluster of N CPUs, one CPU per candidate (as --executor ray --cpus-per-eval 1)
        return lambda: make_executor("ray", num_cpus=int(n or 1), cpus_per_eval=1)
    return ExecutorConfig(name=name, workers=int(n) if n else None).build


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=int, default=8, help="candidates per configuration (even: 2 workers stay busy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--configs", default="sequential,processes:1,processes:2,ray:1,ray:2")
    p.add_argument("--json", default=None, help="also write the rows here")
    args = p.parse_args()
    rows = []
    for spec in args.configs.split(","):
        row = measure(_executor(spec), args.budget, args.seed)
        rows.append({"config": spec, **row})
        print(f"{spec:12s} start {row['start_s']:5.1f}s  search {row['wall_s']:6.1f}s  candidates' training "
              f"{row['train_s']:6.1f}s  overhead/candidate {row['overhead_s']:5.2f}s  failed {row['failed']}", flush=True)
    base = next((r for r in rows if r["config"] == "sequential"), rows[0])
    print(f"\nspeed-up of the search over {base['config']} (same {args.budget} candidates):")
    for r in rows:
        same = r["archs"] == base["archs"]
        print(f"  {r['config']:12s} x{base['wall_s'] / r['wall_s']:.2f}  "
              f"(train time per candidate {r['train_s'] / args.budget:.1f}s; same candidates: {same})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
