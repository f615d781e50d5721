"""Does the controller rank top-rung (200-epoch) scores better with the low-rung (12-epoch) labels?

A multi-fidelity search after its first round has ``n0`` candidates scored at 12 epochs and the
top third of them (by that score) also at 200 epochs. For each seed this draws such a pool from
NB201 CIFAR-10 and fits one controller (same pretraining, same number of gradient steps) per
target design:

* ``top``: only the promoted third, 200-epoch labels (no low-rung labels);
* ``rung0``: every candidate's 12-epoch label only;
* ``raw``: every candidate at its highest rung, unscaled;
* ``calibrated``: the design used by multi-fidelity NAO (:mod:`nao.fidelity.targets`);
* ``oracle``: every candidate at 200 epochs (three times the compute: an upper bound).

It prints Kendall's tau of the predictions against 200-epoch validation accuracy on 1000 held-out
architectures, and among the held-out top decile (where a search's choices are made).

    python benchmarks/fidelity_tau.py --seeds 10 --n0 90
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np

from nao.controller.config import for_space
from nao.controller.evaluate import summarize
from nao.controller.fit import DEFAULT_FIT_STEPS, epochs_for_steps, fit, pretrain_on_space
from nao.controller.metrics import kendall_tau
from nao.controller.model import EncoderPredictorDecoder
from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark
from nao.fidelity.targets import fidelity_targets
from nao.spaces import get_space

MODES = ("top", "rung0", "raw", "calibrated", "oracle")


def one_seed(table: TabularBenchmark, seed: int, n0: int, eta: float, test_size: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    space, cfg = table.space, for_space(table.space)
    val, low = table.metrics["val_acc"], table.metrics["val_acc_12ep"]
    perm = rng.permutation(len(table))
    test_idx, pool = perm[:test_size], perm[test_size:test_size + n0]
    promoted = pool[np.argsort(-low[pool], kind="stable")[: int(n0 // eta)]]
    scores = {int(i): {12.0: float(low[i])} for i in pool}
    for i in promoted:
        scores[int(i)][200.0] = float(val[i])
    targets = {
        "top": fidelity_targets(scores, "top"),
        "rung0": {i: by[12.0] for i, by in scores.items()},
        "raw": fidelity_targets(scores, "raw"),
        "calibrated": fidelity_targets(scores, "calibrated"),
        "oracle": {int(i): float(val[i]) for i in pool},
    }
    test = [table.archs[i] for i in test_idx]
    base = EncoderPredictorDecoder(space, cfg, seed=int(rng.integers(2**31)))
    pretrain_on_space(base, rng, exclude={space.key(a) for a in test})
    top_decile = np.argsort(-val[test_idx])[: test_size // 10]
    out = {}
    for mode in MODES:
        rows = sorted(targets[mode])
        model = copy.deepcopy(base)
        fit_rng = np.random.default_rng([seed, MODES.index(mode)])
        epochs = epochs_for_steps(DEFAULT_FIT_STEPS, len(rows), cfg.batch_size)
        fit(model, [table.archs[i] for i in rows], [targets[mode][i] for i in rows], fit_rng, epochs=epochs)
        pred = model.predict(model.tokens(test)).detach().cpu().numpy()
        out[mode] = {"tau": kendall_tau(pred, val[test_idx]),
                     "tau_top10": kendall_tau(pred[top_decile], val[test_idx][top_decile]),
                     "labels": len(rows)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--n0", type=int, default=90, help="candidates scored at 12 epochs (default 90)")
    p.add_argument("--eta", type=float, default=3.0)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--benchmark", default=os.path.join(data_root(), "nasbench201", "nb201_cifar10.csv.gz"))
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    table = TabularBenchmark.load(args.benchmark, get_space("nb201"))
    start = time.perf_counter()
    runs = [one_seed(table, s, args.n0, args.eta, args.test_size) for s in range(args.seeds)]
    print(f"Kendall tau against 200-epoch val_acc, {args.seeds} seeds, n0={args.n0}, top 1/{args.eta:g} promoted, "
          f"{args.test_size} held-out architectures (mean ± s.e.)")
    print(f"{'targets':<12}{'labels':>8}{'tau (all)':>18}{'tau (top 10%)':>18}{'paired vs top':>16}")
    for mode in MODES:
        tau = [r[mode]["tau"] for r in runs]
        t10 = [r[mode]["tau_top10"] for r in runs]
        diff = summarize(np.subtract(tau, [r["top"]["tau"] for r in runs])) if args.seeds > 1 else {"mean": 0, "sem": 0}
        a, b = summarize(tau), summarize(t10)
        print(f"{mode:<12}{runs[0][mode]['labels']:>8}{a['mean']:>11.3f} ± {a['sem']:.3f}{b['mean']:>11.3f} ± {b['sem']:.3f}"
              f"{diff['mean']:>+9.3f} ± {diff['sem']:.3f}")
    print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
