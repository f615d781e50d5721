"""Predictor ranking with and without zero-cost proxies on a benchmark table (Kendall tau on held-out cells).

    python benchmarks/zc_predictor.py --proxies ZC.csv.gz --train-sizes 50,100,200 --test-size 1000 --seeds 30

Splits as ``nao predict-eval`` (:mod:`nao.controller.evaluate`): per seed a random test set and nested random
training sets. One controller is fitted per split (pretrained on the space, never on a test cell), then on the
test cells, against ``val_acc``:

* ``mlp``: NAO's predictor (the controller's MLP head), what ``nao predict-eval`` reports;
* ``gp``: the GP of NAO's adaptive rounds on the controller's embeddings (:mod:`nao.controller.gp`);
* ``gp+zc``: the same GP reading the proxy quantile features beside the embedding (NAO with proxies);
* ``gp-zc-only``: a GP on the proxy features alone;
* ``aggregate``: the proxies' label-free aggregate (no training labels at all);
* ``gp+prior``, ``gp+zc+prior``: those GPs with a prior mean linear in the aggregate (``fit_gp(covariates=)``).

Quantile features are taken within a uniform random 1,000-cell sample (as NAO's seed pool).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from nao.controller.config import for_space
from nao.controller.evaluate import summarize
from nao.controller.fit import fit, pretrain_on_space
from nao.controller.generate import embeddings
from nao.controller.gp import fit_gp
from nao.controller.metrics import kendall_tau
from nao.controller.model import EncoderPredictorDecoder
from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark
from nao.proxies.source import TableZeroCost
from nao.proxies.table import ProxyTable
from nao.spaces import get_space

ARMS = ("mlp", "gp", "gp+zc", "gp-zc-only", "aggregate", "gp+prior", "gp+zc+prior", "gp-zc-only+prior", "mlp+agg")


def _z(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return (v - v.mean()) / (v.std() or 1.0)


def one_split(table: TabularBenchmark, zc: TableZeroCost, train_idx: np.ndarray, test_idx: np.ndarray,
              rng: np.random.Generator) -> dict[str, float]:
    space, val = table.space, table.metrics["val_acc"]
    train = [table.archs[i] for i in train_idx]
    test = [table.archs[i] for i in test_idx]
    model = EncoderPredictorDecoder(space, for_space(space), seed=int(rng.integers(2**31)))
    pretrain_on_space(model, rng, exclude={space.key(a) for a in test})
    fit(model, train, val[train_idx], rng)
    y_train, y_test = torch.as_tensor(val[train_idx]), val[test_idx]
    emb_train, emb_test = embeddings([model], train), embeddings([model], test)
    f_train = torch.as_tensor(zc.features(train)) / math.sqrt(len(zc.members))
    f_test = torch.as_tensor(zc.features(test)) / math.sqrt(len(zc.members))
    preds = {
        "mlp": model.predict(model.tokens(test)).cpu().numpy(),
        "gp": fit_gp(emb_train, y_train).posterior(emb_test)[0].numpy(),
        "gp+zc": fit_gp(torch.cat([emb_train, f_train], 1), y_train).posterior(torch.cat([emb_test, f_test], 1))[0].numpy(),
        "gp-zc-only": fit_gp(f_train, y_train).posterior(f_test)[0].numpy(),
        "aggregate": zc.aggregate(test),
    }
    a_train = torch.as_tensor(zc.aggregate_vs_reference(train))[:, None]
    a_test = torch.as_tensor(zc.aggregate_vs_reference(test))[:, None]
    preds["gp+prior"] = fit_gp(emb_train, y_train, a_train).posterior(emb_test, a_test)[0].numpy()
    both_train, both_test = torch.cat([emb_train, f_train], 1), torch.cat([emb_test, f_test], 1)
    preds["gp+zc+prior"] = fit_gp(both_train, y_train, a_train).posterior(both_test, a_test)[0].numpy()
    preds["gp-zc-only+prior"] = fit_gp(f_train, y_train, a_train).posterior(f_test, a_test)[0].numpy()
    preds["mlp+agg"] = _z(preds["mlp"]) + _z(a_test.numpy().ravel())
    return {arm: kendall_tau(p, y_test) for arm, p in preds.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxies", required=True)
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--train-sizes", default="50,100,200")
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    space = get_space("nb201")
    table = TabularBenchmark.load(args.benchmark, space)
    proxies = ProxyTable.load(args.proxies, space)
    proxies.check_covers(table.archs, args.benchmark)
    sizes = [int(s) for s in args.train_sizes.split(",")]
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    start = time.perf_counter()
    for seed in range(args.seeds):
        perm = np.random.default_rng(seed).permutation(len(table))
        test_idx, rest = perm[: args.test_size], perm[args.test_size:]
        zc = TableZeroCost(proxies)
        ref_rng = np.random.default_rng([seed, 7])
        zc.set_reference([table.archs[i] for i in ref_rng.permutation(len(table))[:1000]])
        for n in sizes:
            runs[n].append(one_split(table, zc, rest[:n], test_idx, np.random.default_rng([seed, n])))
        print(f"seed {seed} done ({time.perf_counter() - start:.0f} s): "
              + ", ".join(f"{a} {runs[sizes[-1]][-1][a]:.3f}" for a in ARMS), flush=True)
    out = {str(n): {a: summarize([r[a] for r in runs[n]]) for a in ARMS} for n in sizes}
    print(f"\nKendall tau on {args.test_size} held-out cells, mean ± s.e. over {args.seeds} seeds\n")
    print("| train cells | " + " | ".join(ARMS) + " |\n|---|" + "---|" * len(ARMS))
    for n in sizes:
        print(f"| {n} | " + " | ".join(f"{out[str(n)][a]['mean']:.3f} ± {out[str(n)][a]['sem']:.3f}" for a in ARMS) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
