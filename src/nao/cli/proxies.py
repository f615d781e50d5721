"""``nao proxies``: score every distinct cell of a benchmark table with zero-cost proxies.

    nao proxies --benchmark nb201_cifar10.csv.gz --out nb201_cifar10_zc.csv.gz --workers 2
    nao proxies --benchmark OTHER_TABLE.csv.gz --image-size 16 --num-classes 120 --out other_zc.csv.gz

The output is a proxy file (:mod:`nao.proxies.table`) that ``nao search --benchmark T --proxies FILE`` and
``nao bench`` read. A killed run resumes where it stopped when started again with the same flags.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nao.errors import NaoError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from nao.proxies.measures import PROXIES

    p = sub.add_parser(
        "proxies", help="score every cell of a benchmark table with zero-cost proxies (resumable)",
        description="Build each distinct (pruned) cell of --benchmark as an untrained network, score it on one seeded "
                    "minibatch of images, and write a gzip CSV of zc_<proxy> columns plus zc_time_s, the measured "
                    "seconds per cell. Writes OUT.partial.jsonl as it goes: run the same command again after a kill "
                    "to resume. Refuses an existing --out unless --overwrite.")
    p.add_argument("--benchmark", required=True, metavar="TABLE", help="a benchmark table (gzip CSV with arch_str)")
    p.add_argument("--out", required=True, metavar="FILE.csv.gz", help="the proxy file to write")
    p.add_argument("--space", default="nb201", help="the table's search space (default: nb201)")
    p.add_argument("--dataset", default="cifar10", choices=("cifar10", "cifar100", "folder"),
                   help="images to score on: the table's own dataset, or CIFAR-10 at the table's resolution; folder: "
                        "your images in --data-dir, one sub-folder per class (e.g. a table's ImageNet16 export)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the dataset lives (default: $NAO_DATA/<dataset>; required with --dataset folder)")
    p.add_argument("--image-size", type=int, default=32, help="the table's input resolution (images are resized)")
    p.add_argument("--num-classes", type=int, default=None, help="the table's classifier outputs (default: the dataset's)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="images in the one minibatch every cell is scored on, drawn (seeded) from the training split; "
                        "the gradient proxies use its two halves (default 16: a 9,445-cell table in about an hour on "
                        "2 CPU cores; 32 ranked no better in BENCHMARKS.md)")
    p.add_argument("--proxies", default=",".join(PROXIES), help=f"comma-separated subset of {', '.join(PROXIES)}")
    p.add_argument("--seed", type=int, default=0, help="seeds the minibatch and every network's initialisation")
    p.add_argument("--workers", type=int, default=1, help="processes, one torch thread each")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="score a seeded random N of the distinct cells (a quick look; the file then covers only those)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (never the table itself)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for flag, value, low in (("--image-size", args.image_size, 8), ("--batch-size", args.batch_size, 4),
                             ("--workers", args.workers, 1)):
        if value < low:
            raise NaoError(f"{flag} {value}: must be at least {low}")
    if args.num_classes is not None and args.num_classes < 2:
        raise NaoError(f"--num-classes {args.num_classes}: must be at least 2")
    if args.limit is not None and args.limit < 1:
        raise NaoError(f"--limit {args.limit}: must be at least 1")
    out, table = Path(args.out), Path(args.benchmark)
    if not out.name.endswith(".csv.gz"):
        raise NaoError(f"--out {out}: a proxy file is a gzip CSV, name it *.csv.gz")
    if table.exists() and out.exists() and out.resolve() == table.resolve():
        raise NaoError(f"--out {out} is the benchmark table itself: choose another path")
    if out.exists() and not args.overwrite:
        raise NaoError(f"--out {out} exists: pass --overwrite to replace it, or choose another path")
    if not out.parent.exists():
        raise NaoError(f"--out {out}: folder {out.parent} does not exist")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from nao.data.cifar import FORMATS, load_cifar
    from nao.data.paths import data_root
    from nao.evaluators.tabular import TabularBenchmark
    from nao.proxies.measures import check_names
    from nao.proxies.table import ScoringSettings, distinct_cells, image_batch, partial_path, score_table
    from nao.spaces import get_space

    _check(args)
    names = check_names([n.strip() for n in args.proxies.split(",") if n.strip()])
    space = get_space(args.space)
    table = TabularBenchmark.load(args.benchmark, space)
    archs = table.archs
    if args.limit is not None:
        cells = distinct_cells(space, archs)
        pick = np.random.default_rng(args.seed).permutation(len(cells))[: args.limit]
        archs = [cells[i] for i in sorted(pick)]
    if args.dataset == "folder":
        from nao.data.folder import load_image_folder

        if not args.data_dir:
            raise NaoError("--dataset folder needs --data-dir DIR (one sub-folder of images per class)")
        train = load_image_folder(args.data_dir, image_size=args.image_size, seed=args.seed).train
        num_classes = args.num_classes or int(train.labels.max()) + 1
    else:
        train = load_cifar(args.dataset, args.data_dir or data_root() / args.dataset).train
        num_classes = args.num_classes or FORMATS[args.dataset].num_classes
    batch = image_batch(train.images, train.labels, args.batch_size, args.seed, args.image_size, num_classes)
    settings = ScoringSettings(str(Path(args.benchmark).resolve()), space.name, args.dataset, args.image_size,
                               num_classes, args.batch_size, args.seed, tuple(names))
    out = Path(args.out)
    if partial_path(out).exists():
        print(f"resuming from {partial_path(out)}", file=sys.stderr)
    started = time.monotonic()
    quiet = bool(getattr(args, "quiet", False))
    first: list[int] = []

    def progress(done: int, total: int) -> None:
        if not first:
            first.append(done)
        new = done - first[0]
        if quiet or (done != total and new % 25):
            return
        rate = new / max(time.monotonic() - started, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("nan")
        print(f"\rproxies: {done}/{total} cells, {rate:.2f} cells/s, ETA {eta / 60:.1f} min   ", end="",
              file=sys.stderr, flush=True)

    scored = score_table(space, archs, batch, settings, out, workers=args.workers, progress=progress)
    if not quiet:
        print(file=sys.stderr)
    print(f"wrote {out}: {len(distinct_cells(space, archs))} cells ({scored} scored now) x {len(names)} proxies "
          f"in {time.monotonic() - started:.0f} s")
    return 0
