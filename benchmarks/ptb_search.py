"""A short NAO-WS-RNN search on PTB (CPU), then its winner vs a random cell, trained the same way.

1. the ``supernet-rnn`` run kind (:mod:`nao.runs.kinds.supernet_rnn`) with the ``small`` supernet preset (or the flags below):
   the NAO strategy proposes cells, the weight-sharing supernet scores them by perplexity
   on a fixed validation slice.
2. The search's best cell and a uniformly random cell of the same space (seeded) are each
   trained from scratch with the ``small`` LM preset for ``--train-time`` seconds;
   validation and test perplexities of their best checkpoints are printed side by side.

    flock /tmp/nao-cpu.lock python benchmarks/ptb_search.py --out runs/ptb-search --train-time 300
    python benchmarks/ptb_search.py --out runs/ptb-retrain --winner-from runs/ptb-search/benchmark.json --train-epochs 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nao.data.corpus import load_corpus
from nao.data.paths import data_root
from nao.evaluators.rnn_supernet import supernet_preset
from nao.nn.rnn import build_model
from nao.presets import preset as registry_preset
from nao.runs import execute
from nao.runs.kinds.supernet_rnn import SupernetRnnKind
from nao.spaces import get_space
from nao.train.lm import preset, train_lm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(data_root() / "ptb"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--strategy", default="nao")
    ap.add_argument("--budget", type=int, default=None, help="default: seed pool + 2 rounds")
    ap.add_argument("--steps-per-round", type=int, default=None)
    ap.add_argument("--train-time", type=float, default=300.0, help="seconds of training per final cell")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these small ops on a shared 2-core box)")
    ap.add_argument("--train-epochs", type=int, default=0,
                    help="train each final cell this many epochs instead of --train-time seconds (equal work "
                         "for both cells, whatever else the machine is doing)")
    ap.add_argument("--winner-from", default=None,
                    help="benchmark.json of an earlier run: reuse its search winner, skip the search")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    corpus = load_corpus(args.data_dir)
    over = {"steps_per_round": args.steps_per_round} if args.steps_per_round else {}
    sup = supernet_preset("small", **over)
    t0 = time.time()
    if args.winner_from:
        earlier = json.loads(Path(args.winner_from).read_text())
        report, search_s = earlier["search"], earlier["search_s"]
    else:
        cfg = registry_preset("supernet-rnn/small", strategy=args.strategy, budget=args.budget or 0, seed=args.seed,
                     strategy_options={"ensemble": 1} if args.strategy == "nao" else {})
        cfg.supernet = sup
        report = execute(SupernetRnnKind(cfg, corpus=corpus), out / "search")
        search_s = time.time() - t0
    space = get_space("rnn")
    winner = space.parse(report["best"]["arch"])
    rand = space.sample(np.random.default_rng(1000 + args.seed))
    budget = {"epochs": args.train_epochs} if args.train_epochs else {"time_limit_s": args.train_time}
    cfg = preset("small", seed=args.seed, **budget)
    rows = []
    for label, arch in (("search winner", winner), ("random cell", rand)):
        model = build_model(cfg.model, len(corpus.vocab), space.decode(arch), seed=args.seed)
        r = train_lm(model, corpus, cfg, out_dir=out / label.replace(" ", "-"), quiet=True,
                     meta={"task": "ptb", "arch": space.format(arch), "space": space.name})
        rows.append({"label": label, "arch": space.format(arch), "val_ppl": r.val_ppl, "test_ppl": r.test_ppl,
                     "epochs": r.epochs_done, "tokens_per_s": r.tokens_per_s})
    m = report["best"]["metrics"]
    print(f"search: {report['n_evaluated']} cells in {report['rounds']} rounds, {search_s:.0f}s; "
          f"winner's supernet val ppl {m['val_ppl']:.1f}")
    trained = f"{args.train_epochs} epoch(s)" if args.train_epochs else f"{args.train_time:.0f}s"
    print(f"\n| cell ({trained} each) | val ppl | test ppl | epochs | tok/s | genotype |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['val_ppl']:.1f} | {r['test_ppl']:.1f} | {r['epochs']:.2f} | {r['tokens_per_s']:.0f} | `{r['arch']}` |")
    (out / "benchmark.json").write_text(json.dumps({"search": report, "search_s": search_s, "final": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
