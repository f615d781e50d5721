"""How well each zero-cost proxy and the aggregate rank a benchmark table's cells, without any training.

    python benchmarks/proxy_quality.py --proxies ZC.csv.gz [--benchmark TABLE.csv.gz] [--json OUT.json]
    python benchmarks/proxy_quality.py --proxies ZC.csv.gz --aggregates naswot,jacov,zico,synflow,flops naswot,jacov

Each proxy file row is one distinct pruned network; its label is the mean ``val_acc`` (and ``val_acc_12ep``)
of the table rows that build it. Prints Spearman and Kendall of every proxy and of the log-rank aggregate
(:mod:`nao.proxies.aggregate`, default members and any ``--aggregates`` sets given) with those labels, and the
mean seconds per cell of scoring.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark
from nao.proxies.aggregate import AGGREGATE_PROXIES, aggregate, columns
from nao.proxies.table import ProxyTable
from nao.spaces import get_space


def labels(table: TabularBenchmark, zc: ProxyTable, metric: str) -> np.ndarray:
    """Per proxy-file row, the mean ``metric`` of the table rows whose cells prune to it."""
    sums: dict[int, list[float]] = defaultdict(list)
    for i, arch in enumerate(table.archs):
        row = zc.index.get(zc.space.key(zc.space.prune(arch)))
        if row is not None:  # a file scored with --limit covers only some cells
            sums[row].append(float(table.metrics[metric][i]))
    return np.array([np.mean(sums[r]) if sums[r] else np.nan for r in range(len(zc.archs))])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxies", required=True, help="a proxy file written by nao proxies")
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--space", default="nb201")
    p.add_argument("--aggregates", nargs="*", default=[], help="extra aggregate member sets, comma-separated")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    space = get_space(args.space)
    table = TabularBenchmark.load(args.benchmark, space)
    zc = ProxyTable.load(args.proxies, space)
    metrics = [m for m in ("val_acc", "val_acc_12ep") if m in table.metrics]
    ys = {m: labels(table, zc, m) for m in metrics}
    names = zc.names
    values = np.column_stack([zc.values[n] for n in names])
    rows: list[tuple[str, np.ndarray]] = [(n, values[:, j]) for j, n in enumerate(names)]
    for members in [",".join(AGGREGATE_PROXIES), *args.aggregates]:
        picked = members.split(",")
        rows.append((f"aggregate[{members}]", aggregate(values[:, columns(names, picked)])))
    out = {"cells": len(zc.archs), "seconds_per_cell": float(zc.seconds.mean()), "proxies": {}}
    head = " | ".join(f"Spearman {m} | Kendall {m}" for m in metrics)
    print(f"{len(zc.archs)} cells of {len(table)} table rows; scoring {zc.seconds.mean():.3f} s/cell "
          f"(median {np.median(zc.seconds):.3f})\n\n| proxy | {head} |\n|---|" + "---|" * (2 * len(metrics)))
    for name, score in rows:
        cells = []
        res = {}
        for m in metrics:
            ok = np.isfinite(ys[m])
            rho = float(spearmanr(score[ok], ys[m][ok]).statistic)
            tau = float(kendalltau(score[ok], ys[m][ok]).statistic)
            cells += [f"{rho:.3f}", f"{tau:.3f}"]
            res[m] = {"spearman": rho, "kendall": tau}
        out["proxies"][name] = res
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
