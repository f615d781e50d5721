"""What each zero-cost proxy costs per cell, alone and together, against one training epoch of the same cell.

    python benchmarks/proxy_cost.py --cells 30 --batch-size 16 [--threads 1] [--device cpu] [--json OUT.json]

For ``--cells`` random NB201 cells (seeded): every proxy scored on its own (a fresh network and no shared pass,
so a proxy that shares a pass pays for all of it), the whole set scored together (shared passes, what
``nao proxies`` records as ``zc_time_s``), and the seconds of one CIFAR-10 training step (batch 256, SGD,
forward + backward + update) scaled to one epoch of 50,000 images. Prints the median seconds per cell and the
ratio to one epoch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from nao.nn.nb201 import NB201Network
from nao.proxies.measures import PROXIES, ProxyBatch, score
from nao.spaces import get_space


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def epoch_seconds(net: torch.nn.Module, device: str, steps: int = 2, batch: int = 256, images: int = 50_000) -> float:
    """Seconds of one training epoch, from the median of ``steps`` timed SGD steps (after one warm-up)."""
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    times = []
    for i in range(steps + 1):
        _sync(device)
        t = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        _sync(device)
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * images / batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cells", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("nb201")
    rng = np.random.default_rng(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    batch = ProxyBatch(torch.randn(args.batch_size, 3, 32, 32, generator=g).to(args.device),
                       torch.randint(0, 10, (args.batch_size,), generator=g).to(args.device))
    alone: dict[str, list[float]] = {n: [] for n in PROXIES}
    together, epochs = [], []
    for _ in range(args.cells):
        arch = space.prune(space.sample(rng))

        def net(arch=arch) -> torch.nn.Module:
            return NB201Network(space, arch, generator=torch.Generator().manual_seed(0)).to(args.device)

        for name in PROXIES:
            n = net()
            _sync(args.device)
            t = time.perf_counter()
            score(n, batch, [name])
            _sync(args.device)
            alone[name].append(time.perf_counter() - t)
        n = net()
        t = time.perf_counter()
        score(n, batch)
        _sync(args.device)
        together.append(time.perf_counter() - t)
        epochs.append(epoch_seconds(net(), args.device))
    epoch = statistics.median(epochs)
    rows = {n: statistics.median(v) for n, v in alone.items()}
    rows["all (shared passes)"] = statistics.median(together)
    print(f"{args.cells} random NB201 cells, batch {args.batch_size}, device {args.device}, {args.threads} thread(s); "
          f"one training epoch (50k images, batch 256): median {epoch:.1f} s\n")
    print("| proxy | median s/cell | share of one epoch |\n|---|---|---|")
    for n, s in rows.items():
        print(f"| {n} | {s:.4f} | {s / epoch:.2e} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"epoch_s": epoch, "seconds": rows, "cells": args.cells,
                                               "batch_size": args.batch_size, "device": args.device}, indent=1))


if __name__ == "__main__":
    main()
