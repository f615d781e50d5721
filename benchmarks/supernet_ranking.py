"""Does the supernet rank architectures like stand-alone training does? (digits or 16x16 CIFAR-10, CPU)

Samples ``--archs`` distinct ``nao-ws`` architectures, trains one supernet on exactly that
pool (one architecture per mini-batch, as in a search round), and scores every architecture
three ways:

* ``fixed/batch``: the fixed validation split, BN with the statistics of each fixed chunk
  (the evaluator's default);
* ``fixed/recal``: the fixed validation split, BN running statistics re-estimated per
  architecture on fixed training batches;
* ``random-batch``: one random validation batch per architecture with batch statistics,
  the official NAO-WS code's protocol, for comparison.

Each architecture is then trained from scratch (the rerank settings of ``--preset``: ``digits``,
or ``cpu`` for a 16x16 CIFAR-10 subset) with ``--standalone-seeds`` seeds, and its accuracy on the held-out validation + test
images averaged; the Kendall tau between two seeds is the noise ceiling of the target. The table reports Kendall's tau and
Spearman's rho between each supernet score and the stand-alone accuracy. Run::

    flock /tmp/nao-cpu.lock python benchmarks/supernet_ranking.py --archs 24
    python benchmarks/supernet_ranking.py --preset cpu --archs 20 --supernet-epochs 10 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from nao.data.cifar import ImageSet
from nao.evaluators.supernet import SupernetEvaluator, SupernetTrainConfig
from nao.nn.supernet import SupernetConfig, set_batchnorm_training
from nao.presets import preset as registry_preset
from nao.runs.images import load_splits, train_architecture
from nao.spaces import get_space
from nao.train.classifier import make_runtime


@torch.no_grad()
def random_batch_scores(ev: SupernetEvaluator, archs: list, batch: int, seed: int) -> list[float]:
    """The official protocol: each architecture scored on its own random validation batch."""
    g = torch.Generator().manual_seed(seed)
    x_all = torch.cat([x for x, _ in ev.val_chunks])
    y_all = torch.cat([y for _, y in ev.val_chunks])
    set_batchnorm_training(ev.model.batchnorms(), True)
    out = []
    for a in archs:
        idx = torch.randperm(len(y_all), generator=g)[:batch]
        logits = ev.model(x_all[idx], ev.model.plan(a))
        out.append(float((logits.argmax(1) == y_all[idx]).float().mean()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits", help="nao search preset giving data and settings (digits, cpu)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 folder for the cifar10 presets")
    p.add_argument("--archs", type=int, default=24, help="architectures ranked (default 24)")
    p.add_argument("--supernet-epochs", type=int, default=30, help="supernet epochs on the pool (default 30)")
    p.add_argument("--standalone-epochs", type=int, default=0, help="stand-alone epochs (default: the preset's rerank setting)")
    p.add_argument("--standalone-seeds", type=int, default=2, help="stand-alone runs per architecture, averaged (default 2)")
    p.add_argument("--channels", type=int, default=0, help="supernet width F (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="write the per-architecture numbers here")
    p.add_argument("--standalone-from", default=None,
                   help="reuse the stand-alone accuracies of an earlier --json run (same --archs and --seed)")
    p.add_argument("--affine", type=int, default=1, help="learnable BN scale/shift in the supernet (default 1)")
    p.add_argument("--lr", type=float, default=0.0, help="supernet learning rate (default: the preset's)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    space = get_space("nao-ws")
    preset = registry_preset(f"supernet-cnn/{args.preset}", seed=args.seed, data_dir=args.data_dir)
    data = load_splits(preset)
    archs = space.sample_distinct(np.random.default_rng(args.seed), args.archs)
    sn_cfg = SupernetTrainConfig(
        **{**preset.supernet_train.to_dict(), "seed_pool": args.archs, "pool_size": args.archs, "new_per_round": 1,
           "epochs_per_round": args.supernet_epochs, "total_epochs": args.supernet_epochs,
           "augment": preset.supernet_train.augment if data.augment is not None else None, **({"lr": args.lr} if args.lr else {})}
    )
    ev = SupernetEvaluator(space, data, SupernetConfig(channels=args.channels or preset.supernet.channels, layers=preset.supernet.layers, affine=bool(args.affine)), sn_cfg, make_runtime("cpu"), seed=args.seed)
    t0 = time.perf_counter()
    ev.train_on(archs, args.supernet_epochs)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch_scores = ev.score(archs, bn="batch")
    batch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recal_scores = ev.score(archs, bn="recalibrate")
    recal_s = time.perf_counter() - t0
    rand_scores = random_batch_scores(ev, archs, 128, args.seed)
    print(f"supernet: {args.archs} archs, {args.supernet_epochs} epochs in {train_s:.0f}s "
          f"(final train_acc {ev.history[-1]['train_acc']:.3f}); scoring {batch_s / len(archs) * 1e3:.0f} ms/arch (batch), "
          f"{recal_s / len(archs) * 1e3:.0f} ms/arch (recal)")

    train_cfg = preset.rerank_train
    if args.standalone_epochs:
        train_cfg = type(train_cfg)(**{**train_cfg.to_dict(), "epochs": args.standalone_epochs, "augment": train_cfg.augment})
    # Stand-alone accuracy is measured on validation + test images (719 digits): a benchmark, not
    # a search, may read test images, and twice the images halve the binomial noise of the target.
    held_out = ImageSet(torch.cat([data.val.images, data.test.images]), torch.cat([data.val.labels, data.test.labels]))
    t0 = time.perf_counter()
    if args.standalone_from:
        with open(args.standalone_from) as fh:
            saved = json.load(fh)
        if saved["archs"] != [space.format(a) for a in archs]:
            raise SystemExit(f"{args.standalone_from}: different architectures (use the same --archs and --seed)")
        runs = np.array(saved["standalone_runs"])
    else:
        runs = np.zeros((args.standalone_seeds, len(archs)))
        for s in range(args.standalone_seeds):
            for i, a in enumerate(archs):
                r = train_architecture(space, a, data, preset.rerank_network, train_cfg, make_runtime("cpu"),
                                       data.train, {"held": held_out}, 1000 * s + args.seed + i)
                runs[s, i] = r["metrics"]["held_acc"]
    standalone = runs.mean(axis=0).tolist()
    print(f"stand-alone: {args.archs} archs x {len(runs)} seeds x {train_cfg.epochs} epochs "
          f"(F={preset.rerank_network.channels}, N={preset.rerank_network.layers}) in {time.perf_counter() - t0:.0f}s; "
          f"held-out acc {np.mean(standalone):.4f} mean, {np.min(standalone):.4f}..{np.max(standalone):.4f}")
    if len(runs) >= 2:
        tau, p_tau = kendalltau(runs[0], runs[1])
        print(f"stand-alone seed 1 vs seed 2 (noise ceiling): kendall tau {tau:.3f} (p {p_tau:.3f})")

    rows = {
        "fixed/batch": [s for s, _ in batch_scores],
        "fixed/batch (-loss)": [-loss for _, loss in batch_scores],
        "fixed/recal": [s for s, _ in recal_scores],
        "fixed/recal (-loss)": [-loss for _, loss in recal_scores],
        "random-batch": rand_scores,
    }
    print(f"\n{'supernet score':22} {'mean':>7} {'kendall tau':>12} {'p':>7} {'spearman':>9}")
    summary = {}
    for name, scores in rows.items():
        tau, p_tau = kendalltau(scores, standalone)
        rho, _ = spearmanr(scores, standalone)
        summary[name] = {"tau": float(tau), "p": float(p_tau), "spearman": float(rho)}
        print(f"{name:22} {np.mean(scores):7.4f} {tau:12.3f} {p_tau:7.3f} {rho:9.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "archs": [space.format(a) for a in archs], "standalone_acc": standalone,
                       "standalone_runs": runs.tolist(),
                       "scores": rows, "summary": summary}, fh, indent=2)


if __name__ == "__main__":
    main()
