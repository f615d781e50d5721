"""Is the NAO-WS winner better than random architectures? (CPU)

Runs one search with a ``nao search`` preset (``digits`` by default; ``cpu`` is a 16x16 CIFAR-10
subset), then trains ``--random`` random architectures of the same space exactly as the winner's
final training (same network size, epochs, seeds; train + validation images) and compares test
accuracies: the winner's percentile among the random ones and the random mean. Run::

    python benchmarks/ws_usefulness.py --seed 0 --final-seeds 2
    python benchmarks/ws_usefulness.py --preset cpu --jobs 1     # random cells on the other core
    python benchmarks/ws_usefulness.py --preset cpu --winner-from RUN --jobs 2   # reuse `nao search --preset cpu --out RUN`
    python benchmarks/ws_usefulness.py --preset cpu --winner-from RUN2 --random-from OUT.json  # same random cells

With ``--jobs K`` the random trainings run in K worker processes (one torch thread each) while the
search runs in this one, so on 2 cores ``--jobs 1`` roughly halves the wall time. The random cells
are drawn before the search (seeded apart from it) so they cannot depend on it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from nao.data.digits import ImageSplits
from nao.presets import preset
from nao.runs import run as run_search
from nao.runs.images import join_sets, load_splits, train_architecture
from nao.runs.kinds.supernet_cnn import WSConfig
from nao.spaces import get_space
from nao.threads import torch_threads
from nao.train.classifier import make_runtime

_DATA: dict[tuple, ImageSplits] = {}  # per worker process: the splits, loaded once


def _config(name: str, seed: int, strategy: str, data_dir: str | None) -> WSConfig:
    return preset(f"supernet-cnn/{name}", seed=seed, strategy=strategy, data_dir=data_dir)


def final_accs(cfg: WSConfig, tokens: list[int], seeds: list[int]) -> list[float]:
    """Test accuracy of ``tokens`` after the preset's final training, once per seed."""
    key = (cfg.preset, cfg.seed, cfg.data_dir)
    if key not in _DATA:
        _DATA[key] = load_splits(cfg)
    data = _DATA[key]
    space = get_space(cfg.space)
    arch = space.make(tokens)
    with torch_threads(cfg.threads or 1):
        return [train_architecture(space, arch, data, cfg.final_network, cfg.final_train, make_runtime(cfg.device),
                                   join_sets(data.train, data.val), {"test": data.test}, s)["metrics"]["test_acc"]
                for s in seeds]


def _worker(preset: str, seed: int, strategy: str, data_dir: str | None, tokens: list[int],
            seeds: list[int]) -> list[float]:
    return final_accs(_config(preset, seed, strategy, data_dir), tokens, seeds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits", help="nao search preset (digits, cpu, ...)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder for the cifar10 presets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", type=int, default=10, help="random architectures trained for comparison")
    p.add_argument("--strategy", default="nao")
    p.add_argument("--final-seeds", type=int, default=1,
                   help="final trainings per architecture (seeds seed..seed+K-1), averaged: digits' 360 test "
                        "images make one training a noisy judge (1 image = 0.28%%)")
    p.add_argument("--jobs", type=int, default=0,
                   help="worker processes training the random cells during the search (0: after it, here)")
    p.add_argument("--winner-from", default=None,
                   help="run directory of an earlier `nao search` with the same preset and seed: skip the search")
    p.add_argument("--random-from", default=None,
                   help="--json of an earlier run with the same preset, seed, --random and --final-seeds: reuse its "
                        "random cells' accuracies (they never depend on the search)")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    cfg = _config(args.preset, args.seed, args.strategy, args.data_dir)
    space = get_space(cfg.space)
    seeds = list(range(cfg.seed, cfg.seed + args.final_seeds))
    randoms = space.sample_distinct(np.random.default_rng(10_000 + args.seed), args.random)
    pool = None
    futures: list[Future] = []
    t_random = time.perf_counter()
    saved = reuse_randoms(args, [space.format(a) for a in randoms]) if args.random_from else None
    if args.jobs > 0 and saved is None:
        pool = ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_worker, args.preset, args.seed, args.strategy, args.data_dir, list(a.tokens), seeds)
                   for a in randoms]

    t0 = time.perf_counter()
    if args.winner_from:
        report = reuse_search(args.winner_from, cfg)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            report = run_search(cfg, f"{tmp}/run", say=lambda line: print(line[:160], flush=True))
    search_s = report["total_s"] if args.winner_from else time.perf_counter() - t0
    # The search's own final training used seed cfg.seed; the other seeds are trained here.
    winner_runs = [report["final"]["test_acc"]] + final_accs(cfg, report["winner_tokens"], seeds[1:])
    winner_acc = float(np.mean(winner_runs))
    print(f"winner test_acc per seed {[round(a, 4) for a in winner_runs]} -> {winner_acc:.4f}", flush=True)
    if space.key(space.make(report["winner_tokens"])) in {space.key(a) for a in randoms}:
        print("note: the winner is one of the random cells", flush=True)

    accs: list[float] = []
    if pool is None:
        t_random = time.perf_counter()
    for i, arch in enumerate(randoms):
        if saved is not None:
            runs = [saved[i]]
        else:
            runs = futures[i].result() if pool else final_accs(cfg, list(arch.tokens), seeds)
        accs.append(float(np.mean(runs)))
        print(f"  random {i + 1}/{len(randoms)}: test_acc {accs[-1]:.4f} {space.format(arch)}", flush=True)
    random_s = time.perf_counter() - t_random
    if pool is not None:
        pool.shutdown()
    summarise(args, cfg, report, search_s, random_s, winner_acc, winner_runs, accs, [space.format(a) for a in randoms])


def reuse_search(run_dir: str, cfg: WSConfig) -> dict:
    """``result.json`` of an earlier search, checked to match ``cfg`` where it matters."""
    run = Path(run_dir)
    saved = json.loads((run / "config.json").read_text())
    for name in ("preset", "seed", "strategy", "dataset", "image_size"):
        if saved.get(name) != getattr(cfg, name):
            raise SystemExit(f"{run}/config.json: {name} is {saved.get(name)!r}, this benchmark uses {getattr(cfg, name)!r}")
    report = json.loads((run / "result.json").read_text())
    report["supernet_score"] = saved["supernet_train"].get("score", "acc")  # flags may have overridden the preset
    print(f"reusing the search in {run}: winner {report['winner']}, test_acc {report['final']['test_acc']:.4f}")
    return report


def reuse_randoms(args: Any, archs: list[str]) -> list[float]:
    """The random cells' accuracies from ``--random-from``, checked to be the same cells and settings."""
    saved = json.loads(Path(args.random_from).read_text())
    for name, want in (("preset", args.preset), ("seed", args.seed), ("final_seeds", args.final_seeds)):
        if saved.get(name) != want:
            raise SystemExit(f"{args.random_from}: {name} is {saved.get(name)!r}, this run uses {want!r}")
    if saved.get("random_archs", archs) != archs or len(saved["random_test_acc"]) != len(archs):
        raise SystemExit(f"{args.random_from}: different random cells (use the same --random and --seed)")
    print(f"reusing the {len(archs)} random cells' accuracies from {args.random_from}")
    return list(saved["random_test_acc"])


def summarise(args: Any, cfg: WSConfig, report: dict, search_s: float, random_s: float, winner_acc: float,
              winner_runs: list[float], accs: list[float], random_archs: list[str]) -> None:
    accs_arr = np.array(accs)
    score = report.get("supernet_score", cfg.supernet_train.score)
    # Percentile: share of random architectures the winner beats, ties counting half.
    pct = 100.0 * (np.mean(accs_arr < winner_acc) + 0.5 * np.mean(accs_arr == winner_acc))
    where = f"{args.jobs} worker process(es)" if args.jobs > 0 else "in this process"
    if args.random_from:
        where = f"reused from {args.random_from}"
    if args.winner_from:
        where += f"; search reused from {args.winner_from}"
    print(f"\npreset {cfg.preset}: search ({cfg.strategy}, budget {cfg.budget}, pool ranked by "
          f"{score}) with rerank + final {search_s:.0f}s; "
          f"{len(accs)} random trainings {random_s:.0f}s ({where})")
    print(f"final training: F={cfg.final_network.channels}, N={cfg.final_network.layers}, "
          f"{cfg.final_train.epochs} epochs, test set {report['sizes'][2]} images, mean of {args.final_seeds} seed(s)")
    print(f"winner {report['winner']}")
    print(f"winner test_acc {winner_acc:.4f}; random mean {accs_arr.mean():.4f} ± {accs_arr.std(ddof=1):.4f} (sd), "
          f"min {accs_arr.min():.4f}, max {accs_arr.max():.4f}; winner percentile {pct:.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"preset": cfg.preset, "seed": args.seed, "supernet_score": score,
                       "winner": report["winner"],
                       "winner_test_acc": winner_acc, "winner_runs": winner_runs, "final_seeds": args.final_seeds,
                       "random_test_acc": accs, "random_archs": random_archs, "percentile": pct, "search_s": search_s, "random_s": random_s},
                      fh, indent=2)


if __name__ == "__main__":
    main()
