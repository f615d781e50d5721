"""Language-model commands: train a recurrent cell on PTB / WikiText-2 (searches live in :mod:`nao.runs`).

Entry points for the CLI (``nao train --task ptb ...`` dispatches to :func:`run_lm_train`)::

    nao train --task ptb --arch NAO --out runs/nao-ptb --time-limit 900       # small preset on CPU
    nao train --task ptb --arch "Genotype(recurrent=[...], concat=range(1, 12))" --out DIR
    nao train --task ptb --arch lstm --out DIR                                # nn.LSTM baseline

``--arch`` is a published name (``NAO`` in space ``rnn``, ``DARTS_V2`` in ``rnn-darts``,
``ENAS`` in ``rnn-enas``), ``lstm``, or a genotype string read by ``--space`` (default: the
first of rnn, rnn-darts, rnn-enas that accepts it).

>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_lm_train_args(p)
>>> args = p.parse_args(["--arch", "NAO", "--out", "/tmp/x", "--hidden-size", "64"])
>>> lm_config_from_args(args, "cpu").model.hidden_size
64
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nao.data.corpus import load_corpus
from nao.device import resolve_device
from nao.errors import ConfigError
from nao.spaces.base import Architecture
from nao.spaces.resolve import resolve_arch
from nao.spaces.rnn import RNNCellSpace
from nao.train.lm import LMConfig, LMResult, train_lm

log = logging.getLogger(__name__)


# -- shared helpers ----------------------------------------------------------------------------
def _add(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """Add a flag unless the parser already has it (``nao train`` defines the common ones)."""
    if any(f in parser._option_string_actions for f in flags):
        return
    parser.add_argument(*flags, **kwargs)


def ptb_dir(data_dir: str | None) -> Path:
    """``--data-dir`` or ``$NAO_DATA/ptb`` (the folder holding ptb.*.txt or wiki.*.tokens)."""
    if data_dir:
        return Path(data_dir)
    from nao.data.paths import data_root

    return data_root() / "ptb"


def resolve_rnn_arch(text: str, space: str | None = None) -> tuple[RNNCellSpace, Architecture]:
    """``--arch NAME|STRING`` -> (space, architecture) among the recurrent spaces
    (:func:`nao.spaces.resolve.resolve_arch` with ``family="rnn"``); NaoError naming the problem otherwise."""
    sp, arch = resolve_arch(text, space, family="rnn")
    assert isinstance(sp, RNNCellSpace)  # every space of the rnn family is one
    return sp, arch


def _set_threads(n: int | None) -> None:
    if n is not None:
        if n < 1:
            raise ConfigError(f"--threads must be at least 1, got {n}")
        torch.set_num_threads(n)


# -- nao train --task ptb --------------------------------------------------------------------
def add_lm_train_args(parser: argparse.ArgumentParser) -> None:
    """Flags of LM training; flags the parser already has (``nao train``'s) are reused."""
    _add(parser, "--arch", required=True, help="NAO, DARTS_V2, ENAS, lstm, or a recurrent genotype string")
    _add(parser, "--space", default=None, help="space of a string --arch: rnn, rnn-darts, rnn-enas")
    _add(parser, "--data-dir", default=None, help="folder with ptb.*.txt or wiki.*.tokens (default: $NAO_DATA/ptb)")
    _add(parser, "--preset", choices=["paper", "small"], default=None, help="paper (850 units) or small (CPU); default: paper on CUDA, small on CPU")
    _add(parser, "--epochs", type=int, default=None)
    _add(parser, "--batch-size", type=int, default=None)
    _add(parser, "--lr", type=float, default=None)
    _add(parser, "--weight-decay", type=float, default=None)
    _add(parser, "--seed", type=int, default=0)
    _add(parser, "--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    _add(parser, "--compile", action="store_true", help="torch.compile the cell step (opt-in)")
    _add(parser, "--threads", type=int, default=None, help="CPU threads for torch")
    _add(parser, "--resume", action="store_true", help="continue from --out/checkpoint.pt")
    _add(parser, "--out", required=True, help="run directory (checkpoint.pt, best.pt, metrics.json)")
    g = parser.add_argument_group("language model (--task ptb)")
    _add(g, "--time-limit", type=float, default=None, help="stop training after this many seconds (resumable)")
    _add(g, "--bptt", type=int, default=None, help="mean truncated-BPTT length (35)")
    _add(g, "--clip", type=float, default=None, help="gradient-norm clip (0.25)")
    _add(g, "--hidden-size", type=int, default=None, help="embedding = hidden width (paper 850, small 256)")
    for name in ("dropout", "dropout-h", "dropout-x", "dropout-i", "dropout-e", "dropout-w"):
        _add(g, f"--{name}", type=float, default=None, help=f"{name.replace('-', '_')} probability")
    _add(g, "--eval-every", type=int, default=None, help="mini-batches between validations (0: each epoch)")
    _add(g, "--eval-batch-size", type=int, default=None)
    _add(g, "--no-asgd", action="store_true", help="never switch to averaged SGD")
    _add(g, "--bf16", action="store_true", help="bf16 autocast (CUDA only, opt-in)")
    _add(g, "--oov", choices=["unk", "error"], default="unk", help="unknown valid/test words: map to <unk> or fail")


def lm_config_from_args(args: argparse.Namespace, device: str) -> LMConfig:
    """The preset named by ``--preset`` (default by device; ``lm/NAME`` in the one registry), then ``--config``,
    the flags and ``--set`` (:func:`nao.config.apply_layers`)."""
    from nao.config import apply_layers
    from nao.presets import preset as registry_preset
    from nao.presets import setting_layers

    name = getattr(args, "preset", None) or ("paper" if device.startswith("cuda") else "small")
    model_keys = {"hidden_size", "dropout", "dropout_h", "dropout_x", "dropout_i", "dropout_e", "dropout_w"}
    over: dict[str, Any] = {}
    for flag in ("epochs", "batch_size", "lr", "weight_decay", "bptt", "clip", "eval_every", "eval_batch_size",
                 *sorted(model_keys)):
        v = getattr(args, flag, None)
        if v is not None:
            over[f"model.{flag}" if flag in model_keys else flag] = v
    if "model.hidden_size" in over:
        over["model.emb_size"] = over["model.hidden_size"]  # tied embeddings
    if getattr(args, "time_limit", None) is not None:
        over["time_limit_s"] = args.time_limit
    over["seed"] = getattr(args, "seed", 0) or 0
    if getattr(args, "no_asgd", False):
        over["asgd"] = False
    over["bf16"] = bool(getattr(args, "bf16", False))
    over["compile"] = bool(getattr(args, "compile", False))
    layers = setting_layers(getattr(args, "config", None), over, getattr(args, "settings", ()) or ())
    return apply_layers(LMConfig, registry_preset(f"lm/{name}").to_dict(), layers)


#: What a resumed ``nao train --task ptb`` may change: where it runs, how long (a time limit, more epochs).
LM_RESUMABLE = ("device", "threads", "data_dir", "time_limit_s", "epochs", "compile", "bf16")


def build_lm(arch_text: str, space: str | None, cfg: LMConfig, vocab_size: int, seed: int) -> tuple[Any, dict[str, Any]]:
    """(model, meta) for ``--arch`` (``lstm`` gives the baseline)."""
    from nao.nn.rnn import build_model

    if arch_text.strip().lower() == "lstm":
        return build_model(cfg.model, vocab_size, cell="lstm", seed=seed), {"task": "ptb", "arch": "lstm", "space": None}
    sp, arch = resolve_rnn_arch(arch_text, space)
    model = build_model(cfg.model, vocab_size, genotype=sp.decode(arch), seed=seed)
    return model, {"task": "ptb", "arch": sp.format(arch), "space": sp.name}


def run_lm_train(args: argparse.Namespace) -> int:
    """``nao train --task ptb``: train ``--arch``, write metrics.json, print perplexities."""
    device = resolve_device(getattr(args, "device", "cpu"))
    cfg = lm_config_from_args(args, device)
    # Check the cheap things before reading data: the architecture and the output directory.
    if args.arch.strip().lower() != "lstm":
        resolve_rnn_arch(args.arch, args.space)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    if (out / "checkpoint.pt").exists() and not args.resume:
        raise ConfigError(f"--out {out} already holds checkpoint.pt; pass --resume or choose another --out")
    from nao.cli.train import _one_writer, check_train_resume, write_train_record

    record = {"task": "ptb", "arch": args.arch.strip(), "space": args.space, "preset": getattr(args, "preset", None),
              "data_dir": str(ptb_dir(args.data_dir).resolve()), "device": device,
              "threads": getattr(args, "threads", None), "oov": getattr(args, "oov", "unk"), **cfg.to_dict()}
    check_train_resume(out, record, args.resume, LM_RESUMABLE)
    _set_threads(getattr(args, "threads", None))
    corpus = load_corpus(ptb_dir(args.data_dir), oov=getattr(args, "oov", "unk"))
    model, meta = build_lm(args.arch, args.space, cfg, len(corpus.vocab), cfg.seed)
    quiet = bool(getattr(args, "quiet", False))
    if not quiet:
        print(f"training {meta['arch']} on {corpus.root} ({corpus.format}, vocab {len(corpus.vocab)}), "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, device {device}")
    with _one_writer(out):
        write_train_record(out, record)  # every check has passed: the corpus is read, the model built
        result = train_lm(model, corpus, cfg, out_dir=out, device=device, resume=args.resume, quiet=quiet, meta=meta)
        write_metrics(out, result, cfg, meta)
    print(f"val ppl {result.val_ppl:.2f} | test ppl {result.test_ppl:.2f} | {result.tokens_per_s:.0f} tok/s | "
          f"{result.epochs_done:.2f} epochs in {result.train_time_s:.0f}s | {out / 'metrics.json'}")
    return 0 if math.isfinite(result.val_ppl) else 1


def write_metrics(out: Path, result: LMResult, cfg: LMConfig, meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {**result.summary(), "config": asdict(cfg), "meta": meta}
    (out / "metrics.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def evaluate_ptb(args: argparse.Namespace, state: dict[str, Any]) -> int:
    """``nao evaluate --checkpoint FILE`` for a PTB checkpoint (best.pt or checkpoint.pt)."""
    from nao.data.corpus import batchify, perplexity
    from nao.train.lm import LMConfig, evaluate_lm

    meta, cfg = state.get("meta", {}), LMConfig.from_dict(state["config"])
    corpus = load_corpus(ptb_dir(getattr(args, "data_dir", None)))
    model, _ = build_lm(meta.get("arch", "lstm"), meta.get("space"), cfg, len(corpus.vocab), 0)
    model.load_state_dict(state["model"])
    device = resolve_device(getattr(args, "device", "cpu"))
    split = corpus.test if getattr(args, "split", "test") == "test" else corpus.train
    data = batchify(split, cfg.eval_batch_size, device)
    loss, acc = evaluate_lm(model.to(device), data, cfg.bptt)
    print(json.dumps({"split": args.split, "ppl": perplexity(loss), "loss": loss, "acc": acc}))
    return 0


__all__ = [
    "add_lm_train_args",
    "evaluate_ptb",
    "lm_config_from_args",
    "resolve_rnn_arch",
    "run_lm_train",
]
