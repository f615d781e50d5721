"""PTB on CPU: tokens/s of the NAO cell vs torch.nn.LSTM, then a time-limited training run.

Part 1 runs ``--speed-steps`` training steps of each model with the same harness, batch, BPTT
and hidden size (full step: embedding, cell, softmax over 10k words, backward, SGD) and also
times the recurrent cell alone (forward + backward on random inputs), in one process.
Part 2 trains the published NAO PTB cell with the ``small`` preset for ``--time-limit``
seconds and reports validation/test perplexity of the best checkpoint.

    flock /tmp/nao-cpu.lock python benchmarks/ptb_cpu.py --time-limit 900 --out runs/ptb-cpu
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from nao.data.corpus import batchify, load_corpus
from nao.data.paths import data_root
from nao.nn.rnn import build_model
from nao.spaces import get_space
from nao.train.lm import LMTrainer, preset, train_lm


def cell_tokens_per_s(model, batch: int, bptt: int, steps: int) -> float:
    """Forward + backward of the recurrent cell alone on random embeddings (median step)."""
    x = torch.randn(bptt, batch, model.cfg.emb_size)
    model.train()
    times = []
    for i in range(steps + 1):  # the first call warms up allocators
        t0 = time.perf_counter()
        out, _ = model.cell(x, model.init_hidden(batch))
        out.sum().backward()
        if i:
            times.append(time.perf_counter() - t0)
    return bptt * batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(data_root() / "ptb"))
    ap.add_argument("--time-limit", type=float, default=900.0, help="seconds of NAO-cell training (part 2)")
    ap.add_argument("--speed-steps", type=int, default=30, help="training steps per model for tokens/s (part 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these small ops on a shared 2-core box)")
    ap.add_argument("--out", default=None, help="run directory of the training run (checkpoint, metrics)")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.data_dir)
    space = get_space("rnn")
    genotype = space.decode(space.named("NAO"))
    cfg = preset("small", time_limit_s=args.time_limit)
    print(f"# PTB CPU benchmark: {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"small preset: hidden {cfg.model.hidden_size}, batch {cfg.batch_size}, bptt {cfg.bptt}, lr {cfg.lr}\n")

    rows = []
    for name, model in (
        ("NAO cell", build_model(cfg.model, len(corpus.vocab), genotype)),
        ("nn.LSTM", build_model(cfg.model, len(corpus.vocab), cell="lstm")),
    ):
        trainer = LMTrainer(model, batchify(corpus.train, cfg.batch_size), cfg)
        trainer.run(2)  # warm-up
        trainer.tokens, trainer.train_time_s = 0, 0.0
        trainer.run(args.speed_steps)
        cell = cell_tokens_per_s(model, cfg.batch_size, cfg.bptt, 5)
        params = sum(p.numel() for p in model.parameters())
        rows.append((name, trainer.tokens_per_s, cell, params))
    print(f"| model (hidden {cfg.model.hidden_size}) | train step tokens/s | cell fwd+bwd tokens/s | parameters |")
    print("|---|---|---|---|")
    for name, full, cell, params in rows:
        print(f"| {name} | {full:.0f} | {cell:.0f} | {params / 1e6:.2f}M |")
    print()
    if args.skip_train:
        return
    model = build_model(cfg.model, len(corpus.vocab), genotype)
    t0 = time.time()
    result = train_lm(model, corpus, cfg, out_dir=args.out, quiet=True, meta={"task": "ptb", "arch": space.format(space.named("NAO")), "space": "rnn"})
    wall = time.time() - t0
    print("| step | epoch | val ppl | train s | averaging |")
    print("|---|---|---|---|---|")
    for h in result.history:
        print(f"| {h['step']} | {h['epoch']:.2f} | {h['val_ppl']:.1f} | {h['train_time_s']:.0f} | {'yes' if h['averaged'] else 'no'} |")
    print(f"\nNAO cell, small preset, {args.time_limit:.0f}s limit: best val ppl {result.val_ppl:.1f}, test ppl "
          f"{result.test_ppl:.1f}, {result.epochs_done:.2f} epochs, {result.tokens_per_s:.0f} tok/s, wall {wall:.0f}s")
    if args.out:
        Path(args.out, "benchmark.json").write_text(json.dumps({"speed": rows, "result": result.summary()}, indent=2, default=str))


if __name__ == "__main__":
    main()
