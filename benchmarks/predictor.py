"""Predictor ranking and decoder reconstruction of controller variants on a benchmark table.

    python benchmarks/predictor.py                                  # NB201 CIFAR-10, sizes 50,100,200
    python benchmarks/predictor.py --variants default,official --train-sizes 100 --seeds 5
    python benchmarks/predictor.py --variants default,seminas --train-sizes 25,50,100,200

Each variant is a controller configuration (plus an ensemble size and a number of SemiNAS
pseudo-labelled architectures, :func:`nao.controller.fit.semi_supervised_fit`); every one is fitted
on the same random training sets and scored on the same disjoint test sets (see
:mod:`nao.controller.evaluate`): Kendall tau and pairwise accuracy against ``val_acc``,
and exact / per-token reconstruction of the test architectures.
"""

from __future__ import annotations

import argparse
import time

import torch

from nao.controller.config import ControllerConfig, for_space, official
from nao.controller.evaluate import METRICS, predict_eval
from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark
from nao.spaces import get_space
from nao.strategies.seminas import SEMINAS_UNLABELLED


def variants(space) -> dict[str, tuple[ControllerConfig, int, int]]:
    """name -> (config, ensemble size, SemiNAS unlabelled architectures)."""
    base = for_space(space)
    sizes = {k: getattr(base, k) for k in ("embedding_size", "hidden_size", "mlp_hidden_size")}
    return {
        "default": (base, 1, 0),
        "ensemble3": (base, 3, 0),
        "official": (official().override(**sizes), 1, 0),
        "minmax": (base.override(target_transform="minmax"), 1, 0),
        "no-pretrain": (base.override(pretrain_archs=0), 1, 0),
        "no-position": (base.override(positional=False), 1, 0),
        "seminas": (base, 1, SEMINAS_UNLABELLED),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="nb201")
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--variants", default="default,ensemble3,official")
    p.add_argument("--train-sizes", default="50,100,200")
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    table = TabularBenchmark.load(args.benchmark, space)
    sizes = [int(x) for x in args.train_sizes.split(",")]
    known = variants(space)
    print(f"{args.space} on {table.path.name}: test {args.test_size}, {args.seeds} seeds, mean ± sem")
    print(f"{'variant':>12} {'train':>5} " + " ".join(f"{m:>15}" for m in METRICS) + "   time")
    for name in args.variants.split(","):
        cfg, ensemble, semi = known[name]
        start = time.perf_counter()
        summary = predict_eval(table, sizes, args.test_size, args.seeds, cfg, ensemble=ensemble, semi_supervised=semi)
        elapsed = time.perf_counter() - start
        for size, row in summary.items():
            cells = " ".join(f"{row[m]['mean']:>8.3f}±{row[m]['sem']:.3f}" for m in METRICS)
            print(f"{name:>12} {size:>5} {cells} {elapsed:6.0f}s", flush=True)


if __name__ == "__main__":
    main()
