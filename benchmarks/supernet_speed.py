"""Supernet training throughput (images/s) and scoring cost on this machine's CPU.

For each configuration, a :class:`~nao.evaluators.supernet.SupernetEvaluator` trains on a
pool of 50 random ``nao-ws`` architectures (one per mini-batch, as in a search) for a fixed
number of steps after a warm-up, then scores 10 architectures on the fixed validation images
(BN batch statistics). Synthetic CIFAR-shaped data stands in for CIFAR-10 (speed does not
depend on pixel values). Run::

    flock /tmp/nao-cpu.lock python benchmarks/supernet_speed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nao.data.augment import normalize
from nao.data.cifar import ImageSet
from nao.data.digits import ImageSplits, load_digits_splits
from nao.evaluators.supernet import SupernetEvaluator, SupernetTrainConfig
from nao.nn.supernet import SupernetConfig
from nao.spaces import get_space
from nao.train.classifier import make_runtime

# (name, dataset, F, N, batch)
CONFIGS = [
    ("digits preset", "digits", 8, 1, 64),
    ("cifar F=16 N=1", "cifar", 16, 1, 64),
    ("cifar paper F=20 N=3", "cifar", 20, 3, 128),
]


def synthetic_cifar(n_train: int, n_val: int, seed: int) -> ImageSplits:
    g = torch.Generator().manual_seed(seed)

    def part(n: int) -> ImageSet:
        return ImageSet(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n,), generator=g))

    return ImageSplits("synthetic-cifar", part(n_train), part(n_val), part(10), 10, None)


def measure(name: str, data: ImageSplits, channels: int, layers: int, batch: int, steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    space = get_space("nao-ws")
    rng = np.random.default_rng(0)
    pool = [space.sample(rng) for _ in range(50)]
    cfg = SupernetTrainConfig(seed_pool=50, new_per_round=1, pool_size=50, epochs_per_round=1, batch_size=batch,
                              eval_batch_size=500, score_images=500, lr=0.025, augment=None)
    ev = SupernetEvaluator(space, data, SupernetConfig(channels=channels, layers=layers), cfg, make_runtime("cpu"),
                           schedule_epochs=1)
    loader_x = normalize(data.train.images[:batch])
    y = data.train.labels[:batch]
    plans = [ev.model.plan(a) for a in pool]
    for i in range(3):  # warm-up (allocator, oneDNN primitive cache)
        ev.train_step(loader_x, y, plans[i])
    t0 = time.perf_counter()
    for _ in range(steps):
        ev.train_step(loader_x, y, plans[int(rng.integers(len(plans)))])
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev.score(pool[:10])
    score_s = (time.perf_counter() - t0) / 10
    return {"name": name, "threads": threads, "images_per_s": steps * batch / train_s,
            "score_ms": score_s * 1e3, "score_images": sum(len(y) for _, y in ev.val_chunks)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="timed training steps per configuration")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    args = p.parse_args()
    digits = load_digits_splits(0)
    cifar = synthetic_cifar(512, 500, 0)
    print(f"{'configuration':24} {'threads':>7} {'train img/s':>12} {'score ms/arch':>14} {'(images)':>9}")
    for name, ds, f, n, batch in CONFIGS:
        for threads in (int(t) for t in args.threads.split(",")):
            steps = args.steps if n == 1 else max(3, args.steps // 4)
            r = measure(name, digits if ds == "digits" else cifar, f, n, batch, steps, threads)
            print(f"{name:24} {threads:7d} {r['images_per_s']:12.0f} {r['score_ms']:14.0f} {r['score_images']:9d}", flush=True)


if __name__ == "__main__":
    main()
