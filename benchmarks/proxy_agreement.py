"""Do our zero-cost proxies agree with NAS-Bench-Suite-Zero's published values on NB201 CIFAR-10 cells?

OURS is a gzip CSV with ``arch_str`` and ``zc_<proxy>`` columns, one row per distinct pruned cell. REFERENCE is a
gzip CSV with ``arch_str`` and the reference's proxy columns (``params``, ``flops``, ``synflow``, ``nwot``, ...).
Every reference row is joined to our row for ``NB201Space().prune(arch)``; the table reports, per proxy, the Spearman
correlation of ours with the reference and (with the benchmark table) of each with ``val_acc``. Run::

    python benchmarks/proxy_agreement.py --ours OURS.csv.gz --reference REF.csv.gz [--table TABLE.csv.gz] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np

from nao.data.paths import data_root
from nao.errors import OutOfSpaceError, ParseError
from nao.spaces.nb201 import NB201Space

# our proxy name -> the reference's column name, where they differ; any other zc_<name> is looked up as <name>
RENAME = {"naswot": "nwot"}
ORDER = ["params", "flops", "synflow", "naswot", "jacov", "snip", "grad_norm", "zico"]
SKIP = {"time_s"}


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def read_csv(path: Path, required: list[str], what: str) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        fail(f"{what} file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        reader = csv.DictReader(f)
        rows, cols = list(reader), list(reader.fieldnames or [])
    missing = [c for c in required if c not in cols]
    if missing:
        fail(f"{what} file {path} lacks column(s) {', '.join(missing)}; it has: {', '.join(cols)}")
    return cols, rows


def num(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho with average ranks for ties; NaN when under 3 points or either side is constant."""
    if len(a) < 3:
        return math.nan
    ranks = []
    for x in (a, b):
        _, inv, cnt = np.unique(x, return_inverse=True, return_counts=True)
        ranks.append((np.cumsum(cnt) - (cnt - 1) / 2.0)[inv])
    if ranks[0].std() == 0 or ranks[1].std() == 0:
        return math.nan
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


def pruned(space: NB201Space, text: str, what: str) -> tuple[int, ...]:
    try:
        return space.prune(space.parse(text)).tokens
    except (ParseError, OutOfSpaceError) as e:
        fail(f"{what}: bad arch_str {text!r}: {e}")
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--ours", type=Path, required=True, help="gzip CSV: arch_str, zc_<proxy>... (one row per pruned cell)"
    )
    ap.add_argument("--reference", type=Path, required=True, help="gzip CSV: arch_str, <proxy>...")
    ap.add_argument("--table", type=Path, default=None, help="NB201 table with arch_str,val_acc (default: data root's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    space = NB201Space()
    our_cols, our_rows = read_csv(args.ours, ["arch_str"], "--ours")
    ref_cols, ref_rows = read_csv(args.reference, ["arch_str"], "--reference")
    names = [c[3:] for c in our_cols if c.startswith("zc_") and c[3:] not in SKIP]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    pairs = [(n, RENAME.get(n, n)) for n in names if RENAME.get(n, n) in ref_cols]
    unmatched = [n for n in names if RENAME.get(n, n) not in ref_cols]
    if not pairs:
        fail(f"no zc_<proxy> column of --ours matches a --reference column ({', '.join(ref_cols)})")
    if unmatched:
        print(f"not in the reference, skipped: {', '.join(unmatched)}")

    table_path = args.table or data_root() / "nasbench201" / "nb201_cifar10.csv.gz"
    val: dict[str, float] = {}
    if args.table is not None or table_path.is_file():
        _, table_rows = read_csv(table_path, ["arch_str", "val_acc"], "--table")
        val = {r["arch_str"]: num(r["val_acc"]) for r in table_rows}
    else:
        print(f"no table at {table_path}: val_acc columns left out")

    ours: dict[tuple[int, ...], dict[str, str]] = {}
    for r in our_rows:
        ours[pruned(space, r["arch_str"], "--ours")] = r
    if len(ours) < len(our_rows):
        print(f"--ours: {len(our_rows) - len(ours)} rows share a pruned cell with another row (last one kept)")
    joined = [(r, ours.get(pruned(space, r["arch_str"], "--reference"))) for r in ref_rows]
    hits = [(r, o) for r, o in joined if o is not None]
    print(f"reference rows: {len(ref_rows)}, joined to ours: {len(hits)}, our rows: {len(our_rows)}\n")

    results: dict[str, dict[str, float | int | str]] = {}
    head = "| proxy (ours / reference) | n joined | dropped non-finite | Spearman(ours, ref) |"
    print(head + (" Spearman(ours, val_acc) | Spearman(ref, val_acc) |" if val else ""))
    print("|---" * (head.count("|") - 1 + (2 if val else 0)) + "|")
    for ours_name, ref_name in pairs:
        o = np.array([num(oo[f"zc_{ours_name}"]) for _, oo in hits])
        f = np.array([num(rr[ref_name]) for rr, _ in hits])
        v = np.array([val.get(rr["arch_str"], math.nan) for rr, _ in hits]) if val else np.zeros(len(hits))
        keep = np.isfinite(o) & np.isfinite(f) & np.isfinite(v)
        o, f, v = o[keep], f[keep], v[keep]
        res: dict[str, float | int | str] = {"reference": ref_name, "n": int(keep.sum()), "dropped": int((~keep).sum())}
        res["spearman_ours_ref"] = spearman(o, f)
        line = f"| {ours_name} / {ref_name} | {res['n']} | {res['dropped']} | {res['spearman_ours_ref']:.4f} |"
        if val:
            res["spearman_ours_val"], res["spearman_ref_val"] = spearman(o, v), spearman(f, v)
            line += f" {res['spearman_ours_val']:.4f} | {res['spearman_ref_val']:.4f} |"
        results[ours_name] = res
        print(line)
    if val:
        print(
            "\n(non-finite: ours, reference or the table's val_acc; val_acc is looked up for the reference's arch_str)"
        )
    if args.json:
        meta = {"ours": str(args.ours), "reference": str(args.reference), "table": str(table_path) if val else None}
        out = {"meta": {**meta, "reference_rows": len(ref_rows), "joined": len(hits)}, "proxies": results}
        clean = json.loads(json.dumps(out), parse_constant=lambda _: None)  # NaN -> null: strict JSON
        args.json.write_text(json.dumps(clean, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
