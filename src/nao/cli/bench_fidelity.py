"""``nao bench --fidelity asha|sh|hyperband``: the NB201 two-fidelity simulator (flags and printing).

    nao bench --benchmark FILE --fidelity asha --seeds 30 --sim-workers 4 --max-gpu-hours 100
    nao bench --benchmark FILE --fidelity asha --proxies ZC.csv.gz   # also the zero-cost arms (nao-mf-zc, mf-nas, ...)

The library does the work (:func:`nao.fidelity.bench.run_fidelity_bench`); this module only adds
the flags to ``nao bench`` and prints the summary. ``--proxies`` is ``nao bench``'s own flag
(:mod:`nao.cli.bench`): with ``--fidelity`` it gives the zero-cost arms their proxy file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from nao.errors import ConfigError
from nao.fidelity.bench import DEFAULT_TARGETS, format_fidelity_table, run_fidelity_bench
from nao.fidelity.scheduler import SCHEDULERS
from nao.fidelity.simulate import ARMS, DEFAULT_ZC_ETA, EXTRA_ARMS, PROMOTION_COSTS, ZC_ARMS


def add_flags(p: argparse.ArgumentParser) -> None:
    """The multi-fidelity flags of ``nao bench``."""
    g = p.add_argument_group("multi-fidelity simulation (NB201's 12- and 200-epoch columns as two rungs)")
    g.add_argument("--fidelity", choices=sorted(SCHEDULERS), default=None,
                   help="simulate parallel workers under this scheduler for the multi-fidelity arms; "
                        f"--strategies then names arms ({', '.join(ARMS)}; default: all; also {', '.join(EXTRA_ARMS)}; "
                        f"with --proxies also, and by default, {', '.join(ZC_ARMS)})")
    g.add_argument("--sim-workers", type=int, default=4, help="simulated parallel workers (default: 4)")
    g.add_argument("--max-gpu-hours", type=float, default=100.0,
                   help="compute budget per run in the table's GPU-hours (default: 100)")
    g.add_argument("--promotion-cost", choices=PROMOTION_COSTS, default="restart",
                   help="a promotion to 200 epochs pays the full training (restart: NB201's columns are separate "
                        "trainings; default) or only the remaining 188 epochs (continue)")
    g.add_argument("--eta", type=float, default=None,
                   help="reduction factor: the top 1/eta of the 12-epoch rung is promoted (default: 200/12 = 16.7, "
                        "the rungs' ratio, so that each rung spends the same compute)")
    g.add_argument("--zc-eta", type=float, default=None,
                   help="with --proxies: the zero-cost rung's reduction factor, the top 1/zc-eta of the cells scored by "
                        f"the proxies go on to 12 epochs (default: {DEFAULT_ZC_ETA:g}, MF-NAS's 2000 screened per 32 "
                        "trained on NB201)")
    g.add_argument("--targets", default=",".join(f"{t:.2f}" for t in DEFAULT_TARGETS),
                   help="test accuracies (%%) whose compute-to-reach is reported (default: 94.30,94.35)")


def run(args: argparse.Namespace, plots: Sequence[Path] = ()) -> int:
    """``nao bench --fidelity ...``; ``plots``: PNG paths for :func:`nao.viz.fidelityplot.plot_fidelity_bench`."""
    if args.constraint:
        raise ConfigError("--constraint does not apply with --fidelity (the simulator searches the whole table)")
    proxies = getattr(args, "proxies", None)  # nao bench's flag (cli/bench.py), shared with the per-query bench
    default = ARMS + ZC_ARMS if proxies else ARMS
    arms = [a.strip() for a in (args.strategies or ",".join(default)).split(",") if a.strip()]
    try:
        targets = [float(t) for t in args.targets.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--targets must be comma-separated numbers, got {args.targets!r}") from None
    start, bars = time.perf_counter(), []

    def tick(*_: object) -> None:
        if not bars:
            bars.append(tqdm(total=len(arms) * args.seeds, desc="bench", unit="run", disable=args.quiet,
                             file=sys.stderr))
        bars[0].update(1)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmean before any arm's first result
            summary = run_fidelity_bench(args.benchmark, arms, args.fidelity, args.seeds, args.sim_workers,
                                         args.max_gpu_hours, args.promotion_cost, args.eta, targets,
                                         workers=args.workers, progress=tick, proxies=proxies,
                                         zc_eta=args.zc_eta)
    finally:
        for bar in bars:
            bar.close()
    print(format_fidelity_table(summary))
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    if plots:
        from nao.viz.fidelityplot import plot_fidelity_bench

        for path in plots:
            plot_fidelity_bench(summary, path)
            print(f"plot: {path}")
    return 0
