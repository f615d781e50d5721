"""Where NAO's runs end on an NB201 landscape: the landscape's local optima, and why a run stays in one.

Prints (1) the landscape's local optima under one-token changes (cells no neighbour beats on
validation) and the share of cells whose steepest ascent ends in each; (2) for each seed, NAO's
(``nao`` with ``--options``) best cell after ``--budget`` queries: its validation accuracy, whether
all its one-change neighbours were evaluated (a proven local optimum), its distance in changes to the
landscape's best cell, the distances of the queries made after it was found, and where the final
controller ranks the landscape's best cell among the evaluated ones (1 = predicted best). Run::

    python benchmarks/nb201_local_optima.py --landscape 12ep --seeds 0-29

``--landscape 12ep`` is the same cells at the table's 12-epoch fidelity (``nb201_other_fidelity.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from nao.data.paths import data_root
from nao.evaluators.tabular import TabularBenchmark, TabularEvaluator
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

sys.path.insert(0, str(Path(__file__).parent))
from nb201_other_fidelity import write_12ep_table  # noqa: E402


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in text.split(",")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--landscape", choices=["200ep", "12ep"], default="12ep")
    p.add_argument("--seeds", default="0-29", help="a range 0-29 or a list 4,13,20")
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--options", default="{}", help="JSON options of the nao strategy")
    args = p.parse_args()
    space = get_space("nb201")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.benchmark)
        if args.landscape == "12ep":
            path = Path(tmp) / "nb201_12ep.csv.gz"
            write_12ep_table(Path(args.benchmark), path)
        table = TabularBenchmark.load(path, space)
    val = 100 * table.metrics["val_acc"]
    score = {space.key(a): float(v) for a, v in zip(table.archs, val)}

    def v(arch) -> float:
        return score[space.key(arch)]

    def ascend(arch):
        while True:
            best = max(space.neighbours(arch), key=v)
            if v(best) <= v(arch):
                return arch
            arch = best

    optima = sorted((a for a in table.archs if all(v(n) <= v(a) for n in space.neighbours(a))), key=v, reverse=True)
    basins = Counter(space.key(ascend(a)) for a in table.archs)
    print(f"{args.landscape}: {len(optima)} local optima (one-token changes); the best, with the share of cells "
          "whose steepest ascent ends there:")
    for a in optima[:6]:
        print(f"  val {v(a):.2f}  {space.format(a)}  basin {basins[space.key(a)] / len(table.archs):.1%}")
    best = optima[0]

    def dist(a, b) -> int:
        return sum(x != y for x, y in zip(space.prune(a).tokens, space.prune(b).tokens))

    evaluator = TabularEvaluator(space, table)
    for seed in _seeds(args.seeds):
        strategy = make_strategy("nao", space, seed=seed, **json.loads(args.options))
        study = Study(space, strategy, evaluator)
        study.run(args.budget)
        history = [r.arch for r in study.history]
        i = int(np.argmax([v(a) for a in history]))
        inc = history[i]
        evaluated = {space.key(space.prune(a)) for a in history}
        nbrs = space.neighbours(inc)
        proven = all(space.key(space.prune(n)) in evaluated for n in nbrs)
        after = Counter(dist(a, best) for a in history[i + 1:])
        model = strategy._models[0]  # the last round's controller
        pred = model.predict(model.tokens([space.prune(a) for a in [*history, best]])).detach().cpu().numpy()
        rank = 1 + int((pred[:-1] > pred[-1]).sum())
        print(f"seed {seed:2d}: best val {v(inc):.2f} at query {i + 1}, proven local optimum {proven}, "
              f"{dist(inc, best)} changes from the landscape's best; later queries by distance to it "
              f"{dict(sorted(after.items()))}; controller ranks it {rank} of {len(history) + 1}", flush=True)


if __name__ == "__main__":
    main()
