"""How well each zero-cost proxy ranks *trained* candidates: Kendall tau against what a trained search measures.

    python benchmarks/proxy_tau_trained.py --task ptb --cells 30            # ~11 min on one core
    python benchmarks/proxy_tau_trained.py --task cifar10 --cells 30        # ~6 min on one core
    python benchmarks/proxy_tau_trained.py --task both --json OUT.json

PTB: ``--cells`` uniformly random cells of the ``rnn`` space, each trained exactly as a ``trained-rnn`` ``cpu``
preset candidate is (the ``small`` LM, one pass, validated once at its end; ``LMTrainingEvaluator``) but on the
first ``--ptb-tokens`` training / validation tokens (default 60k / 10k instead of the preset's 200k / 20k, so 30
cells fit ~11 minutes of one core); the proxies defined for a language model (:mod:`nao.proxies.lm`) are scored
on the untrained model (same seed: the weights training starts from) on ``--batch`` windows of the same text,
and correlated with ``-val_ppl`` (lower perplexity is better). CIFAR-10: the same for ``trained-cnn`` ``cpu``
preset candidates (16x16 images, 5k train / 1k validation, F=8 N=1) trained ``--cifar-epochs`` (1) epoch, all
eight image proxies on ``--batch`` training images, against ``val_acc``. Both also rank by the log-rank
aggregate (:mod:`nao.proxies.aggregate`) of its default members that are defined here, and of every proxy
scored. Prints markdown tables with the command and wall times; ``--json`` keeps every cell's numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch
from scipy.stats import kendalltau

from nao.proxies.aggregate import AGGREGATE_PROXIES, aggregate


def _distinct(space, n: int, seed: int) -> list:
    rng, seen, out = np.random.default_rng(seed), set(), []
    while len(out) < n:
        a = space.sample(rng)
        if space.key(space.prune(a)) not in seen:
            seen.add(space.key(space.prune(a)))
            out.append(a)
    return out


def tau_rows(names: list[str], values: np.ndarray, target: np.ndarray) -> list[tuple[str, str, str]]:
    """``(proxy, tau, p)`` per proxy and for the two aggregates; ``target`` is higher-is-better."""
    rows = []
    for j, n in enumerate(names):
        col = values[:, j]
        if np.ptp(col) == 0:
            rows.append((n, "n/a: constant", f"(every cell {col[0]:.4g})"))
            continue
        t, p = kendalltau(col, target)
        rows.append((n, f"{t:+.3f}", f"{p:.3f}"))
    members = [m for m in AGGREGATE_PROXIES if m in names]
    for label, group in ((f"aggregate ({', '.join(members)})", members), (f"aggregate (all {len(names)})", names)):
        agg = aggregate(values[:, [names.index(m) for m in group]])
        t, p = kendalltau(agg, target)
        rows.append((label, f"{t:+.3f}", f"{p:.3f}"))
    return rows


def _table(title: str, rows: list[tuple[str, str, str]], n: int, target: str) -> str:
    out = [f"**{title}** ({n} cells; Kendall tau-b of each score with {target})", "",
           "| proxy | Kendall tau | p |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(out)


def run_ptb(args) -> dict:
    from nao.data.corpus import load_corpus
    from nao.data.paths import data_root
    from nao.evaluators.lm_training import LMTrainingEvaluator
    from nao.presets import preset
    from nao.proxies.lm import LM_PROXIES, score_lm_cell, token_batch
    from nao.runs.kinds.trained_rnn import _head
    from nao.spaces import get_space

    t0 = time.perf_counter()
    cfg = preset("trained-rnn/cpu")
    lm = replace(cfg.lm, seed=args.seed)
    corpus = _head(load_corpus(args.ptb_dir or data_root() / "ptb"), args.ptb_tokens)
    space = get_space("rnn")
    evaluator = LMTrainingEvaluator(space, corpus, lm, seed=args.seed)
    batch = token_batch(corpus.train, args.batch, lm.bptt, args.seed)
    names = list(LM_PROXIES)
    cells = []
    for i, arch in enumerate(_distinct(space, args.cells, args.seed)):
        scores, zc_s = score_lm_cell(space, arch, batch, names, lm.model, len(corpus.vocab), args.seed)
        r = evaluator.evaluate([arch])[0]
        cells.append({"arch": space.format(arch), "status": r.status, "val_ppl": r.metrics.get("val_ppl"),
                      "train_s": r.cost_s, "zc_s": zc_s, **{f"zc_{n}": v for n, v in scores.items()}})
        print(f"  ptb {i + 1}/{args.cells}: val_ppl {r.metrics.get('val_ppl', float('nan')):.1f} "
              f"({r.cost_s:.1f}s train, {zc_s:.2f}s proxies)", file=sys.stderr, flush=True)
    ok = [c for c in cells if c["status"] == "ok"]
    values = np.array([[c[f"zc_{n}"] for n in names] for c in ok])
    rows = tau_rows(names, values, -np.array([c["val_ppl"] for c in ok]))
    return {"task": "ptb", "cells": cells, "rows": rows, "names": names, "n_ok": len(ok),
            "wall_s": time.perf_counter() - t0,
            "setting": f"rnn space, trained-rnn cpu preset LM ({lm.model.hidden_size} units, batch {lm.batch_size}, "
                       f"bptt {lm.bptt}, lr {lm.lr}), one pass over the first {args.ptb_tokens[0]:,} PTB training "
                       f"tokens, validated on the first {args.ptb_tokens[1]:,}; proxies on {args.batch} windows of "
                       f"{lm.bptt} tokens", "target": "-val_ppl"}


def run_cifar(args) -> dict:
    from nao.evaluators.training import TrainingEvaluator
    from nao.presets import preset
    from nao.proxies.measures import PROXIES, ProxyBatch
    from nao.proxies.table import image_batch
    from nao.runs.images import load_splits
    from nao.runs.kinds.trained_cnn import child_zero_cost
    from nao.spaces import get_space

    t0 = time.perf_counter()
    cfg = replace(preset("trained-cnn/cpu"), seed=args.seed)
    if args.cifar_dir:
        cfg = replace(cfg, data_dir=args.cifar_dir)
    data = load_splits(cfg)
    space = get_space(cfg.space)
    train = replace(cfg.train, epochs=args.cifar_epochs)
    evaluator = TrainingEvaluator.from_splits(space, data, network=cfg.network, train_config=train, seed=args.seed)
    pb = image_batch(data.train.images, data.train.labels, args.batch, args.seed, data.image_size, data.num_classes)
    names = list(PROXIES)
    zc = child_zero_cost(space, ProxyBatch(pb.inputs, pb.targets), tuple(names),
                         replace(cfg.network, num_classes=data.num_classes), args.seed, torch.device("cpu"))
    cells = []
    for i, arch in enumerate(_distinct(space, args.cells, args.seed)):
        before = zc.spent_s
        scores = zc.scores([arch])[0]
        zc_s = zc.spent_s - before
        r = evaluator.evaluate([arch])[0]
        cells.append({"arch": space.format(arch), "status": r.status, "val_acc": r.metrics.get("val_acc"),
                      "train_s": r.cost_s, "zc_s": zc_s, **{f"zc_{n}": float(v) for n, v in zip(names, scores)}})
        print(f"  cifar10 {i + 1}/{args.cells}: val_acc {r.metrics.get('val_acc', float('nan')):.4f} "
              f"({r.cost_s:.1f}s train, {zc_s:.2f}s proxies)", file=sys.stderr, flush=True)
    ok = [c for c in cells if c["status"] == "ok"]
    values = np.array([[c[f"zc_{n}"] for n in names] for c in ok])
    rows = tau_rows(names, values, np.array([c["val_acc"] for c in ok]))
    n_tr, n_va, _ = data.sizes()
    return {"task": "cifar10", "cells": cells, "rows": rows, "names": names, "n_ok": len(ok),
            "wall_s": time.perf_counter() - t0,
            "setting": f"{cfg.space} space, trained-cnn cpu preset child (F={cfg.network.channels}, "
                       f"N={cfg.network.layers}, {data.image_size}x{data.image_size}), {args.cifar_epochs} epoch(s) on "
                       f"{n_tr} CIFAR-10 training images, validated on {n_va}; proxies on {args.batch} training images",
            "target": "val_acc"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("ptb", "cifar10", "both"), default="both")
    p.add_argument("--cells", type=int, default=30, help="random cells per task")
    p.add_argument("--seed", type=int, default=0, help="seeds the cells, the batches and every initialisation")
    p.add_argument("--batch", type=int, default=64, help="proxy minibatch: images, or token windows (streams)")
    p.add_argument("--ptb-tokens", default="60000,10000", help="training,validation tokens of PTB (0: all)")
    p.add_argument("--ptb-dir", default=None)
    p.add_argument("--cifar-dir", default=None)
    p.add_argument("--cifar-epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (one core: 1)")
    p.add_argument("--json", default=None, help="write every cell's numbers here")
    args = p.parse_args()
    args.ptb_tokens = tuple(int(x) for x in args.ptb_tokens.split(","))
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    parts = []
    if args.task in ("ptb", "both"):
        parts.append(run_ptb(args))
    if args.task in ("cifar10", "both"):
        parts.append(run_cifar(args))
    print(f"```\npython benchmarks/proxy_tau_trained.py {' '.join(sys.argv[1:])}     # {time.perf_counter() - t0:.0f} s "
          f"wall, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}\n```\n")
    for part in parts:
        train_s = np.mean([c["train_s"] for c in part["cells"]])
        zc_s = np.mean([c["zc_s"] for c in part["cells"]])
        print(_table(f"{part['task']}: {part['setting']}", part["rows"], part["n_ok"], part["target"]))
        print(f"\n{part['task']}: {part['wall_s']:.0f} s wall; per cell {train_s:.1f} s training, {zc_s:.2f} s "
              f"scoring every proxy ({zc_s / train_s:.1%} of a training)"
              + (f"; {len(part['cells']) - part['n_ok']} failed" if part["n_ok"] < len(part["cells"]) else "") + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(parts, fh, indent=1)


if __name__ == "__main__":
    main()
