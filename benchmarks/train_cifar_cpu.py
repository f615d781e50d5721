"""CPU training benchmarks on real CIFAR-10.

1. ``accuracy``: the ``small`` preset (DARTS-V2 cell, F=16, N=1, 4 epochs) trained through
   the real ``nao train`` command on a seeded 10,000-image subset of the training set,
   scored on the full 10,000-image test set; prints accuracy and wall time (data loading,
   model building, training and the final test pass included).
2. ``speed``: training and inference images/s of NAONet-A at the paper size (F=36, N=6,
   auxiliary head, drop path) on random batches, after warm-up steps.

Run (the lock keeps other jobs off the 2 cores)::

    flock /tmp/nao-cpu.lock python benchmarks/train_cifar_cpu.py accuracy --threads 1
    flock /tmp/nao-cpu.lock python benchmarks/train_cifar_cpu.py speed --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from nao.data.paths import data_root


def accuracy(args: argparse.Namespace) -> None:
    from nao.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp) / "run"
        cmd = ["-q", "train", "--arch", args.arch, "--preset", "small", "--subset", str(args.subset),
               "--data-dir", str(args.data_dir), "--threads", str(args.threads), "--out", str(out)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        t0 = time.perf_counter()
        code = main(cmd)
        wall = time.perf_counter() - t0
        metrics = json.loads((out / "metrics.json").read_text())
    final = metrics["final"]
    print(f"command: nao {' '.join(cmd)}")
    print(f"exit {code}; {metrics['epochs_done']} epochs on {metrics['meta']['train_images']} images; "
          f"{metrics['meta']['params'] / 1e6:.3f}M params")
    for row in metrics["history"]:
        print(f"  epoch {row['epoch']}: train_loss {row['train_loss']:.3f} train_acc {row['train_acc']:.3f} "
              f"{row['images_per_s']:.0f} img/s ({row['train_s']:.0f}s)")
    print(f"test_acc {final['test_acc']:.4f} on {metrics['meta']['test_images']} test images; wall {wall:.0f}s "
          f"({wall / 60:.1f} min)")


def speed(args: argparse.Namespace) -> None:
    from nao.nn.network import CellNetwork, NetworkConfig, known_cells

    normal, reduce = known_cells(args.arch)
    cfg = NetworkConfig(channels=args.channels, layers=args.layers, auxiliary=True, drop_path=0.2, dropout=0.4)
    net = CellNetwork(normal, reduce, cfg, torch.Generator().manual_seed(0))
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, generator=g).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch,), generator=g)

    def train_step() -> None:
        net.set_drop_path(0.5)
        logits, aux = net(x)
        loss = torch.nn.functional.cross_entropy(logits, y) + 0.4 * torch.nn.functional.cross_entropy(aux, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()

    net.train()
    train_step()  # warm-up (oneDNN primitive creation)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    train_ips = args.steps * args.batch / (time.perf_counter() - t0)
    net.eval()
    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            net(x)
        infer_ips = args.steps * args.batch / (time.perf_counter() - t0)
    print(f"{args.arch} F={args.channels} N={args.layers} batch {args.batch}, {torch.get_num_threads()} thread(s), "
          f"{'channels_last' if args.channels_last else 'NCHW'}: train {train_ips:.1f} img/s, "
          f"inference {infer_ips:.1f} img/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["accuracy", "speed"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arch", default=None, help="default: darts-v2 (accuracy), naonet-a (speed)")
    p.add_argument("--data-dir", default=data_root())
    p.add_argument("--subset", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument("--out", default=None, help="keep the run directory here")
    p.add_argument("--channels", type=int, default=36)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "accuracy":
        args.arch = args.arch or "darts-v2"
        accuracy(args)
    else:
        args.arch = args.arch or "naonet-a"
        speed(args)


if __name__ == "__main__":
    main()
