"""Language-model training: AWD-LSTM-style SGD, then averaged SGD on a non-monotonic trigger.

(Over 400 lines: config, presets, averaging, the trainer and its checkpoint/restore are one state
machine; the resume code must see every field the trainer keeps.)

One loop serves the final training of a cell and the weight-sharing supernet: the
:class:`LMTrainer` takes an optional ``genotype_fn`` called once per mini-batch (the supernet
samples an architecture there). Each step uses a variable BPTT length, scales the learning
rate by ``seq_len / bptt``, adds temporal activation regularisation (TAR, ``beta``) and
activation regularisation (AR, ``alpha``), and clips the gradient norm. Validation
perplexity is computed on the whole validation stream; when it has not improved on the best
value older than ``nonmono`` evaluations, training switches to averaged SGD (the average of
the weights since the switch is what gets evaluated and saved), as in AWD-LSTM/DARTS/NAO.

>>> import tempfile, pathlib
>>> from nao.data.corpus import load_corpus
>>> from nao.nn.rnn import build_model
>>> from nao.spaces import get_space
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for split in ("train", "valid", "test"):
...     _ = (d / f"ptb.{split}.txt").write_text("a b c d e f g h\\n" * 40)
>>> corpus = load_corpus(d)
>>> cfg = preset("tiny", epochs=1)
>>> space = get_space("rnn")
>>> model = build_model(cfg.model, len(corpus.vocab), space.decode(space.named("NAO")))
>>> result = train_lm(model, corpus, cfg, quiet=True)
>>> import math; math.isfinite(result.val_ppl) and result.steps > 0
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nao.config import Config
from nao.data.corpus import Corpus, batchify, check_bptt, eval_batches, get_batch, perplexity, sample_seq_len
from nao.device import autocast
from nao.errors import ConfigError
from nao.nn.rnn import ModelConfig, RNNLanguageModel, detach_hidden
from nao.spaces.rnn import RecurrentGenotype
from nao.train.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

GenotypeFn = Callable[[], "RecurrentGenotype | None"]


@dataclass(frozen=True)
class LMConfig(Config):
    """Training hyperparameters (defaults: DARTS/NAO final PTB training, see :func:`preset`)."""

    # Network sizes and dropouts.
    model: ModelConfig = field(default_factory=ModelConfig)
    # Parallel streams per mini-batch (NAO/DARTS: 64).
    batch_size: int = 64
    # Streams for validation/test (NAO/DARTS: 10 for valid; they use 1 for test, we use this too).
    eval_batch_size: int = 10
    # Mean truncated-BPTT length (35); training draws lengths around it.
    bptt: int = 35
    # Longest training sequence is bptt + this (AWD-LSTM: 20).
    max_seq_len_delta: int = 20
    # SGD learning rate (20) and global gradient-norm clip (0.25).
    lr: float = 20.0
    clip: float = 0.25
    # L2 weight decay on all weights (NAO/DARTS final: 8e-7).
    weight_decay: float = 8e-7
    # AR on the dropped cell output (alpha, 0) and TAR on the raw output (beta, 1e-3).
    alpha: float = 0.0
    beta: float = 1e-3
    # Switch to averaged SGD when validation is worse than the best older than `nonmono` evals (5).
    nonmono: int = 5
    # Use averaged SGD at all.
    asgd: bool = True
    # Upper epoch limit (NAO: 8000 in train.py, 4000 in train_ptb_final.sh; runs are stopped by hand).
    epochs: int = 8000
    # Wall-clock limit of one call (seconds; None: none). Training stops after the current
    # mini-batch, evaluates, checkpoints, and can be resumed.
    time_limit_s: float | None = None
    # Mini-batches between validations (0: once per epoch).
    eval_every: int = 0
    # Seed of every random draw (dropout masks, sequence lengths).
    seed: int = 1267
    # CUDA-only fast paths, opt-in: bf16 autocast and torch.compile of the cell step.
    bf16: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_batch_size", "bptt", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.clip <= 0:
            raise ConfigError(f"lr and clip must be positive, got {self.lr}, {self.clip}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ConfigError(f"time limit must be positive, got {self.time_limit_s}")


def _presets() -> dict[str, LMConfig]:
    return {
        # renqianluo/NAO NAO/rnn/train.py defaults (= quark0/darts rnn/train.py): emb = hidden = 850,
        # batch 64, bptt 35, lr 20, clip 0.25, dropout 0.75/0.25/0.75/0.2/0 (out/h/x/i/e),
        # wdecay 8e-7, beta 1e-3, nonmono 5, seed 1267.
        "paper": LMConfig(),
        # A CPU preset for runs of minutes (the under-fitting regime): narrow (128), light dropout,
        # small batches with a larger step (more updates per token), validation every 500 steps
        # (~0.4 epoch) so averaging can start within a run. Tuned by hand on PTB, see BENCHMARKS.md.
        "small": LMConfig(
            model=ModelConfig(128, 128, dropout=0.2, dropout_h=0.05, dropout_x=0.1, dropout_i=0.05, dropout_e=0.0),
            batch_size=20,
            eval_batch_size=32,
            bptt=35,
            lr=30.0,
            weight_decay=1.2e-6,
            nonmono=3,
            epochs=100,
            eval_every=500,
        ),
        # For tests and doctests.
        "tiny": LMConfig(
            model=ModelConfig(32, 32, dropout=0.1, dropout_h=0.1, dropout_x=0.1, dropout_i=0.1),
            batch_size=4,
            eval_batch_size=4,
            bptt=8,
            max_seq_len_delta=4,
            epochs=2,
        ),
    }


PRESET_NAMES = ("paper", "small", "tiny")


def _register_presets() -> None:
    from nao.presets import register_preset

    for name in PRESET_NAMES:
        register_preset("lm", name)(lambda name=name: _presets()[name])


_register_presets()


def preset(name: str, **overrides: Any) -> LMConfig:
    """LM preset ``name`` (``paper``, ``small``, ``tiny``) from the one registry (:func:`nao.presets.preset`).

    Overrides of :class:`ModelConfig` fields (``hidden_size``, ``dropout_h``, ...) may be given bare
    (they go to ``model``); setting ``hidden_size`` alone also sets ``emb_size`` (the embeddings are tied).
    """
    from nao.presets import preset as registry_preset

    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    over = {(f"model.{k}" if k in model_fields else k): v for k, v in overrides.items() if v is not None}
    if "model.hidden_size" in over and "model.emb_size" not in over:
        over["model.emb_size"] = over["model.hidden_size"]
    return registry_preset(f"lm/{name}", **over)


# -- averaged SGD ------------------------------------------------------------------------------
class ParamAverager:
    """Running mean of the parameters since :meth:`start` (ASGD with ``t0=0, lambd=0``)."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.params = params
        self.avg: list[torch.Tensor] | None = None
        self.n = 0

    @property
    def active(self) -> bool:
        return self.avg is not None

    def start(self) -> None:
        self.avg = [p.detach().clone() for p in self.params]
        self.n = 1

    @torch.no_grad()
    def update(self) -> None:
        if self.avg is None:
            return
        self.n += 1
        for a, p in zip(self.avg, self.params):
            a.add_(p.detach() - a, alpha=1.0 / self.n)

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the model (no-op when inactive)."""
        if self.avg is None:
            yield
            return
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, a in zip(self.params, self.avg):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved):
                    p.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, "avg": self.avg}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n = int(state["n"])
        self.avg = None if state["avg"] is None else [a.to(p.device) for a, p in zip(state["avg"], self.params)]


# -- evaluation ----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_lm(
    model: RNNLanguageModel,
    data: torch.Tensor,
    bptt: int,
    genotype: RecurrentGenotype | None = None,
    bf16: bool = False,
) -> tuple[float, float]:
    """Mean next-word loss (nats/token) and top-1 accuracy over the ``(T, B)`` stream ``data``.

    The hidden state starts at zero and is carried across windows, as in AWD-LSTM.
    """
    was_training = model.training
    model.eval()
    hidden = model.init_hidden(data.size(1))
    total, correct, count = 0.0, 0, 0
    for x, y in eval_batches(data, bptt):
        with autocast(data.device.type, bf16 and data.device.type == "cuda"):
            logits, hidden, _ = model(x, hidden, genotype=genotype)
        logits = logits.float().view(-1, logits.size(-1))  # (L, B, V) -> (L*B, V)
        total += F.cross_entropy(logits, y.reshape(-1), reduction="sum").item()
        correct += int((logits.argmax(-1) == y.reshape(-1)).sum())
        count += y.numel()
    model.train(was_training)
    return total / count, correct / count


# -- the trainer ---------------------------------------------------------------------------------
class LMTrainer:
    """Owns the optimizer, averaging, the position in the training stream and the RNGs.

    Args:
        model: the language model.
        train: the ``(T, B)`` training stream (on the model's device).
        cfg: hyperparameters.
        seed: seeds the numpy generator (sequence lengths) and torch generator (dropout masks).
    """

    def __init__(self, model: RNNLanguageModel, train: torch.Tensor, cfg: LMConfig, seed: int | None = None) -> None:
        check_bptt(train, cfg.bptt, "training")
        self.model, self.train_data, self.cfg = model, train, cfg
        self.device = train.device
        if cfg.bf16 and self.device.type != "cuda":
            raise ConfigError("--bf16 needs a CUDA device")
        seed = cfg.seed if seed is None else seed
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.params = list(model.parameters())
        self.optimizer = torch.optim.SGD(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.averager = ParamAverager(self.params)
        self.hidden = model.init_hidden(train.size(1))
        self.pos = 0  # next position in the training stream
        self.epoch = 1
        self.steps = 0
        self.tokens = 0
        self.train_time_s = 0.0

    # One optimisation step on data[pos:pos+L].
    def step(self, genotype: RecurrentGenotype | None = None) -> float:
        cfg, model = self.cfg, self.model
        seq_len = sample_seq_len(self.rng, cfg.bptt, cfg.max_seq_len_delta)
        x, y = get_batch(self.train_data, self.pos, seq_len)
        model.train()
        self.hidden = detach_hidden(self.hidden)
        with autocast(self.device.type, cfg.bf16 and self.device.type == "cuda"):
            logits, self.hidden, raw = model(x, self.hidden, genotype=genotype, generator=self.generator)
        raw_loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))  # (L*B, V)
        loss = raw_loss
        if cfg.beta > 0 and raw.size(0) > 1:
            loss = loss + cfg.beta * (raw[1:] - raw[:-1]).float().pow(2).mean()
        if cfg.alpha > 0:
            loss = loss + cfg.alpha * raw.float().pow(2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([p for p in self.params if p.grad is not None], cfg.clip)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * x.size(0) / cfg.bptt  # longer sequences take larger steps
        self.optimizer.step()
        self.averager.update()
        self.pos += x.size(0)
        self.steps += 1
        self.tokens += x.numel()
        if self.pos >= self.train_data.size(0) - 2:  # epoch done: wrap around, fresh state
            self.pos = 0
            self.epoch += 1
            self.hidden = self.model.init_hidden(self.train_data.size(1))
        value = raw_loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {self.steps}")
        return value

    def run(
        self,
        n_steps: int,
        genotype_fn: GenotypeFn | None = None,
        bar: Any = None,
        deadline: float | None = None,
        stop_at_epoch_end: bool = False,
    ) -> list[float]:
        """Up to ``n_steps`` steps (fewer at the deadline or, if asked, at the end of the epoch)."""
        losses = []
        epoch = self.epoch
        for _ in range(n_steps):
            t0 = time.perf_counter()
            tokens0 = self.tokens
            losses.append(self.step(genotype_fn() if genotype_fn else None))
            dt = time.perf_counter() - t0
            self.train_time_s += dt
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.2f}", ppl=f"{perplexity(losses[-1]):.0f}", tok_s=f"{(self.tokens - tokens0) / dt:.0f}", refresh=False)
            if (deadline is not None and time.time() >= deadline) or (stop_at_epoch_end and self.epoch != epoch):
                break
        return losses

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.train_time_s if self.train_time_s > 0 else 0.0

    def steps_per_epoch(self) -> int:
        return max(1, (self.train_data.size(0) - 2) // self.cfg.bptt)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "averager": self.averager.state_dict(),
            "hidden": self.hidden,
            "pos": self.pos,
            "epoch": self.epoch,
            "steps": self.steps,
            "tokens": self.tokens,
            "train_time_s": self.train_time_s,
            "rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.averager.load_state_dict(state["averager"])
        self.hidden = state["hidden"].to(self.device) if isinstance(state["hidden"], torch.Tensor) else tuple(
            h.to(self.device) for h in state["hidden"]
        )
        self.pos, self.epoch, self.steps = int(state["pos"]), int(state["epoch"]), int(state["steps"])
        self.tokens, self.train_time_s = int(state["tokens"]), float(state["train_time_s"])
        self.rng.bit_generator.state = state["rng"]
        # A generator's state is a CPU tensor even for a CUDA generator; map_location may have moved it.
        self.generator.set_state(state["generator"].cpu())


# -- the full training run -----------------------------------------------------------------------
@dataclass
class LMResult:
    """Outcome of :func:`train_lm`. Perplexities of the best validation checkpoint."""

    val_ppl: float
    test_ppl: float | None
    val_loss: float
    best_step: int
    steps: int
    epochs_done: float
    tokens_per_s: float
    train_time_s: float
    params: int
    history: list[dict[str, float]]
    averaged: bool
    out_dir: Path | None = None

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir) if self.out_dir else None
        return d


def train_lm(
    model: RNNLanguageModel,
    corpus: Corpus,
    cfg: LMConfig,
    out_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    quiet: bool = False,
    meta: dict[str, Any] | None = None,
    test: bool = True,
    until_steps: int | None = None,
) -> LMResult:
    """Train ``model`` on ``corpus`` under ``cfg``; evaluate the best checkpoint on test.

    Args:
        out_dir: where ``checkpoint.pt`` (latest, for ``resume``) and ``best.pt`` go (None: nowhere).
        device: where model and data live.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists.
        quiet: no progress bar.
        meta: stored in checkpoints (e.g. the architecture string), checked on resume.
        test: compute test perplexity at the end (reports only; search never calls this).
        until_steps: stop after this many steps in all (a fidelity rung), validating there; with
            a multiple of the validation interval, a resumed run continues exactly the planned one.
    """
    device = torch.device(device)
    model.to(device)
    if cfg.compile and hasattr(model.cell, "compile_step"):
        model.cell.compile_step()
    train = batchify(corpus.train, cfg.batch_size, device)
    valid = batchify(corpus.valid, cfg.eval_batch_size, device)
    trainer = LMTrainer(model, train, cfg)
    history: list[dict[str, float]] = []
    best = {"val_loss": float("inf"), "step": 0, "state": None}
    out = Path(out_dir) if out_dir is not None else None
    meta = dict(meta or {})
    if resume and out is not None and (out / "checkpoint.pt").exists():
        _restore(out, model, trainer, cfg, meta, history, best, device)
        log.info("resumed from %s at epoch %d, step %d", out / "checkpoint.pt", trainer.epoch, trainer.steps)
    deadline = time.time() + cfg.time_limit_s if cfg.time_limit_s else None
    per_eval = cfg.eval_every or trainer.steps_per_epoch()
    while (trainer.epoch <= cfg.epochs and (deadline is None or time.time() < deadline)
           and (until_steps is None or trainer.steps < until_steps)):
        n = per_eval if until_steps is None else min(per_eval, until_steps - trainer.steps)
        # disable=None: no bar when stderr is not a terminal (the validation line is logged anyway).
        bar = None if quiet else tqdm(total=n, desc=f"epoch {trainer.epoch}", leave=False, dynamic_ncols=True,
                                      disable=None)
        trainer.run(n, bar=bar, deadline=deadline, stop_at_epoch_end=cfg.eval_every == 0)
        if bar is not None:
            bar.close()
        _validate(trainer, valid, cfg, history, best, out, meta, quiet)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    test_ppl = None
    if test:
        test_data = batchify(corpus.test, cfg.eval_batch_size, device)
        test_ppl = perplexity(evaluate_lm(model, test_data, cfg.bptt, bf16=cfg.bf16)[0])
    return LMResult(
        val_ppl=perplexity(best["val_loss"]),
        test_ppl=test_ppl,
        val_loss=best["val_loss"],
        best_step=best["step"],
        steps=trainer.steps,
        epochs_done=trainer.steps / trainer.steps_per_epoch(),
        tokens_per_s=trainer.tokens_per_s,
        train_time_s=trainer.train_time_s,
        params=sum(p.numel() for p in model.parameters()),
        history=history,
        averaged=trainer.averager.active,
        out_dir=out,
    )


def _validate(
    trainer: LMTrainer,
    valid: torch.Tensor,
    cfg: LMConfig,
    history: list[dict[str, float]],
    best: dict[str, Any],
    out: Path | None,
    meta: dict[str, Any],
    quiet: bool,
) -> None:
    """Evaluate (averaged weights if averaging), keep the best, maybe trigger averaging, checkpoint."""
    model = trainer.model
    with trainer.averager.swapped():
        val_loss, val_acc = evaluate_lm(model, valid, cfg.bptt, bf16=cfg.bf16)
        if val_loss < best["val_loss"]:
            best.update(val_loss=val_loss, step=trainer.steps, state={k: v.detach().clone() for k, v in model.state_dict().items()})
            if out is not None:
                save_checkpoint(out / "best.pt", {"model": best["state"], "val_loss": val_loss, "meta": meta, "config": asdict(cfg)})
    losses = [h["val_loss"] for h in history]
    if (
        cfg.asgd
        and not trainer.averager.active
        and len(losses) > cfg.nonmono
        and val_loss > min(losses[: -cfg.nonmono])
    ):
        trainer.averager.start()
        log.info("switching to averaged SGD at step %d", trainer.steps)
    rec = {
        "step": trainer.steps,
        "epoch": trainer.steps / trainer.steps_per_epoch(),
        "val_loss": val_loss,
        "val_ppl": perplexity(val_loss),
        "val_acc": val_acc,
        "train_time_s": trainer.train_time_s,
        "tokens_per_s": trainer.tokens_per_s,
        "averaged": float(trainer.averager.active),
    }
    history.append(rec)
    msg = (
        f"step {rec['step']} (epoch {rec['epoch']:.2f}) | val ppl {rec['val_ppl']:.2f} | "
        f"{rec['tokens_per_s']:.0f} tok/s | {rec['train_time_s']:.0f}s{' | averaging' if trainer.averager.active else ''}"
    )
    if quiet:
        log.debug(msg)
    else:
        log.info(msg)
    if out is not None:
        save_checkpoint(
            out / "checkpoint.pt",
            {
                "model": model.state_dict(),
                "trainer": trainer.state_dict(),
                "history": history,
                "best_val_loss": best["val_loss"],
                "best_step": best["step"],
                "config": asdict(cfg),
                "meta": meta,
            },
        )


def _restore(
    out: Path,
    model: RNNLanguageModel,
    trainer: LMTrainer,
    cfg: LMConfig,
    meta: dict[str, Any],
    history: list[dict[str, float]],
    best: dict[str, Any],
    device: torch.device,
) -> None:
    state = load_checkpoint(out / "checkpoint.pt", map_location=device)
    if state.get("meta", {}) != meta:
        raise ConfigError(f"{out / 'checkpoint.pt'} was written for {state.get('meta')}, not {meta}; use another --out")
    if state["config"]["model"] != asdict(cfg.model):
        raise ConfigError(f"{out / 'checkpoint.pt'} has model settings {state['config']['model']}; they cannot change on resume")
    model.load_state_dict(state["model"])
    trainer.load_state_dict(state["trainer"])
    history.extend(state["history"])
    best.update(val_loss=float(state["best_val_loss"]), step=int(state["best_step"]))
    if (out / "best.pt").exists():
        best["state"] = load_checkpoint(out / "best.pt", map_location=device)["model"]


__all__ = [
    "PRESET_NAMES",
    "LMConfig",
    "LMResult",
    "LMTrainer",
    "ParamAverager",
    "evaluate_lm",
    "preset",
    "train_lm",
]
