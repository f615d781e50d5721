"""Is the NAO-WS winner better than random architectures? (digits, CPU)

Runs the embedded default search (``digits`` preset, the ``nao`` strategy) once, then trains
``--random`` random ``nao-ws`` architectures exactly as the winner's final training (same
network size, epochs, seed; train + validation images) and compares test accuracies: the
winner's percentile among the random ones and the random mean. Run::

    flock /tmp/nao-cpu.lock python benchmarks/ws_usefulness.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from nao.spaces import get_space
from nao.threads import torch_threads
from nao.train.classifier import make_runtime
from nao.ws import join_sets, load_splits, preset_config, run_ws_search, train_architecture


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", type=int, default=10, help="random architectures trained for comparison")
    p.add_argument("--strategy", default="nao")
    p.add_argument("--final-seeds", type=int, default=1,
                   help="final trainings per architecture (seeds seed..seed+K-1), averaged: digits' 360 test "
                        "images make one training a noisy judge (1 image = 0.28%%)")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    cfg = preset_config("digits", seed=args.seed, strategy=args.strategy)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = run_ws_search(cfg, f"{tmp}/run", progress=lambda line: print(line[:160], flush=True))
    search_s = time.perf_counter() - t0
    space = get_space(cfg.space)
    data = load_splits(cfg)

    def final_accs(arch, seeds) -> list[float]:
        return [train_architecture(space, arch, data, cfg.final_network, cfg.final_train, make_runtime(cfg.device),
                                   join_sets(data.train, data.val), {"test": data.test}, s)["metrics"]["test_acc"]
                for s in seeds]

    winner_runs = [report["final"]["test_acc"]]  # the search's own final training used seed cfg.seed
    with torch_threads(cfg.threads):
        winner_runs += final_accs(space.make(report["winner_tokens"]), range(cfg.seed + 1, cfg.seed + args.final_seeds))
    winner_acc = float(np.mean(winner_runs))
    print(f"winner test_acc per seed {[round(a, 4) for a in winner_runs]} -> {winner_acc:.4f}", flush=True)
    rng = np.random.default_rng(10_000 + args.seed)
    seen = {tuple(report["winner_tokens"])}
    accs = []
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        while len(accs) < args.random:
            arch = space.sample(rng)
            if space.key(arch) in seen:
                continue
            seen.add(space.key(arch))
            accs.append(float(np.mean(final_accs(arch, range(cfg.seed, cfg.seed + args.final_seeds)))))
            print(f"  random {len(accs)}/{args.random}: test_acc {accs[-1]:.4f}", flush=True)
    random_s = time.perf_counter() - t0
    accs_arr = np.array(accs)
    # Percentile: share of random architectures the winner beats, ties counting half.
    pct = 100.0 * (np.mean(accs_arr < winner_acc) + 0.5 * np.mean(accs_arr == winner_acc))
    n_test = len(data.test)
    print(f"\nsearch ({cfg.strategy}, budget {cfg.budget}) {search_s:.0f}s; {args.random} random trainings {random_s:.0f}s")
    print(f"final training: F={cfg.final_network.channels}, N={cfg.final_network.layers}, "
          f"{cfg.final_train.epochs} epochs, test set {n_test} images, mean of {args.final_seeds} seed(s) per arch")
    print(f"winner test_acc {winner_acc:.4f}; random mean {accs_arr.mean():.4f} ± {accs_arr.std(ddof=1):.4f} (sd), "
          f"min {accs_arr.min():.4f}, max {accs_arr.max():.4f}; winner percentile {pct:.0f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seed": args.seed, "winner": report["winner"], "winner_test_acc": winner_acc, "winner_runs": winner_runs,
                       "final_seeds": args.final_seeds,
                       "random_test_acc": accs, "percentile": pct, "search_s": search_s}, fh, indent=2)


if __name__ == "__main__":
    main()
