"""Train and evaluate an image classifier (a :class:`~nao.nn.network.CellNetwork` or any
module returning logits or ``(logits, aux_logits)``) on on-device uint8 image sets.

SGD with momentum (optionally Nesterov), cosine learning rate per step, weight decay,
gradient-norm clipping, auxiliary-head loss, scheduled drop path, label smoothing. The
device fast paths (bf16 autocast, torch.compile) apply only on CUDA and, like channels_last, are
chosen once in :func:`make_runtime`. Each epoch can be checkpointed and a run resumed;
``metrics.json`` in the output directory is rewritten after every epoch. A NaN/inf loss
stops the run and returns a ``failed`` :class:`TrainResult` instead of raising, so a
search evaluator can record it.

>>> import torch
>>> from nao.data.cifar import ImageSet
>>> g = torch.Generator().manual_seed(0)
>>> data = ImageSet(torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g),
...                 torch.randint(0, 10, (16,), generator=g))
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
>>> cfg = TrainConfig(epochs=1, batch_size=8, seed=0)
>>> result = train_classifier(model, data, {"val": data}, cfg, make_runtime("cpu"), quiet=True)
>>> result.status, sorted(result.metrics)
('ok', ['images_per_s', 'train_acc', 'train_loss', 'val_acc', 'val_loss'])
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from nao.config import Config
from nao.data.augment import AugmentConfig, BatchLoader
from nao.data.cifar import ImageSet
from nao.device import autocast
from nao.errors import ConfigError
from nao.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from nao.train.progress import EpochBar
from nao.train.schedule import cosine_lr

log = logging.getLogger(__name__)

METRICS_NAME = "metrics.json"


@dataclass(frozen=True)
class TrainConfig(Config):
    """Optimisation settings of one training run.

    Attributes:
        epochs: passes over the training set.
        batch_size: training mini-batch; the last partial batch of an epoch is dropped.
        eval_batch_size: batch size for evaluation passes.
        lr: peak learning rate; cosine-annealed per step down to ``lr_min``.
        lr_min: final learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 penalty on all parameters (as NAO/DARTS apply it).
        grad_clip: max global gradient norm (0 disables).
        aux_weight: weight of the auxiliary-head loss (used when the model returns one).
        label_smoothing: cross-entropy label smoothing for training.
        augment: training augmentation (crop padding, flip, cutout size).
        eval_every: evaluate the eval sets every this many epochs (0: only after the last).
        seed: seeds weight-independent randomness (order, augmentation, dropout, drop path).
    """

    epochs: int = 600
    batch_size: int = 128
    eval_batch_size: int = 500
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    aux_weight: float = 0.4
    label_smoothing: float = 0.0
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(crop_padding=4, flip=True, cutout=16))
    eval_every: int = 1
    seed: int = 0


@dataclass(frozen=True)
class Runtime:
    """Device and fast paths, decided once at the top of a program.

    Attributes:
        device: where the model and the data live.
        bf16: bf16 autocast for forward passes (CUDA only).
        channels_last: NHWC memory format for model and inputs.
        compile: wrap the model in ``torch.compile`` (CUDA only, opt-in).
    """

    device: torch.device
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False


def make_runtime(device: str = "cpu", bf16: bool = True, channels_last: bool = True, compile: bool = False) -> Runtime:
    """A :class:`Runtime` for ``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``).

    bf16 autocast and ``torch.compile`` are switched on only for CUDA, whatever the flags
    say, so library code stays device-agnostic. ``channels_last`` (NHWC) is on by default
    for both devices: it is also faster for these networks on CPU (oneDNN), see
    BENCHMARKS.md. Raises :class:`ConfigError` if CUDA is asked for but absent.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was given but this torch build sees no CUDA GPU; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: only cpu and cuda are supported")
    cuda = dev.type == "cuda"
    return Runtime(dev, bf16=cuda and bf16, channels_last=channels_last, compile=cuda and compile)


@dataclass
class TrainResult:
    """Outcome of :func:`train_classifier`.

    Attributes:
        status: ``"ok"`` or ``"failed"`` (divergence); ``error`` then says why.
        metrics: final numbers: train_loss/acc, ``<set>_loss``/``<set>_acc`` for each eval set
            (accuracies as fractions), images_per_s of the last epoch's training.
        history: one dict per finished epoch.
        epochs_done: epochs completed (including ones restored from a checkpoint).
        seconds: wall time of this call.
    """

    status: Literal["ok", "failed"]
    metrics: dict[str, float]
    history: list[dict[str, Any]]
    epochs_done: int
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Divergence(Exception):
    """Internal: the training loss stopped being finite."""


def _logits(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(out, tuple):
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


def evaluate(
    model: nn.Module, data: ImageSet, runtime: Runtime, batch_size: int = 500, forward: Callable | None = None
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy as a fraction) of ``model`` on ``data``."""
    forward = forward or model
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    with torch.no_grad(), autocast(runtime.device.type, runtime.bf16):
        for x, y in BatchLoader(data, batch_size):
            if runtime.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits, _ = _logits(forward(x))
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(data), 1)
    return float(loss_sum) / n, float(correct) / n


def _epoch_seed(seed: int, epoch: int) -> int:
    # Seeding per epoch makes a resumed run draw the same batches as an uninterrupted one.
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63 - 1)


class _Trainer:
    """State of one run; :func:`train_classifier` is the public entry point."""

    def __init__(self, model: nn.Module, train: ImageSet, evals: Mapping[str, ImageSet], cfg: TrainConfig, runtime: Runtime) -> None:
        if cfg.batch_size > len(train):
            raise ConfigError(f"batch size {cfg.batch_size} is larger than the {len(train)} training images")
        self.cfg, self.rt = cfg, runtime
        self.model = model.to(runtime.device)
        if runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward: Callable = torch.compile(self.model) if runtime.compile else self.model
        self.train_set = train.to(runtime.device)
        self.evals = {k: v.to(runtime.device) for k, v in evals.items()}
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay,
        )
        self.generator = torch.Generator(device=runtime.device)
        self.steps_per_epoch = len(train) // cfg.batch_size
        self.total_steps = max(1, self.steps_per_epoch * cfg.epochs)
        self.epoch, self.step, self.history = 0, 0, []

    # -- checkpoint ---------------------------------------------------------------------
    def state(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history,
            "train_config": self.cfg.to_dict(),
            "meta": dict(meta),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.history = int(state["epoch"]), int(state["step"]), list(state["history"])

    # -- one epoch ------------------------------------------------------------------------
    def run_epoch(self, quiet: bool) -> dict[str, float]:
        cfg, rt = self.cfg, self.rt
        self.generator.manual_seed(_epoch_seed(cfg.seed, self.epoch))
        torch.manual_seed(_epoch_seed(cfg.seed + 1, self.epoch))  # dropout / drop path (inside fork_rng)
        loader = BatchLoader(self.train_set, cfg.batch_size, self.generator, cfg.augment, drop_last=True)
        self.model.train()
        bar = EpochBar(len(loader), f"epoch {self.epoch + 1}/{cfg.epochs}", quiet)
        loss_sum = torch.zeros((), device=rt.device)
        correct = torch.zeros((), device=rt.device, dtype=torch.long)
        seen, start, last_sync = 0, time.perf_counter(), 0
        try:
            for i, (x, y) in enumerate(loader):
                loss, logits = self.train_step(x, y)
                loss_sum += loss.detach() * y.shape[0]
                correct += (logits.detach().argmax(1) == y).sum()
                seen += y.shape[0]
                # Syncing costs on GPUs: check for divergence and refresh the bar every 20 steps.
                if (i + 1) % 20 == 0 or i + 1 == len(loader):
                    total = float(loss_sum)
                    if not math.isfinite(total):
                        raise Divergence(
                            f"training loss became {total} at epoch {self.epoch + 1}, step {self.step} "
                            f"(lr {self.optimizer.param_groups[0]['lr']:.3g}); try a lower --lr"
                        )
                    elapsed = time.perf_counter() - start
                    bar.update(i + 1 - last_sync, loss=total / seen, acc=float(correct) / seen,
                               images_per_s=seen / max(elapsed, 1e-9))
                    last_sync = i + 1
        finally:
            bar.close()
        elapsed = time.perf_counter() - start
        return {"train_loss": float(loss_sum) / seen, "train_acc": float(correct) / seen,
                "images_per_s": seen / max(elapsed, 1e-9), "train_s": elapsed}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        progress = self.step / self.total_steps
        for group in self.optimizer.param_groups:
            group["lr"] = cosine_lr(cfg.lr, cfg.lr_min, progress)
        if hasattr(self.model, "set_drop_path"):
            self.model.set_drop_path(progress)
        if self.rt.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.rt.device.type, self.rt.bf16):
            logits, aux = _logits(self.forward(x))
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            if aux is not None and cfg.aux_weight > 0:
                loss = loss + cfg.aux_weight * F.cross_entropy(aux.float(), y, label_smoothing=cfg.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        return loss, logits

    def run_evals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, data in self.evals.items():
            loss, acc = evaluate(self.model, data, self.rt, self.cfg.eval_batch_size, self.forward)
            out[f"{name}_loss"], out[f"{name}_acc"] = loss, acc
        return out


def _write_metrics(out_dir: Path, payload: Mapping[str, Any]) -> None:
    tmp = out_dir / (METRICS_NAME + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, out_dir / METRICS_NAME)


def train_classifier(
    model: nn.Module,
    train: ImageSet,
    evals: Mapping[str, ImageSet],
    cfg: TrainConfig,
    runtime: Runtime,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    meta: Mapping[str, Any] | None = None,
    quiet: bool = False,
    stop_after_epoch: Callable[[dict[str, Any]], bool] | None = None,
    until_epoch: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``train``, evaluating on each of ``evals`` (name -> set).

    Args:
        model: returns logits or ``(logits, aux_logits)``; ``set_drop_path(progress)`` is
            called each step if it exists.
        train: training images (uint8) and labels; moved to ``runtime.device`` once.
        evals: evaluation sets, e.g. ``{"val": ...}`` or ``{"test": ...}``.
        cfg: optimisation settings.
        runtime: device and fast paths (:func:`make_runtime`).
        out_dir: if given, ``checkpoint.pt`` and ``metrics.json`` are written there each epoch.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        meta: stored in checkpoints and metrics (how to rebuild the model, the dataset...).
        quiet: no progress bars.
        stop_after_epoch: called with each epoch's history row (after checkpointing);
            returning True ends the run early -- it can be resumed later.
        until_epoch: train only up to this epoch and evaluate there (a fidelity rung); the
            learning-rate schedule stays planned for ``cfg.epochs``, so resuming later continues
            exactly the run that was planned (:mod:`nao.fidelity`).

    Returns a :class:`TrainResult`; divergence gives ``status="failed"`` rather than an exception.
    """
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    meta = dict(meta or {})
    trainer = _Trainer(model, train, evals, cfg, runtime)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ckpt = out / CHECKPOINT_NAME
        if resume and ckpt.exists():
            trainer.restore(load_checkpoint(ckpt, map_location=runtime.device))
            log.info("resumed from %s at epoch %d", ckpt, trainer.epoch)
    status: Literal["ok", "failed"] = "ok"
    error = None
    final: dict[str, float] = dict(trainer.history[-1]) if trainer.history else {}
    devices = [runtime.device.index or 0] if runtime.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # our seeding must not leak into the caller's RNG
        stop = cfg.epochs if until_epoch is None else min(cfg.epochs, until_epoch)
        while trainer.epoch < stop:
            try:
                row = trainer.run_epoch(quiet)
            except Divergence as e:
                status, error = "failed", str(e)
                log.error("%s", error)
                break
            trainer.epoch += 1
            last = trainer.epoch == cfg.epochs
            if trainer.epoch == stop or (cfg.eval_every > 0 and trainer.epoch % cfg.eval_every == 0):
                row.update(trainer.run_evals())
            row = {"epoch": trainer.epoch, "lr": trainer.optimizer.param_groups[0]["lr"], **row}
            trainer.history.append(row)
            final = row
            log.info("%s", " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            if out is not None:
                save_checkpoint(out / CHECKPOINT_NAME, trainer.state(meta))
                _write_metrics(out, _payload("running" if not last else "ok", trainer, cfg, meta, None))
            if not last and stop_after_epoch is not None and stop_after_epoch(row):
                break
    metrics = {k: float(v) for k, v in final.items() if k not in ("epoch", "lr", "train_s")}
    result = TrainResult(status, metrics, trainer.history, trainer.epoch, time.perf_counter() - t0, error)
    if out is not None:
        shown = "stopped" if status == "ok" and trainer.epoch < cfg.epochs else status
        _write_metrics(out, _payload(shown, trainer, cfg, meta, error))
    return result


def _payload(status: str, trainer: _Trainer, cfg: TrainConfig, meta: Mapping[str, Any], error: str | None) -> dict[str, Any]:
    return {
        "status": status,
        "error": error,
        "epochs_done": trainer.epoch,
        "final": trainer.history[-1] if trainer.history else {},
        "history": trainer.history,
        "train_config": cfg.to_dict(),
        "meta": dict(meta),
    }
