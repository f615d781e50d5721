"""Controller speed on CPU: one default fit on a conv-cell pool, and one NAO search on NB201.

    python benchmarks/controller_speed.py                       # both parts, 1 torch thread
    python benchmarks/controller_speed.py --space nao-ws --archs 600 --skip-search
    python benchmarks/controller_speed.py --benchmark FILE --budget 150 --skip-fit

Part 1 fits the space's default controller (``for_space``) on ``--archs`` random
architectures with synthetic targets: the reconstruction pre-training, then a fit of the
default length (about ``DEFAULT_FIT_STEPS`` mini-batches), timed separately. Part 2 runs
the ``nao`` strategy with its defaults for ``--budget`` queries on a tabular benchmark.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nao.controller.config import for_space
from nao.controller.fit import DEFAULT_FIT_STEPS, default_epochs, fit, pretrain_on_space
from nao.controller.model import EncoderPredictorDecoder
from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark, TabularEvaluator
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study


def time_fit(space_name: str, n_archs: int, seed: int) -> dict[str, float]:
    """Seconds for pre-training and for one default-length fit on ``n_archs`` random archs."""
    space = get_space(space_name)
    cfg = for_space(space)
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n_archs)]
    # A synthetic, learnable target: the fraction of the last op id among op positions.
    values = rng.random(n_archs) * 0.1 + np.array([np.mean(a.tokens) for a in archs])
    model = EncoderPredictorDecoder(space, cfg, seed=seed)
    start = time.perf_counter()
    pretrain_on_space(model, rng)
    pre_s = time.perf_counter() - start
    epochs = default_epochs(n_archs, cfg.batch_size)
    start = time.perf_counter()
    losses = fit(model, archs, values, rng)
    fit_s = time.perf_counter() - start
    return {"pretrain_s": pre_s, "fit_s": fit_s, "epochs": epochs, "first_loss": losses[0], "last_loss": losses[-1]}


def time_search(path: str, budget: int, seed: int) -> dict[str, float]:
    """Seconds for one default ``nao`` run of ``budget`` queries on an NB201-format table."""
    space = get_space("nb201")
    evaluator = TabularEvaluator(space, TabularBenchmark.load(path, space))
    start = time.perf_counter()
    strategy = make_strategy("nao", space, seed=seed)
    study = Study(space, strategy, evaluator)
    best = study.run(budget)
    return {"search_s": time.perf_counter() - start, "rounds": strategy.rounds,
            "best_val": 100 * best.metrics["val_acc"], "best_test": 100 * best.metrics.get("test_acc", float("nan"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="nao-ws")
    p.add_argument("--archs", type=int, default=600)
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--seeds", type=int, default=1, help="repeat each part for seeds 0..N-1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-fit", action="store_true")
    p.add_argument("--skip-search", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for seed in range(args.seeds):
        if not args.skip_fit:
            r = time_fit(args.space, args.archs, seed)
            print(f"fit  {args.space:>7} {args.archs} archs seed {seed}: pretrain {r['pretrain_s']:.1f} s, "
                  f"fit {r['epochs']} epochs (~{DEFAULT_FIT_STEPS} steps) {r['fit_s']:.1f} s, "
                  f"total {r['pretrain_s'] + r['fit_s']:.1f} s; loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}")
        if not args.skip_search:
            r = time_search(args.benchmark, args.budget, seed)
            print(f"search nb201 {args.budget} queries seed {seed}: {r['search_s']:.1f} s, {r['rounds']} rounds, "
                  f"best val {r['best_val']:.2f} test {r['best_test']:.2f}")


if __name__ == "__main__":
    main()
