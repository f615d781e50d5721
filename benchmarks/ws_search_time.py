"""How long would a NAO-WS CIFAR-10 search take here? Times one supernet epoch and the scoring of
cells with a preset's real shapes, then extrapolates the preset's whole search.

Issue 4's GPU target: one search epoch on CIFAR-10 and the extrapolated search time against the
paper's "under 10 GPU hours" (goal: at most 1 GPU hour on an H100). Device-agnostic; on a GPU::

    python benchmarks/ws_search_time.py --device cuda                   # paper preset, full epochs
    python benchmarks/ws_search_time.py --device cuda --preset short
    python benchmarks/ws_search_time.py --device cpu --train-images 1280 --score-cells 4   # CPU smoke

What is timed, with the preset's supernet (F, N, batch, augmentation, scoring images): a round of
``--epochs`` supernet epochs over ``--pool`` random cells (one cell per mini-batch, as in a search;
the last epoch's images/s is used, so the first absorbs warm-up and autotuning), then the scoring of
``--score-cells`` cells on the preset's fixed validation images. The extrapolation multiplies these
by the preset's counts: supernet epochs x training images, rounds x pool scorings, and the top-k
rerank (top_k x rerank epochs of stand-alone training, costed at the supernet's images/s: one path of
the supernet is the same network). Controller training is not included (CPU numbers for it are in
BENCHMARKS.md, Predictor and controller). Real CIFAR-10 is used when it is on disk (``--data-dir``,
``$NAO_DATA``), else random images of CIFAR's shape (speed does not depend on pixel values).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace

import numpy as np
import torch

from nao.data.cifar import ImageSet, downsample
from nao.data.digits import ImageSplits
from nao.errors import DataError
from nao.evaluators.supernet import SupernetEvaluator
from nao.presets import preset
from nao.runs.images import load_splits
from nao.runs.kinds.supernet_cnn import WSConfig
from nao.spaces import get_space
from nao.threads import torch_threads
from nao.train.classifier import make_runtime

PAPER_GPU_HOURS = 10.0  # "less than 10 GPU hours" (Luo et al. 2018, NAO-WS)
GOAL_GPU_HOURS = 1.0  # issue 4's goal on an H100


def synthetic_cifar(n_train: int, n_val: int, seed: int = 0) -> ImageSplits:
    """Random uint8 images of CIFAR-10's shape (32x32x3, 10 classes)."""
    g = torch.Generator().manual_seed(seed)

    def part(n: int) -> ImageSet:
        return ImageSet(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n,), generator=g))

    return ImageSplits("synthetic-cifar10", part(n_train), part(n_val), part(10), 10, None)


def splits_for(cfg: WSConfig, synthetic: bool) -> ImageSplits:
    """The preset's CIFAR-10 splits, or random images of the same sizes when asked or absent."""
    if not synthetic:
        try:
            return load_splits(cfg)
        except (DataError, FileNotFoundError, OSError) as e:
            print(f"CIFAR-10 not available ({e}); timing on random images of the same shape", flush=True)
    data = synthetic_cifar(cfg.train_images or 50_000 - cfg.val_images, cfg.val_images)
    if cfg.image_size:
        data = replace(data, train=downsample(data.train, cfg.image_size), val=downsample(data.val, cfg.image_size))
    return data


def search_counts(cfg: WSConfig) -> dict[str, int]:
    """Supernet epochs, rounds and cell scorings of the preset's whole search."""
    st = cfg.supernet_train
    rounds = 1 + math.ceil(max(0, cfg.budget - st.seed_pool) / st.new_per_round)  # every round full
    epochs = rounds * st.epochs_per_round if st.total_epochs <= 0 else max(st.total_epochs, rounds * st.epochs_per_round)
    # Every round scores the whole pool: the seed pool first, then survivors plus the new cells.
    scorings = st.seed_pool + (rounds - 1) * st.pool_size
    return {"rounds": rounds, "supernet_epochs": epochs, "scorings": scorings,
            "rerank_epochs": cfg.top_k * cfg.rerank_train.epochs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="paper", help="NAO-WS preset whose shapes are timed (paper, short, cpu)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default: $NAO_DATA or ../shared/data)")
    p.add_argument("--synthetic", action="store_true", help="random images even if CIFAR-10 is on disk")
    p.add_argument("--train-images", type=int, default=0,
                   help="time epochs over only this many training images (0: the preset's; CPU runs)")
    p.add_argument("--epochs", type=int, default=2, help="supernet epochs timed (the last one counts)")
    p.add_argument("--pool", type=int, default=50, help="random cells sharing the timed epochs")
    p.add_argument("--score-cells", type=int, default=20, help="cells whose scoring is timed")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the preset's; 0 leaves torch's setting)")
    p.add_argument("--json", default=None, help="write the numbers here")
    args = p.parse_args()
    if args.epochs < 1 or args.pool < 1 or args.score_cells < 1:
        p.error("--epochs, --pool and --score-cells must be at least 1")
    cfg = preset(f"supernet-cnn/{args.preset}", data_dir=args.data_dir, device=args.device, threads=args.threads)
    if cfg.dataset != "cifar10":
        p.error(f"--preset {args.preset} searches {cfg.dataset}; this benchmark times CIFAR-10 presets (paper, short, cpu)")
    with torch_threads(cfg.threads):
        run(cfg, args)


def run(cfg: WSConfig, args: argparse.Namespace) -> None:
    """Time one round and the scoring with ``cfg``'s shapes; print and save the extrapolation."""

    runtime = make_runtime(args.device)
    data = splits_for(cfg, args.synthetic)
    n_train = len(data.train)
    if args.train_images:
        data = replace(data, train=data.train.take(torch.arange(min(args.train_images, n_train))))
    space = get_space(cfg.space)
    rng = np.random.default_rng(0)
    timed = replace(cfg.supernet_train, seed_pool=args.pool, pool_size=args.pool,
                    new_per_round=min(args.pool, cfg.supernet_train.new_per_round), epochs_per_round=args.epochs,
                    total_epochs=0)
    ev = SupernetEvaluator(space, data, cfg.supernet, timed, runtime, seed=0)
    counts = search_counts(cfg)
    device = runtime.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"preset {cfg.preset}: supernet F={cfg.supernet.channels} N={cfg.supernet.layers}, batch "
          f"{cfg.supernet_train.batch_size}, {len(data.train)} of {n_train} training images per timed epoch, "
          f"{sum(len(y) for _, y in ev.val_chunks)} scoring images; device {name}", flush=True)

    t0 = time.perf_counter()
    ev.evaluate(space.sample_distinct(rng, args.pool))  # trains --epochs epochs, then scores the pool
    _sync(device)
    round_s = time.perf_counter() - t0
    img_s = ev.history[-1]["images_per_s"]
    cells = space.sample_distinct(rng, args.score_cells)
    ev.score(cells[:1])  # warm-up of the eval path
    _sync(device)
    t0 = time.perf_counter()
    ev.score(cells)
    _sync(device)
    score_s = (time.perf_counter() - t0) / len(cells)

    epoch_s = n_train / img_s
    parts = {
        "supernet training": counts["supernet_epochs"] * epoch_s,
        "scoring": counts["scorings"] * score_s,
        "rerank (top-k from scratch)": counts["rerank_epochs"] * epoch_s,
    }
    total_h = sum(parts.values()) / 3600
    # Peak memory is only tracked on CUDA; None (JSON null) elsewhere rather than NaN, which is not JSON.
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    peak_text = f"{peak:.2f} GiB" if peak is not None else f"n/a on {device.type}"
    print(f"timed round: {round_s:.1f}s; supernet {img_s:.0f} img/s -> one search epoch of {n_train} images "
          f"{epoch_s:.1f}s; scoring {score_s * 1e3:.0f} ms/cell; peak GPU memory {peak_text}")
    print(f"whole {cfg.preset} search: {counts['supernet_epochs']} supernet epochs, {counts['rounds']} rounds, "
          f"{counts['scorings']} scorings, {counts['rerank_epochs']} rerank epochs")
    for part, s in parts.items():
        print(f"  {part:28} {s / 3600:7.2f} h")
    print(f"  {'total (without controller)':28} {total_h:7.2f} h   (paper: < {PAPER_GPU_HOURS:.0f} GPU h; "
          f"goal on an H100: <= {GOAL_GPU_HOURS:.0f} h)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"preset": cfg.preset, "device": name, "train_images": n_train, "timed_train_images": len(data.train),
                       "images_per_s": img_s, "epoch_s": epoch_s, "score_ms": score_s * 1e3, "counts": counts,
                       "hours": {k: v / 3600 for k, v in parts.items()}, "total_h": total_h, "peak_gib": peak,
                       "torch": torch.__version__}, fh, indent=2)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
