"""``nao bench``: compare strategies on a tabular benchmark over many seeds.

    nao bench --space nb201 --benchmark FILE --strategies nao,local,rea,random --budget 150 --seeds 30
    nao bench --space nb201 --benchmark FILE --constraint 'params_m<=0.5'   # every strategy, feasible archs only
    nao bench --benchmark FILE --strategies nao,random --plot bench.png      # best so far vs queries, ± s.e.
    nao bench --benchmark FILE --fidelity asha --seeds 30   # NB201 as a two-fidelity simulator (nao.fidelity)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from nao.bench import format_table, run_bench
from nao.cli import bench_fidelity
from nao.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="compare strategies on a tabular benchmark over many seeds")
    p.add_argument("--space", default="nb201", help="search space (default: nb201)")
    p.add_argument("--benchmark", required=True, help="benchmark table (.csv.gz, NAS-Bench-201 format)")
    p.add_argument("--strategies", default=None, help="comma-separated strategy names (default: nao,local,rea,random)")
    p.add_argument("--budget", type=int, default=150, help="unique queries per run (default: 150)")
    p.add_argument("--seeds", type=int, default=30, help="runs per strategy, seeds 0..N-1 (default: 30)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("--constraint", default=None,
                   help="only propose architectures satisfying METRIC(<=|<|>=|>)NUMBER on a cost column of the table, "
                        "e.g. 'params_m<=0.5'; infeasible ones are never evaluated nor counted")
    p.add_argument("--proxies", default=None, metavar="ZC.csv.gz",
                   help="zero-cost proxies of the table's cells (written by nao proxies): nao, random-zc and local-zc "
                        "use them, and their scoring seconds count as compute")
    p.add_argument("--json", dest="json_out", default=None,
                   help="also write the summary as JSON here (and its plot beside it, same name with .png)")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="draw best-so-far against queries per strategy (± s.e.), validation and test panels; "
                        "with --fidelity, test accuracy against simulated compute and wall time per arm")
    bench_fidelity.add_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    plots = _plot_paths(args.plot, args.json_out)  # bad paths fail now, before any run is spent
    if args.fidelity:
        return bench_fidelity.run(args, plots)
    strategies = [s.strip() for s in (args.strategies or "nao,local,rea,random").split(",") if s.strip()]
    start = time.perf_counter()
    bars: list[tqdm] = []

    def tick(*_: object) -> None:
        # Created on the first finished run so that bad input fails with one clean line.
        if not bars:
            bars.append(tqdm(total=len(strategies) * args.seeds, desc="bench", unit="run",
                             disable=args.quiet, file=sys.stderr))
        bars[0].update(1)

    try:
        summary = run_bench(args.space, args.benchmark, strategies, args.budget, args.seeds,
                            workers=args.workers, progress=tick, constraint=args.constraint, proxies=args.proxies)
    finally:
        for bar in bars:
            bar.close()
    print(f"after N unique queries, mean ± sem over {args.seeds} seeds"
          + (f", every strategy under {args.constraint}" if args.constraint else ""))
    print(format_table(summary))
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    if plots:
        from nao.viz.benchplot import plot_bench

        title = (f"{Path(args.benchmark).name}: best so far, mean ± s.e. over {args.seeds} seeds"
                 + (f", under {args.constraint}" if args.constraint else ""))
        for path in plots:
            plot_bench(summary, path, title=title)
            print(f"plot: {path}")
    return 0


def _plot_paths(plot: str | None, json_out: str | None) -> list[Path]:
    """``--plot`` and the PNG beside ``--json``; ConfigError for a path that cannot be a PNG file."""
    paths = []
    if plot:
        if Path(plot).suffix.lower() != ".png":
            raise ConfigError(f"--plot {plot}: only .png is written")
        paths.append(Path(plot))
    if json_out:
        if Path(json_out).is_dir():
            raise ConfigError(f"--json {json_out}: is a directory")
        paths.append(Path(json_out).with_suffix(".png"))
    for path in paths:
        if path.is_dir():
            raise ConfigError(f"--plot {path}: is a directory")
    return list(dict.fromkeys(paths))
