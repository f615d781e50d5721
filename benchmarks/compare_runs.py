"""Are two runs of the same seeded command the same? Compares ``result.json`` and the journal records of
run directories (timings, paths and fields only one side has are listed apart, not compared).

Used to check that a refactor left seeded runs identical (BENCHMARKS.md, "Seeded runs before and after"):

    python benchmarks/compare_runs.py OLD_DIR NEW_DIR [OLD_DIR2 NEW_DIR2 ...]

Prints one verdict per pair, then every field that differs (``~``) or exists on one side only (``+``/``-``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: Wall-clock fields (and throughputs, ``*_per_s``): never equal between two runs.
TIMINGS = {"search_s", "total_s", "seconds", "cost_s", "time_s", "train_time_s"}


def _timing(key: str) -> bool:
    return key in TIMINGS or key.endswith("_per_s")


def strip(obj: Any) -> Any:
    """``obj`` without timing fields (by name)."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if not _timing(k)}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def diff(a: Any, b: Any, path: str = "") -> tuple[list[str], list[str]]:
    """(values that differ, fields present on one side only)."""
    changed: list[str] = []
    one_side: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                one_side.append(f"+ {path}{k}")
            elif k not in b:
                one_side.append(f"- {path}{k}")
            else:
                c, o = diff(a[k], b[k], f"{path}{k}.")
                changed += c
                one_side += o
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            c, o = diff(x, y, f"{path}{i}.")
            changed += c
            one_side += o
    elif a != b:
        changed.append(f"~ {path[:-1]}: {json.dumps(a)[:70]} -> {json.dumps(b)[:70]}")
    return changed, one_side


def compare(old: Path, new: Path, time_valued: set[str]) -> bool:
    """Print the verdict for one pair; True when every common, non-timing field is equal."""
    ok = True
    for name in ("result.json", "journal.jsonl"):
        if name.endswith(".jsonl"):
            a = [json.loads(line) for line in (old / name).read_text().splitlines() if line.strip()]
            b = [json.loads(line) for line in (new / name).read_text().splitlines() if line.strip()]
        else:
            a, b = json.loads((old / name).read_text()), json.loads((new / name).read_text())
        a, b = strip(a), strip(b)
        changed, one_side = diff(a, b)
        changed = [c for c in changed if c.split(":")[0].split(".")[-1] not in time_valued]
        fields = sorted({o[0] + o[2:].split(".")[-1] for o in one_side})
        verdict = "identical" if not changed else "DIFFERS"
        print(f"{old.name}/{name}: {verdict}" + (f" (fields on one side only: {', '.join(fields)})" if fields else ""))
        for c in changed[:20]:
            print("   ", c)
        ok = ok and not changed
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", help="OLD NEW pairs of run directories")
    p.add_argument("--time-valued", default="", help="comma-separated fields measured in seconds (e.g. cost of a "
                                                   "supernet run), listed but not compared")
    args = p.parse_args()
    if len(args.dirs) % 2:
        p.error("give OLD NEW pairs")
    time_valued = {f for f in args.time_valued.split(",") if f}
    pairs = list(zip(args.dirs[::2], args.dirs[1::2], strict=True))
    ok = all([compare(Path(a), Path(b), time_valued) for a, b in pairs])
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
