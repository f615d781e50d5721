"""Which operations do NAO-WS's proposals favour? (digits, CPU)

Runs the embedded default search (``digits`` preset, optionally with supernet overrides) once
and counts the operations of the cells NAO proposed (the journal after the random seed pool),
per 20 operations (normal + reduction cell), next to the seed pool's counts. Uniform sampling
gives 4.0 of each of the 5 ``nao-ws`` operations. A supernet that is scored before it is trained
favours parameter-free operations (identity, pooling), and the proposals drift there. Run::

    python benchmarks/ws_op_drift.py                       # the preset as it is
    python benchmarks/ws_op_drift.py --supernet-lr 0.05    # the earlier supernet lr
    python benchmarks/ws_op_drift.py --epochs-per-round 20
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from dataclasses import replace

from nao.presets import preset
from nao.runs import run as run_search
from nao.spaces import get_space


def op_counts(space, rows: list[dict]) -> dict[str, float]:
    """Mean count of each operation name per cell pair over journal ``rows``."""
    counts: collections.Counter[str] = collections.Counter()
    for row in rows:
        arch = space.make(row["tokens"])
        counts.update(space.token_name(t) for i, t in enumerate(arch.tokens) if i % 2 == 1)  # (input, op) pairs
    return {k: round(v / max(1, len(rows)), 2) for k, v in sorted(counts.items())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--supernet-lr", type=float, default=None)
    p.add_argument("--epochs-per-round", type=int, default=None)
    args = p.parse_args()
    cfg = preset("supernet-cnn/digits", seed=args.seed)
    over = {k: v for k, v in (("lr", args.supernet_lr), ("epochs_per_round", args.epochs_per_round)) if v is not None}
    cfg = replace(cfg, supernet_train=replace(cfg.supernet_train, **over))
    space = get_space(cfg.space)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        report = run_search(cfg, f"{tmp}/run", say=lambda line: print(line[:150], flush=True))
        with open(f"{tmp}/run/journal.jsonl") as fh:
            rows = [json.loads(line) for line in fh]
    n_seed = cfg.supernet_train.seed_pool
    print(f"\nsupernet overrides {over or 'none'}; wall {time.perf_counter() - t0:.0f}s; "
          f"winner test_acc {report['final']['test_acc']:.4f}")
    print(f"seed pool ({n_seed} cells), ops per 20: {op_counts(space, rows[:n_seed])}")
    print(f"NAO proposals ({len(rows) - n_seed} cells), ops per 20: {op_counts(space, rows[n_seed:])}")


if __name__ == "__main__":
    main()
