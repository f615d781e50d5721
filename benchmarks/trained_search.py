"""NAO vs random search when every candidate is trained (issue 15): same pipeline, same budget, several seeds.

For each strategy and seed, runs ``nao search cnn|ptb --evaluator training`` with a preset (``cpu`` by default)
and prints: the best candidate's validation score, the winner's test metric after the identical final
training, the mean within-round Kendall tau of the controller's predictions (nao only), and wall time.

    python benchmarks/trained_search.py --task cnn --preset cpu --seeds 0,1,2 --workers 2 --out /tmp/ts
    python benchmarks/trained_search.py --task cnn --preset cpu --seeds 0 --set budget=30 \\
        --set strategy_options.seed_archs=10 --set strategy_options.per_round=10    # a reduced run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _tau(run: Path) -> float | None:
    from nao.viz import within_round_taus

    path = run / "predictions.json"
    if not path.exists():
        return None
    preds = json.loads(path.read_text())["predictions"]
    taus = within_round_taus([p["predicted"] for p in preds], [p["true"] for p in preds],
                             [p.get("round", 0) for p in preds])
    taus = [t for t in taus if t == t]
    return float(np.mean(taus)) if taus else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["cnn", "ptb"], default="cnn")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--strategies", default="nao,random")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--workers", type=int, default=2, help="process-pool workers (1: sequential executor)")
    p.add_argument("--set", action="append", default=[], dest="settings", help="passed to nao search --set")
    p.add_argument("--out", required=True)
    p.add_argument("--blocks", type=int, default=3,
                   help="split each search's evaluations, in order, into this many blocks for the median per block "
                        "(3 for the cnn cpu runs of 20 seeds + 2 rounds of 20: seed pool, round 1, round 2)")
    args = p.parse_args()
    rows = []
    # Seeds outer: a benchmark cut short still has both strategies on the same seeds.
    for seed in (int(s) for s in args.seeds.split(",")):
        for strategy in args.strategies.split(","):
            run = Path(args.out) / f"{args.task}-{strategy}-{seed}"
            cmd = [sys.executable, "-m", "nao", "search", args.task, "--evaluator", "training", "--preset",
                   args.preset, "--strategy", strategy, "--seed", str(seed), "--out", str(run), "-q",
                   *[f"--set={s}" for s in args.settings]]
            if args.workers > 1:
                cmd += ["--executor", "processes", "--workers", str(args.workers)]
            t0 = time.time()
            if not (run / "result.json").exists():
                subprocess.run(cmd, check=True)
            result = json.loads((run / "result.json").read_text())
            objective = result["objective"]["metric"]
            test_key = "test_acc" if args.task == "cnn" else "test_ppl"
            rows.append({"strategy": strategy, "seed": seed, "best_val": result["best"]["metrics"][objective],
                         "block_medians": _block_medians(run, objective, args.blocks),
                         "test": result["final"][test_key], "tau": _tau(run), "n": result["n_evaluated"],
                         "wall_s": result.get("total_s", time.time() - t0)})
            r = rows[-1]
            print(f"{strategy:7s} seed {seed}: best {objective} {r['best_val']:.4f}  winner {test_key} {r['test']:.4f}  "
                  f"tau {r['tau'] if r['tau'] is None else round(r['tau'], 3)}  {r['n']} candidates  {r['wall_s']:.0f}s",
                  flush=True)
    print("\nstrategy  best val (mean ± sem)   winner test (mean ± sem)")
    for strategy in args.strategies.split(","):
        sel = [r for r in rows if r["strategy"] == strategy]
        for key in ("best_val", "test"):
            v = np.array([r[key] for r in sel])
            sem = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
            print(f"{strategy:8s} {key:9s} {v.mean():.4f} ± {sem:.4f} (n={len(v)})")
    print("\nmedian objective of each block of evaluations (in order), mean over seeds:")
    for strategy in args.strategies.split(","):
        med = np.array([r["block_medians"] for r in rows if r["strategy"] == strategy])
        print(f"{strategy:8s} " + "  ".join(f"{m:.4f}" for m in med.mean(axis=0)))
    strategies = args.strategies.split(",")
    if len(strategies) == 2:
        _paired(rows, *strategies)
    Path(args.out, "summary.json").write_text(json.dumps(rows, indent=2))


def _block_medians(run: Path, objective: str, blocks: int) -> list[float]:
    """Median of the objective over each of ``blocks`` equal blocks of the journal (evaluation order)."""
    values = [r["metrics"][objective] for r in map(json.loads, (run / "journal.jsonl").read_text().splitlines())
              if r["status"] == "ok"]
    return [float(np.median(part)) for part in np.array_split(np.array(values), blocks)]


def _paired(rows: list[dict], a: str, b: str) -> None:
    """Per-seed differences a - b (same seed, same data split): mean, its standard error, and their ratio."""
    by = {(r["strategy"], r["seed"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows if (a, r["seed"]) in by and (b, r["seed"]) in by})
    if len(seeds) < 2:
        return
    print(f"\npaired {a} - {b} over seeds {seeds}")
    for key in ("best_val", "test"):
        d = np.array([by[(a, s)][key] - by[(b, s)][key] for s in seeds])
        sem = d.std(ddof=1) / np.sqrt(len(d))
        print(f"{key:9s} {d.mean():+.4f} ± {sem:.4f}  ({d.mean() / sem if sem > 0 else float('nan'):+.1f} SE)")


if __name__ == "__main__":
    main()
