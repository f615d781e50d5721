"""NAO vs random search when every candidate is trained (issues 15, 22): same pipeline, same budget, several seeds.

For each arm and seed, runs ``nao search cnn|ptb --evaluator training`` with a preset (``cpu`` by default)
and prints: the best candidate's validation score (at the top rung for a multi-fidelity arm), the winner's
test metric after the identical final training, the controller's mean within-round Kendall tau (nao arms),
the compute spent and wall time. An arm is a strategy name, or ``STRATEGY-mf`` for the same strategy under
the ASHA fidelity scheduler (``--fidelity asha``), ``STRATEGY-mf@X`` with its lowest rung at X epochs
(``--min-fidelity X``); ``--max-cost`` gives every arm the same compute. For a multi-fidelity arm it also
prints the Kendall tau between the lowest rung's and the top rung's scores of the candidates that have both
(how much the screen says about the full training).

    python benchmarks/trained_search.py --task cnn --preset cpu --seeds 0,1,2 --workers 2 --out DIR
    python benchmarks/trained_search.py --task cnn --preset cpu --seeds 0 --set budget=30 \\
        --set strategy_options.seed_archs=10 --set strategy_options.per_round=10 --out DIR   # a reduced run
    python benchmarks/trained_search.py --task cnn --preset cpu --seeds 0,1,2 --workers 1 --parallel 2 \\
        --strategies nao-mf,random,nao,random-mf --max-cost 450000 --set train.epochs=3 --set budget=500 \\
        --set strategy_options.seed_archs=10 --set strategy_options.per_round=10 --out DIR   # equal compute
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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


def _arm(arm: str) -> tuple[str, list[str]]:
    """``(strategy, extra flags)`` of an arm name: ``nao``, ``random``, ``nao-mf`` (``--fidelity asha``),
    ``nao-mf@1`` (``--fidelity asha --min-fidelity 1``), ..."""
    name, _, low = arm.partition("@")
    if name.endswith("-mf"):
        return name[:-3], ["--fidelity", "asha", *(["--min-fidelity", low] if low else [])]
    if low:
        raise SystemExit(f"arm {arm!r}: @X (the lowest rung) needs a multi-fidelity arm, STRATEGY-mf@X")
    return name, []


def _rung_tau(records: list[dict], objective: str) -> float | None:
    """Kendall tau between the lowest and the top rung's scores of the candidates scored at both."""
    from scipy.stats import kendalltau

    ok = [r for r in records if r["status"] == "ok" and objective in r["metrics"]]
    rungs = sorted({r.get("fidelity") or 0.0 for r in ok})
    if len(rungs) < 2:
        return None
    by = {f: {tuple(r["tokens"]): r["metrics"][objective] for r in ok if (r.get("fidelity") or 0.0) == f}
          for f in (rungs[0], rungs[-1])}
    both = sorted(set(by[rungs[0]]) & set(by[rungs[-1]]))
    if len(both) < 3:
        return None
    return float(kendalltau([by[rungs[0]][k] for k in both], [by[rungs[-1]][k] for k in both]).statistic)


def _saved_by_continuing(records: list[dict]) -> float:
    """Compute a scheduler that restarted promoted candidates would have spent on top of this run's: each
    promotion re-trains the epochs of the rungs below it (cost per epoch from the candidate's first record)."""
    by: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("fidelity") and r.get("cost"):
            by.setdefault(tuple(r["tokens"]), []).append(r)
    saved = 0.0
    for recs in by.values():
        recs.sort(key=lambda r: r["fidelity"])
        per_epoch = recs[0]["cost"] / recs[0]["fidelity"]
        saved += per_epoch * sum(r["fidelity"] for r in recs[:-1])
    return saved


def _settings_for(strategy: str, settings: list[str]) -> list[str]:
    """``settings`` without the ``strategy_options.KEY=...`` that ``strategy`` does not take (NAO's round sizes
    are given once for all arms; random search takes none, and a run refuses an option it does not take)."""
    from nao.errors import ConfigError
    from nao.strategies import check_strategy_options

    kept = []
    for setting in settings:
        key = setting.split("=", 1)[0]
        if key.startswith("strategy_options."):
            try:
                check_strategy_options(strategy, {key.split(".")[1]: None})
            except ConfigError:
                continue
        kept.append(setting)
    return kept


def _journal(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines() if line.strip()]


def _top_rung_tau(run: Path, records: list[dict], objective: str, sign: float) -> float | None:
    """Mean within-round Kendall tau of the controller's predictions against the *top-rung* score, over the
    proposals that reached it (for a one-fidelity arm: the same as :func:`_tau`)."""
    from nao.viz import within_round_taus

    path = run / "predictions.json"
    if not path.exists():
        return None
    top = max((r.get("fidelity") or 0.0) for r in records)
    at_top = {tuple(r["tokens"]): sign * r["metrics"][objective] for r in records
              if r["status"] == "ok" and (r.get("fidelity") or 0.0) == top and objective in r["metrics"]}
    preds = [p for p in json.loads(path.read_text())["predictions"] if tuple(p["tokens"]) in at_top]
    taus = within_round_taus([p["predicted"] for p in preds], [at_top[tuple(p["tokens"])] for p in preds],
                             [p.get("round", 0) for p in preds])
    taus = [t for t in taus if t == t]
    return float(np.mean(taus)) if taus else None


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _run_one(args: argparse.Namespace, arm: str, seed: int) -> dict:
    strategy, extra = _arm(arm)
    run = Path(args.out) / f"{args.task}-{arm}-{seed}"
    cmd = [sys.executable, "-m", "nao", "search", args.task, "--evaluator", "training", "--preset",
           args.preset, "--strategy", strategy, "--seed", str(seed), "--out", str(run), "-q", *extra,
           *[f"--set={s}" for s in _settings_for(strategy, args.settings)]]
    if args.max_cost is not None:
        cmd += ["--max-cost", str(args.max_cost)]
    if args.workers > 1:
        cmd += ["--executor", "processes", "--workers", str(args.workers)]
    t0 = time.time()
    if not (run / "result.json").exists():
        subprocess.run(cmd, check=True)
    result = json.loads((run / "result.json").read_text())
    objective = result["objective"]["metric"]
    sign = 1.0 if result["objective"].get("direction", "max") == "max" else -1.0
    test_key = "test_acc" if args.task == "cnn" else "test_ppl"
    records = _journal(run)
    top = max((r.get("fidelity") or 0.0) for r in records)
    row = {"arm": arm, "strategy": arm, "seed": seed, "best_val": result["best"]["metrics"][objective],
           "block_medians": _block_medians(records, objective, args.blocks), "test": result["final"][test_key],
           "tau": _tau(run), "tau_top": _top_rung_tau(run, records, objective, sign), "n": result["n_evaluated"],
           "rung_tau": _rung_tau(records, objective),
           "candidates": len({tuple(r["tokens"]) for r in records}),
           "at_top": sum(1 for r in records if (r.get("fidelity") or 0.0) == top),
           "cost": sum(r.get("cost") or 0.0 for r in records), "saved": _saved_by_continuing(records),
           "wall_s": result.get("total_s", time.time() - t0)}
    tau, tau_top = _fmt(row["tau"]), _fmt(row["tau_top"])
    line = (f"{arm:9s} seed {seed}: best {objective} {row['best_val']:.4f}  winner {test_key} {row['test']:.4f}  "
            f"tau {tau} (top rung {tau_top}, rungs {_fmt(row['rung_tau'])})  {row['candidates']} candidates, {row['at_top']} at the top rung, "
            f"cost {row['cost']:.0f} (a restarting scheduler: +{row['saved']:.0f})  {row['wall_s']:.0f}s\n")
    sys.stdout.write(line)  # one write: runs finishing together (--parallel) do not interleave their lines
    sys.stdout.flush()
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["cnn", "ptb"], default="cnn")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--strategies", default="nao,random",
                   help="arms: strategy names, STRATEGY-mf for the strategy under --fidelity asha")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--workers", type=int, default=2, help="process-pool workers of each run (1: sequential executor)")
    p.add_argument("--parallel", type=int, default=1, help="runs at once (each with its own --workers)")
    p.add_argument("--max-cost", type=float, default=None, help="passed to nao search --max-cost (equal compute)")
    p.add_argument("--baseline", default=None, help="arm every other arm is paired against (default: the last)")
    p.add_argument("--set", action="append", default=[], dest="settings", help="passed to nao search --set")
    p.add_argument("--out", required=True)
    p.add_argument("--blocks", type=int, default=3,
                   help="split each search's evaluations, in order, into this many blocks for the median per block "
                        "(3 for the cnn cpu runs of 20 seeds + 2 rounds of 20: seed pool, round 1, round 2)")
    args = p.parse_args()
    arms = args.strategies.split(",")
    # Seeds outer: a benchmark cut short still has every arm on the same seeds.
    jobs = [(arm, int(seed)) for seed in args.seeds.split(",") for arm in arms]
    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        rows = list(pool.map(lambda job: _run_one(args, *job), jobs))
    print("\narm        best val (mean ± sem)   winner test (mean ± sem)")
    for arm in arms:
        sel = [r for r in rows if r["arm"] == arm]
        for key in ("best_val", "test"):
            v = np.array([r[key] for r in sel])
            sem = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
            print(f"{arm:9s} {key:9s} {v.mean():.4f} ± {sem:.4f} (n={len(v)})")
    print("\nmedian objective of each block of evaluations (in order), mean over seeds:")
    for arm in arms:
        med = np.array([r["block_medians"] for r in rows if r["arm"] == arm])
        print(f"{arm:9s} " + "  ".join(f"{m:.4f}" for m in med.mean(axis=0)))
    baseline = args.baseline or arms[-1]
    for arm in arms:
        if arm != baseline:
            _paired(rows, arm, baseline)
    Path(args.out, "summary.json").write_text(json.dumps(rows, indent=2))


def _block_medians(records: list[dict], objective: str, blocks: int) -> list[float]:
    """Median of the objective over each of ``blocks`` equal blocks of the journal's lowest-rung scores
    (evaluation order: what the strategy proposed, before any promotion)."""
    low = min((r.get("fidelity") or 0.0) for r in records)  # the lowest rung: every candidate's first score
    values = [r["metrics"][objective] for r in records if r["status"] == "ok" and (r.get("fidelity") or 0.0) == low]
    return [float(np.median(part)) for part in np.array_split(np.array(values), blocks)]


def _paired(rows: list[dict], a: str, b: str) -> None:
    """Per-seed differences a - b (same seed, same data split): mean, its standard error, and their ratio."""
    by = {(r["arm"], r["seed"]): r for r in rows}
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
