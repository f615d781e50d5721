"""Does scoring a low rung before its learning rate has annealed hurt the ranking? (issue 22)

Under ``--fidelity`` a trained image candidate follows the cosine schedule planned for the *top*
rung and is scored at a lower rung's end while its learning rate is still high, so that a promoted
candidate continues bit-for-bit as a planned training. The alternative is an independent short
training whose own cosine anneals to zero at the low rung's end (what a scheduler that restarts
promoted candidates would score). For ``--archs`` random cells of the ``cpu`` preset (16x16
CIFAR-10, 5k train / 1k validation, F=8 N=1), each trained:

* ``planned``: ``evaluate_at(1)`` then ``evaluate_at(top)``: scored after 1 of ``top`` planned
  epochs, then continued to the top (the scheduler's way);
* ``annealed``: 1 epoch with its own 1-epoch cosine schedule;

it reports Kendall tau of each 1-epoch score against the top-rung score, and the share of the
top-rung top third that each 1-epoch score's top third recovers (what a promotion with eta = 3
keeps), with paired bootstrap standard errors over the cells.

    python benchmarks/fidelity_anneal.py --archs 30 --top 3 --workers 2 --out DIR
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

_STATE: dict = {}


def _init(top: int, seed: int, root: str) -> None:
    import torch

    from nao.evaluators.training import TrainingEvaluator
    from nao.presets import preset
    from nao.runs.images import load_splits
    from nao.spaces import get_space

    torch.set_num_threads(1)
    cfg = preset("trained-cnn/cpu", seed=seed)
    space = get_space(cfg.space)
    data = load_splits(cfg)
    _STATE["space"] = space
    _STATE["planned"] = TrainingEvaluator.from_splits(space, data, network=cfg.network,
                                                      train_config=replace(cfg.train, epochs=top), seed=seed,
                                                      checkpoint_root=Path(root) / "planned")
    _STATE["annealed"] = TrainingEvaluator.from_splits(space, data, network=cfg.network,
                                                       train_config=replace(cfg.train, epochs=1), seed=seed)
    _STATE["top"] = top


def _score(tokens: list[int]) -> tuple[float, float, float]:
    space, top = _STATE["space"], _STATE["top"]
    arch = space.make(tokens)
    planned = _STATE["planned"]
    low = planned.evaluate_at([arch], 1)[0]
    high = planned.evaluate_at([arch], top)[0]
    short = _STATE["annealed"].evaluate([arch])[0]
    return low.metrics["val_acc"], short.metrics["val_acc"], high.metrics["val_acc"]


def _top_third_recall(low: np.ndarray, high: np.ndarray) -> float:
    k = max(1, len(high) // 3)
    return len(set(np.argsort(-low)[:k]) & set(np.argsort(-high)[:k])) / k


def main() -> None:
    from nao.controller.metrics import kendall_tau
    from nao.spaces import get_space

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", type=int, default=30, help="random cells (default: 30)")
    p.add_argument("--top", type=int, default=3, help="top rung in epochs; the low rung is 1 epoch (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples for the standard errors")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space("nao-ws")
    archs = space.sample_distinct(np.random.default_rng(args.seed), args.archs)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(
            args.workers, initargs=(args.top, args.seed, root), initializer=_init) as pool:
        scores = np.array(list(pool.map(_score, [list(a.tokens) for a in archs])))
    planned, annealed, high = scores[:, 0], scores[:, 1], scores[:, 2]
    rng = np.random.default_rng(args.seed)
    stats = {}
    for name, fn in (("tau", kendall_tau), ("top_third_recall", _top_third_recall)):
        a, b = fn(planned, high), fn(annealed, high)
        boots = []
        for _ in range(args.boot):
            i = rng.integers(0, len(high), len(high))
            boots.append(fn(planned[i], high[i]) - fn(annealed[i], high[i]))
        boots = np.array([x for x in boots if np.isfinite(x)])
        stats[name] = {"planned": a, "annealed": b, "difference": a - b, "difference_se": float(boots.std(ddof=1))}
    summary = {"archs": args.archs, "top_epochs": args.top, "seed": args.seed, "wall_s": time.time() - t0,
               "mean_val_acc": {"planned_1ep": float(planned.mean()), "annealed_1ep": float(annealed.mean()),
                                f"top_{args.top}ep": float(high.mean())},
               "stats": stats, "scores": scores.tolist()}
    (out / "fidelity_anneal.json").write_text(json.dumps(summary, indent=2))
    print(f"{args.archs} cells, low rung 1 epoch, top rung {args.top} epochs ({summary['wall_s']:.0f} s)")
    print(f"mean val_acc: planned 1-epoch {planned.mean():.4f}, annealed 1-epoch {annealed.mean():.4f}, "
          f"{args.top}-epoch {high.mean():.4f}")
    for name, s in stats.items():
        print(f"{name:17s} planned {s['planned']:.3f}  annealed {s['annealed']:.3f}  "
              f"planned - annealed {s['difference']:+.3f} ± {s['difference_se']:.3f}")


if __name__ == "__main__":
    main()
