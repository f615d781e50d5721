"""Do the strategies' defaults hold on a second NB201-format table? (no per-benchmark tuning)

Only the CIFAR-10 table is available offline, so the second landscape is the same cells at the
benchmark's other fidelity: ``val_acc_12ep`` / ``test_acc_12ep`` (12-epoch training, a noisier
and differently ranked landscape). This script writes that table to a temporary file in the
benchmark format (``val_acc`` := ``val_acc_12ep``, ``test_acc`` := ``test_acc_12ep``,
``train_time_s`` := ``train_time_s * 12 / 200``, what a 12-epoch query costs) and runs
``nao bench`` on it with the same defaults as on the 200-epoch table. Run::

    python benchmarks/nb201_other_fidelity.py --seeds 30 --json runs/nb201-12ep.json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
import tempfile
from pathlib import Path

from nao.cli import main as nao_main
from nao.data.paths import data_root


def write_12ep_table(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` with the 12-epoch accuracies as ``val_acc``/``test_acc``; returns rows."""
    with gzip.open(src, "rt", newline="") as fin, gzip.open(dst, "wt", newline="") as fout:
        reader = csv.DictReader(fin)
        writer = csv.DictWriter(fout, fieldnames=["arch_str", "val_acc", "test_acc", "train_time_s", "params_m"])
        writer.writeheader()
        n = 0
        for row in reader:
            writer.writerow({"arch_str": row["arch_str"], "val_acc": row["val_acc_12ep"],
                             "test_acc": row["test_acc_12ep"],
                             "train_time_s": f"{float(row['train_time_s']) * 12 / 200:.4f}", "params_m": row["params_m"]})
            n += 1
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default=str(data_root() / "nasbench201" / "nb201_cifar10.csv.gz"))
    p.add_argument("--strategies", default="nao,bananas,local,rea,random")
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--workers", type=int, default=None, help="bench processes (default: all cores)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "nb201_cifar10_12ep.csv.gz"
        n = write_12ep_table(Path(args.benchmark), table)
        print(f"12-epoch table: {n} rows from {args.benchmark}", flush=True)
        argv = ["bench", "-q", "--space", "nb201", "--benchmark", str(table), "--strategies", args.strategies,
                "--budget", str(args.budget), "--seeds", str(args.seeds)]
        if args.json:
            argv += ["--json", args.json]
        if args.workers:
            argv += ["--workers", str(args.workers)]
        sys.exit(nao_main(argv))


if __name__ == "__main__":
    main()
