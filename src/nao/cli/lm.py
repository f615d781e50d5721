"""Language-model commands: train a recurrent cell on PTB / WikiText-2, and NAO-WS-RNN search.

Entry points for the CLI (``nao train --task ptb ...`` dispatches to :func:`run_lm_train`)
and the library function :func:`search_ptb`::

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
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nao.data.corpus import Corpus, load_corpus
from nao.errors import ConfigError, NaoError
from nao.spaces.base import Architecture
from nao.spaces.rnn import RNNCellSpace
from nao.train.lm import LMConfig, LMResult, preset, train_lm

log = logging.getLogger(__name__)

RNN_SPACES = ("rnn", "rnn-darts", "rnn-enas")


# -- shared helpers ----------------------------------------------------------------------------
def _add(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """Add a flag unless the parser already has it (``nao train`` defines the common ones)."""
    if any(f in parser._option_string_actions for f in flags):
        return
    parser.add_argument(*flags, **kwargs)


def resolve_device(name: str | None) -> str:
    """``auto`` -> cuda if available else cpu; a CUDA device that is absent is a ConfigError."""
    name = name or "cpu"
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    return name


def ptb_dir(data_dir: str | None) -> Path:
    """``--data-dir`` or ``$NAO_DATA/ptb`` (the folder holding ptb.*.txt or wiki.*.tokens)."""
    if data_dir:
        return Path(data_dir)
    from nao.data.paths import data_root

    return data_root() / "ptb"


def resolve_rnn_arch(text: str, space: str | None = None) -> tuple[RNNCellSpace, Architecture]:
    """``--arch NAME|STRING`` -> (space, architecture); NaoError naming the problem otherwise."""
    from nao.spaces import get_space

    if space is not None and space not in RNN_SPACES:
        raise ConfigError(f"--space {space!r} is not a recurrent cell space; choose one of {', '.join(RNN_SPACES)}")
    for name in RNN_SPACES:  # a published name picks its own space
        sp = get_space(name)
        assert isinstance(sp, RNNCellSpace)
        if text.strip().lower() in {k.lower() for k in sp.named_architectures()}:
            if space is not None and space != name:
                raise ConfigError(f"--arch {text} lives in space {name!r}, not --space {space!r}")
            return sp, sp.named(text)
    errors = []
    for name in [space] if space else list(RNN_SPACES):
        sp = get_space(name)
        assert isinstance(sp, RNNCellSpace)
        try:
            return sp, sp.parse(text)
        except NaoError as e:
            errors.append(f"{name}: {e}")
    raise ConfigError(f"--arch {text[:80]!r} is neither a known recurrent cell name nor a valid genotype ({'; '.join(errors)})")


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
    """The preset named by ``--preset`` (default by device) with every given flag applied."""
    name = getattr(args, "preset", None) or ("paper" if device.startswith("cuda") else "small")
    over: dict[str, Any] = {}
    for flag in ("epochs", "batch_size", "lr", "weight_decay", "bptt", "clip", "hidden_size", "dropout", "dropout_h",
                 "dropout_x", "dropout_i", "dropout_e", "dropout_w", "eval_every", "eval_batch_size"):
        v = getattr(args, flag, None)
        if v is not None:
            over[flag] = v
    if getattr(args, "time_limit", None) is not None:
        over["time_limit_s"] = args.time_limit
    over["seed"] = getattr(args, "seed", 0) or 0
    if getattr(args, "no_asgd", False):
        over["asgd"] = False
    over["bf16"] = bool(getattr(args, "bf16", False))
    over["compile"] = bool(getattr(args, "compile", False))
    return preset(name, **over)


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
    _set_threads(getattr(args, "threads", None))
    corpus = load_corpus(ptb_dir(args.data_dir), oov=getattr(args, "oov", "unk"))
    model, meta = build_lm(args.arch, args.space, cfg, len(corpus.vocab), cfg.seed)
    quiet = bool(getattr(args, "quiet", False))
    if not quiet:
        print(f"training {meta['arch']} on {corpus.root} ({corpus.format}, vocab {len(corpus.vocab)}), "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, device {device}")
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
    from nao.train.lm import config_from_dict, evaluate_lm

    meta, cfg = state.get("meta", {}), config_from_dict(state["config"])
    corpus = load_corpus(ptb_dir(getattr(args, "data_dir", None)))
    model, _ = build_lm(meta.get("arch", "lstm"), meta.get("space"), cfg, len(corpus.vocab), 0)
    model.load_state_dict(state["model"])
    device = resolve_device(getattr(args, "device", "cpu"))
    split = corpus.test if getattr(args, "split", "test") == "test" else corpus.train
    data = batchify(split, cfg.eval_batch_size, device)
    loss, acc = evaluate_lm(model.to(device), data, cfg.bptt)
    print(json.dumps({"split": args.split, "ppl": perplexity(loss), "loss": loss, "acc": acc}))
    return 0


# -- NAO-WS-RNN search ----------------------------------------------------------------------
def bind_objective(strategy: Any, objective: str) -> None:
    """Make ``strategy`` maximise ``objective`` instead of ``val_acc``."""
    strategy.objective = objective


def search_ptb(
    out_dir: str | Path,
    corpus: Corpus | None = None,
    data_dir: str | Path | None = None,
    space: str = "rnn",
    strategy: str = "nao",
    budget: int | None = None,
    seed: int = 0,
    supernet: Any = None,
    strategy_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    quiet: bool = False,
) -> dict[str, Any]:
    """NAO-WS-RNN search on a word-level corpus; returns (and writes) a report.

    A :class:`~nao.study.Study` drives ``strategy`` against an
    :class:`~nao.evaluators.rnn_supernet.RNNSupernetEvaluator`, maximising
    ``val_score = -log(val ppl)`` on a fixed validation slice. The run directory gets
    ``config.json``, ``manifest.json``, ``journal.jsonl``, ``search.log``, ``best.json``,
    ``supernet.json`` (per-round statistics and the final pool ranking) and ``result.json``.

    Args:
        out_dir: the run directory (must not hold a run).
        corpus / data_dir: the data (``corpus`` wins; default ``$NAO_DATA/ptb``).
        space: ``rnn`` (NAO-WS), ``rnn-darts`` or ``rnn-enas``.
        strategy: registered strategy name (``nao``, ``random``, ...).
        budget: unique architectures to score (default: 3 rounds of the supernet config).
        supernet: :class:`~nao.evaluators.rnn_supernet.RNNSupernetConfig` (default ``small``).
        strategy_kwargs: extra strategy arguments; for ``nao`` the round sizes default to the
            supernet's (``seed_archs = seed_pool``, ``per_round = new_per_round``).
    """
    from nao.evaluators.rnn_supernet import OBJECTIVE, supernet_preset
    from nao.rundir import RunDir

    if space not in RNN_SPACES:
        raise ConfigError(f"--space {space!r} is not a recurrent cell space; choose one of {', '.join(RNN_SPACES)}")
    cfg = supernet or supernet_preset("small")
    budget = budget if budget is not None else cfg.seed_pool + 2 * cfg.new_per_round
    kwargs = dict(strategy_kwargs or {})
    if strategy == "nao":
        kwargs.setdefault("seed_archs", cfg.seed_pool)
        kwargs.setdefault("per_round", cfg.new_per_round)
    # threads: CPU float sums depend on the thread count, so a resume reuses it to end exactly as this run would.
    config = {"task": "ptb", "space": space, "strategy": strategy, "budget": budget, "seed": seed,
              "supernet": asdict(cfg), "strategy_kwargs": kwargs, "device": device, "objective": OBJECTIVE,
              "data_dir": str(data_dir) if data_dir else None, "threads": torch.get_num_threads()}
    corpus = corpus or load_corpus(ptb_dir(config["data_dir"]))  # a missing corpus fails before the run directory
    rundir = RunDir.create(out_dir, config)
    return _run_ptb_search(rundir, config, cfg, corpus, quiet)


#: What a PTB search's ``config.json`` must hold to be resumed.
_PTB_KEYS = ("space", "strategy", "budget", "seed", "supernet", "strategy_kwargs", "device")


def resume_ptb_search(
    out_dir: str | Path,
    corpus: Corpus | None = None,
    data_dir: str | Path | None = None,
    device: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Continue the interrupted :func:`search_ptb` run in ``out_dir``; returns its report.

    The journal is replayed through the strategy rebuilt from the run's seed and the supernet
    continues from ``supernet.pt``, the state after the last finished round
    (:mod:`nao.evaluators.rounds`): on the same device the run ends as an uninterrupted one
    would. A finished run is returned as it is.

    Args:
        out_dir: the run directory.
        corpus / data_dir: the data (default: the run's ``data_dir``, else ``$NAO_DATA/ptb``).
        device: run on another device than the run's.
        quiet: no round lines.
    """
    from nao.dataclass_json import dataclass_from_plain
    from nao.evaluators.rnn_supernet import RNNSupernetConfig
    from nao.evaluators.rounds import resume_point
    from nao.rundir import RunDir
    from nao.spaces import get_space

    rundir = RunDir.open(out_dir)
    config = rundir.config()
    missing = [k for k in _PTB_KEYS if k not in config]
    if config.get("task") != "ptb" or missing:
        raise ConfigError(f"--resume {out_dir}: config.json is not a PTB search's"
                          + (f" (lacks {', '.join(missing)})" if missing else ""))
    done = rundir.read_json("result.json")
    if isinstance(done, dict):
        _say(quiet, f"{rundir.path} is a finished run: best {done.get('best_arch')}")
        return done
    cfg = dataclass_from_plain(RNNSupernetConfig, config["supernet"])
    config = {**config, "device": device or config["device"],
              "data_dir": str(data_dir) if data_dir else config.get("data_dir")}
    corpus = corpus or load_corpus(ptb_dir(config["data_dir"]))
    rundir.note_resume(config)
    previous, state, notes = resume_point(rundir.path, rundir.journal_path, get_space(config["space"]),
                                          resolve_device(config["device"]))
    _say(quiet, f"resuming {rundir.path}: replaying {len(previous)} journaled results; the supernet continues "
                f"after round {state['rounds'] if state else 0}")
    return _run_ptb_search(rundir, config, cfg, corpus, quiet, previous, state, notes)


def _say(quiet: bool, line: str) -> None:
    if not quiet:
        print(line, flush=True)


def _run_ptb_search(rundir, config: dict[str, Any], cfg, corpus: Corpus, quiet: bool, previous=(), state=None,
                    notes=()) -> dict[str, Any]:
    """The Study of :func:`search_ptb` in ``rundir`` (``previous``/``state``/``notes``: a resume's)."""
    from nao.evaluators.rnn_supernet import OBJECTIVE, RNNSupernetEvaluator
    from nao.evaluators.rounds import SUPERNET_CHECKPOINT
    from nao.journal import Journal
    from nao.rundir import RunLog
    from nao.spaces import get_space
    from nao.strategies import make_strategy
    from nao.study import Study

    sp = get_space(config["space"])
    strat = make_strategy(config["strategy"], sp, seed=config["seed"], **config["strategy_kwargs"])
    bind_objective(strat, OBJECTIVE)
    evaluator = RNNSupernetEvaluator(sp, corpus, cfg, device=resolve_device(config["device"]), seed=config["seed"],
                                     on_round=_RoundPrinter(quiet))
    evaluator.checkpoint_path = rundir.path / SUPERNET_CHECKPOINT
    if state is not None:
        evaluator.resume_from(state)
    t0 = time.time()
    with Journal(rundir.journal_path, sp) as journal, \
            RunLog(rundir, sp, objective=OBJECTIVE, skip=previous) as runlog:
        for note in notes:  # now that search.log records them
            log.warning("%s", note)
        # observe first: a round's checkpoint is written once its last result is journaled.
        study = Study(sp, strat, evaluator, journal=journal, objective=OBJECTIVE, replay=previous,
                      callbacks=[evaluator.observe, runlog])
        best = study.run(config["budget"])
    rundir.write_best(best, sp, study.n_evaluated)
    ranking = [{"arch": sp.format(a), "val_ppl": p} for a, p in evaluator.ranking()]
    rundir.write_json("supernet.json", {"rounds": evaluator.history, "final_pool_ranking": ranking})
    report = {
        "best_arch": sp.format(best.arch) if best else None,
        "best_metrics": best.metrics if best else {},
        "final_pool_best": ranking[0] if ranking else None,
        "n_evaluated": study.n_evaluated,
        "rounds": evaluator.rounds,
        "seconds": time.time() - t0,
        "out_dir": str(rundir.path),
    }
    rundir.write_json("result.json", report)
    return report


class _RoundPrinter:
    """One line per supernet round on stdout (unless quiet)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, s: dict[str, Any]) -> None:
        if not self.quiet:
            print(f"round {s['round']}: {s['new']} new, pool {s['pool']}, {s['steps']} steps, train ppl {s['train_ppl']:.1f}, "
                  f"val ppl best {s['best_val_ppl']:.1f} median {s['median_val_ppl']:.1f}, {s['tokens_per_s']:.0f} tok/s, "
                  f"{s['seconds']:.0f}s", flush=True)


def add_lm_search_args(parser: argparse.ArgumentParser) -> None:
    """Flags of ``nao search --task ptb`` (flags the parser already has are reused)."""
    _add(parser, "--space", default=None, help="rnn (NAO-WS, default), rnn-darts or rnn-enas")
    _add(parser, "--strategy", default=None, help="nao (default), random, ...")
    _add(parser, "--budget", type=int, default=None, help="architectures to score (default: 3 supernet rounds)")
    _add(parser, "--seed", type=int, default=None)
    _add(parser, "--out", default=None, help="run directory (default: runs/ptb-search-<time>)")
    _add(parser, "--data-dir", default=None, help="folder with ptb.*.txt or wiki.*.tokens (default: $NAO_DATA/ptb)")
    _add(parser, "--device", default=None, help="cpu, cuda, cuda:N or auto")
    _add(parser, "--preset", default=None, help="supernet preset: small (CPU, default), paper, tiny")
    _add(parser, "--threads", type=int, default=None, help="CPU threads for torch")
    g = parser.add_argument_group("rnn supernet (--task ptb)")
    _add(g, "--hidden-size", type=int, default=None, help="supernet embedding = hidden width")
    _add(g, "--share", choices=["node_input_act", "node_input"], default=None, help="weight blocks per (node, input[, act])")
    _add(g, "--seed-pool", type=int, default=None, help="architectures in the first round")
    _add(g, "--new-per-round", type=int, default=None, help="architectures each later round adds")
    _add(g, "--pool-size", type=int, default=None, help="architectures trained on per round")
    _add(g, "--steps-per-round", type=int, default=None, help="supernet mini-batches per round")
    _add(g, "--score-tokens", type=int, default=None, help="validation tokens each architecture is scored on (0: all)")


# Flags that shape a PTB search's supernet: its config.json decides them on --resume.
_PTB_SUPERNET_FLAGS = ("preset", "share", "seed_pool", "new_per_round", "pool_size", "steps_per_round", "score_tokens",
                       "hidden_size")


def resume_lm_search(args: argparse.Namespace) -> int:
    """``nao search --resume DIR`` for a PTB search; flags that would change the run are refused."""
    from nao.rundir import RunDir, refuse_changed_flags

    where = args.resume
    saved = RunDir.open(where).config()
    for key in _PTB_SUPERNET_FLAGS:
        if getattr(args, key, None) is not None:
            raise ConfigError(f"--resume {where}: --{key.replace('_', '-')} cannot change a resumed search's supernet "
                              f"(its config.json decides)")
    refuse_changed_flags(where, {k: getattr(args, k, None) for k in ("space", "strategy", "seed", "budget")}, saved,
                         args.out)
    threads = getattr(args, "threads", None)
    _set_threads(threads if threads is not None else saved.get("threads"))  # the run's own, unless told
    report = resume_ptb_search(where, data_dir=getattr(args, "data_dir", None), device=getattr(args, "device", None),
                               quiet=bool(getattr(args, "quiet", False)))
    _print_search_report(report)
    return 0


def _print_search_report(report: dict[str, Any]) -> None:
    m = report["best_metrics"]
    print(f"best: {report['best_arch']}  (supernet val ppl {m.get('val_ppl', float('nan')):.1f}; "
          f"{report['n_evaluated']} architectures, {report['seconds']:.0f}s) -> {report['out_dir']}")


def run_lm_search(args: argparse.Namespace) -> int:
    """``nao search --task ptb``: NAO-WS-RNN search; prints the winner."""
    from dataclasses import replace

    from nao.evaluators.rnn_supernet import supernet_preset

    over = {k: getattr(args, k) for k in ("share", "seed_pool", "new_per_round", "pool_size", "steps_per_round", "score_tokens")
            if getattr(args, k, None) is not None}
    cfg = supernet_preset(getattr(args, "preset", None) or "small", **over)
    if getattr(args, "hidden_size", None):
        model = replace(cfg.lm.model, emb_size=args.hidden_size, hidden_size=args.hidden_size)
        cfg = replace(cfg, lm=replace(cfg.lm, model=model))
    _set_threads(getattr(args, "threads", None))
    out = args.out or f"runs/ptb-search-{time.strftime('%Y%m%d-%H%M%S')}"
    report = search_ptb(
        out, data_dir=args.data_dir, space=args.space or "rnn", strategy=args.strategy or "nao", budget=args.budget,
        seed=args.seed or 0, supernet=cfg, device=args.device or "cpu", quiet=bool(getattr(args, "quiet", False)),
    )
    _print_search_report(report)
    return 0


__all__ = [
    "add_lm_search_args",
    "add_lm_train_args",
    "bind_objective",
    "evaluate_ptb",
    "lm_config_from_args",
    "resume_lm_search",
    "resume_ptb_search",
    "resolve_rnn_arch",
    "run_lm_search",
    "run_lm_train",
    "search_ptb",
]
