"""Supernet evaluator (NAO-WS): score architectures with weights shared in one :class:`~nao.nn.supernet.Supernet`.

Each call to :meth:`SupernetEvaluator.evaluate` is one *round*, as in the official NAO-WS
search (renqianluo/NAO_pytorch ``NAO_V1/train_search.py``): the new architectures join the
pool (replacing the worst-scored old ones, so the pool keeps ``pool_size`` members), the
supernet is trained for ``epochs_per_round`` epochs drawing one pool architecture uniformly
per mini-batch, and then every pool architecture is scored. The new ones are returned as
results; the survivors' fresh scores are kept in :meth:`ranking` (a :class:`~nao.study.Study`
records each architecture once). ``batch_size`` is the size of the next round (``seed_pool``
first, ``new_per_round`` after), so the Study asks the strategy for exactly one round.

Scoring differs from the official code on purpose: every architecture is scored on the
same fixed validation images (the first ``score_images`` of the validation split), not on
one random batch each, so scores are comparable and repeatable. BatchNorm (``bn``):

* ``"batch"`` (default): BN normalises with the statistics of each fixed validation chunk,
  as the official code does (``bn_train=True``); cheap, needs chunks of a decent size.
* ``"recalibrate"``: running statistics are reset and re-estimated for the architecture on
  ``calib_batches`` fixed training batches, then the validation images are scored in eval
  mode; costs ``calib_batches`` extra forward passes per architecture.

``benchmarks/supernet_ranking.py`` measures which one ranks better (BENCHMARKS.md).

A CUDA out-of-memory error while training or scoring one architecture marks that
architecture failed and the search goes on.

Resuming (``nao search --resume DIR``): the evaluator checkpoints after each round and resumes
exactly (:mod:`nao.evaluators.rounds`; CPU; supernet dropout, which draws from torch's global
generator, is 0 in every preset).

>>> import numpy as np
>>> from nao.spaces import get_space
>>> from nao.data.digits import load_digits_splits
>>> from nao.nn.supernet import SupernetConfig
>>> space = get_space("nao-ws")
>>> ev = SupernetEvaluator(space, load_digits_splits(subset=300),
...     SupernetConfig(channels=8, layers=1, num_classes=10),
...     SupernetTrainConfig(seed_pool=4, new_per_round=2, pool_size=4, epochs_per_round=1, batch_size=32))
>>> rng = np.random.default_rng(0)
>>> results = ev.evaluate([space.sample(rng) for _ in range(ev.batch_size)])
>>> [r.status for r in results], 0.0 <= results[0].metrics["val_acc"] <= 1.0
(['ok', 'ok', 'ok', 'ok'], True)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nao.data.augment import NO_AUGMENT, BatchLoader
from nao.data.digits import ImageSplits
from nao.device import OutOfMemoryError, autocast, short_error
from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.evaluators.rounds import PoolRounds
from nao.evaluators.supernet_config import BN_MODES, SCORES, SupernetTrainConfig
from nao.nn.supernet import ArchPlan, Supernet, SupernetConfig, recalibrate_batchnorm, set_batchnorm_training
from nao.registry import EVALUATORS
from nao.spaces.base import Architecture, SearchSpace
from nao.train.classifier import Runtime, make_runtime
from nao.train.schedule import cosine_lr

log = logging.getLogger(__name__)



@dataclass
class _Member:
    """A pool architecture and its latest score (``-inf`` until scored)."""

    arch: Architecture
    plan: ArchPlan
    key: Hashable
    score: float = float("-inf")
    loss: float = float("nan")
    rank: float = float("-inf")  # the value the pool is ranked by (accuracy or minus loss)


@EVALUATORS.register("supernet")
class SupernetEvaluator(PoolRounds[_Member], Evaluator):
    """Scores rounds of architectures with a weight-sharing supernet (module docstring).

    Args:
        space: a conv cell space (``nao-ws``, ``nao``, ``darts``).
        data: the dataset; only ``train`` and ``val`` are read.
        net: supernet shape (``num_classes`` is taken from ``data``).
        train: training and scoring settings.
        runtime: device and fast paths (default: CPU).
        seed: seeds weights, batch order, augmentation and architecture draws.
        on_epoch: called after each supernet epoch with a dict of statistics (progress bars).
        on_round: called after each round with a summary (round, new, pool, epochs, best,
            median, train_acc, images_per_s, seconds).
    """

    def __init__(
        self,
        space: SearchSpace,
        data: ImageSplits,
        net: SupernetConfig,
        train: SupernetTrainConfig,
        runtime: Runtime | None = None,
        seed: int = 0,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        on_round: Callable[[dict[str, Any]], None] | None = None,
        checkpoint_path: Path | None = None,
        schedule_epochs: int | None = None,
    ) -> None:
        train.check()
        self.space, self.data, self.cfg = space, data, train
        self.runtime = runtime or make_runtime("cpu")
        self.on_epoch, self.on_round = on_epoch, on_round
        device = self.runtime.device
        net = SupernetConfig(**{**asdict(net), "num_classes": data.num_classes, "in_channels": 3})
        if device.type == "cpu" and net.channels % 8:
            log.warning("supernet channels=%d: on CPU use a multiple of 8 (see SupernetConfig.channels)", net.channels)
        init = torch.Generator().manual_seed(seed)
        self.model = Supernet(space, net, image_size=data.image_size, generator=init).to(device)
        if self.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._params = list(self.model.parameters())
        self.optimizer = torch.optim.SGD(
            self._params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay
        )
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.train_set = data.train.to(device)
        if len(self.train_set) < train.batch_size:
            raise ConfigError(
                f"the {len(self.train_set)} training images are fewer than one supernet batch ({train.batch_size})"
            )
        val = data.val if train.score_images <= 0 else data.val.take(torch.arange(min(train.score_images, len(data.val))))
        self.val_chunks = [
            (self._prepare(x), y) for x, y in BatchLoader(val.to(device), train.eval_batch_size)
        ]
        self.calib_chunks = self._calibration_chunks() if train.bn == "recalibrate" else []
        self.pool: list[_Member] = []
        self._init_rounds(checkpoint_path)
        self.epochs_done = 0
        self.steps_done = 0
        # Length of the cosine schedule: the config's, else what the run's budget allows (the kind knows it).
        self.schedule_epochs = train.total_epochs if train.total_epochs > 0 else (schedule_epochs or 0)
        self.history: list[dict[str, float]] = []  # one row per supernet epoch
        self.round_rows: list[dict[str, Any]] = []  # one summary per round (pool best/median): reports

    # -- the round (nao.evaluators.rounds.PoolRounds) ---------------------------------------------
    def _train_round(self, failed: dict[Hashable, str]) -> None:
        if self.schedule_epochs <= 0:
            self.schedule_epochs = self.cfg.epochs_per_round  # unknown length: anneal within each round
        for _ in range(self.cfg.epochs_per_round):
            self._train_epoch(failed)

    def _metrics(self, m: _Member) -> dict[str, float]:
        return {"val_acc": m.score, "val_loss": m.loss, "val_score": m.rank}

    def _result_info(self) -> dict[str, Any]:
        return {"round": self.rounds, "supernet_epochs": self.epochs_done, "bn": self.cfg.bn}

    def _round_summary(self, n_new: int, n_failed: int, trained: None, seconds: float) -> dict[str, Any]:
        scores = [m.score for m in self.pool]
        last = self.history[-1] if self.history else {}
        summary = {
            "round": self.rounds, "new": n_new, "failed": n_failed, "pool": len(self.pool),
            "epochs": self.epochs_done, "best": max(scores, default=float("nan")),
            "median": float(np.median(scores)) if scores else float("nan"),
            "train_acc": last.get("train_acc", float("nan")), "images_per_s": last.get("images_per_s", 0.0),
            "seconds": seconds,
        }
        log.debug("supernet round: %s", summary)
        self.round_rows.append(summary)
        return summary

    def _ranking_value(self, m: _Member) -> float | None:
        """Validation accuracy, whatever ranks the pool (``score`` setting)."""
        return m.score if math.isfinite(m.rank) else None

    # -- checkpoints (resume) --------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            "pool": self._pool_state(),
            "epochs_done": self.epochs_done,
            "steps_done": self.steps_done,
            "schedule_epochs": self.schedule_epochs,
            "history": [dict(row) for row in self.history],
            "round_rows": [dict(row) for row in self.round_rows],
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"].cpu())  # a generator's state is a CPU tensor, even for CUDA
        self._restore_pool(state["pool"])
        self.epochs_done, self.steps_done = int(state["epochs_done"]), int(state["steps_done"])
        self.schedule_epochs = int(state["schedule_epochs"])
        self.history = [dict(row) for row in state["history"]]
        self.round_rows = [dict(row) for row in state.get("round_rows", [])]

    def _member_row(self, m: _Member) -> dict[str, Any]:
        return {"score": m.score, "loss": m.loss, "rank": m.rank}

    def _load_member_row(self, m: _Member, row: dict[str, Any]) -> None:
        m.score, m.loss, m.rank = row["score"], row["loss"], row["rank"]

    # -- training --------------------------------------------------------------------------------
    def _member(self, arch: Architecture) -> _Member:
        return _Member(arch, self.model.plan(arch), self.space.key(arch))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.runtime.channels_last else x

    def _lr(self) -> float:
        steps_per_epoch = len(self.train_set) // self.cfg.batch_size
        progress = min(1.0, self.steps_done / max(1, steps_per_epoch * self.schedule_epochs))
        return cosine_lr(self.cfg.lr, self.cfg.lr_min, progress)

    def _train_epoch(self, failed: dict[Hashable, str]) -> None:
        cfg = self.cfg
        self.model.train()
        loader = BatchLoader(self.train_set, cfg.batch_size, self.generator, cfg.augment or NO_AUGMENT, drop_last=True)
        seen, start = 0, time.perf_counter()
        loss_sum = torch.zeros((), device=self.runtime.device)
        correct_t = torch.zeros((), device=self.runtime.device, dtype=torch.long)
        for x, y in loader:
            alive = [m for m in self.pool if m.key not in failed] if failed else self.pool
            if not alive:
                break
            member = alive[int(self.rng.integers(len(alive)))]
            try:
                loss, logits = self.train_step(self._prepare(x), y, member.plan)
            except OutOfMemoryError as e:
                self._recover()
                failed[member.key] = f"out of memory while training in the supernet: {short_error(e)}"
                log.warning("architecture %s failed: out of memory in supernet training", self.space.format(member.arch))
                continue
            loss_sum += loss.detach() * y.shape[0]
            correct_t += (logits.detach().argmax(1) == y).sum()
            seen += y.shape[0]
        self.epochs_done += 1
        elapsed = time.perf_counter() - start
        row = {
            "epoch": float(self.epochs_done),
            "round": float(self.rounds),
            "lr": self._lr(),
            "train_loss": float(loss_sum) / max(seen, 1),
            "train_acc": float(correct_t) / max(seen, 1),
            "images_per_s": seen / max(elapsed, 1e-9),
        }
        self.history.append(row)
        log.debug("supernet epoch %d: %s", self.epochs_done, row)
        if self.on_epoch is not None:
            self.on_epoch(row)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, plan: ArchPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of the supernet on ``plan``; returns (loss, logits)."""
        lr = self._lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.runtime.device.type, self.runtime.bf16):
            logits = self.model(x, plan)
            loss = F.cross_entropy(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            # Only the sampled path has gradients; listing them avoids walking the whole module tree.
            nn.utils.clip_grad_norm_([p for p in self._params if p.grad is not None], self.cfg.grad_clip)
        self.optimizer.step()
        self.steps_done += 1
        return loss, logits

    def _recover(self) -> None:
        """Drop gradients and cached blocks after an out-of-memory error."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.runtime.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- scoring ---------------------------------------------------------------------------------
    def _score_member(self, m: _Member, failed: dict[Hashable, str]) -> float:
        """Score ``m`` in place; returns the seconds it took."""
        key = m.key
        if key in failed:
            return 0.0
        t0 = time.perf_counter()
        try:
            m.score, m.loss = self.score_plan(m.plan)
            m.rank = m.score if self.cfg.score == "acc" else -m.loss
        except OutOfMemoryError as e:
            self._recover()
            failed[key] = f"out of memory while scoring in the supernet: {short_error(e)}"
            log.warning("architecture %s failed: out of memory in supernet scoring", self.space.format(m.arch))
        return time.perf_counter() - t0

    @torch.no_grad()
    def score_plan(self, plan: ArchPlan, bn: str | None = None) -> tuple[float, float]:
        """(accuracy, mean loss) of ``plan`` on the fixed validation images, BN per ``bn``.

        Leaves the model in training mode. Mode switches touch only the BN and dropout
        flags: ``Module.train()`` over the whole supernet would cost more than scoring.
        """
        bn = bn or self.cfg.bn
        self.model.dropout.training = False
        if bn == "recalibrate":
            if not self.calib_chunks:
                self.calib_chunks = self._calibration_chunks()
            with autocast(self.runtime.device.type, self.runtime.bf16):
                recalibrate_batchnorm(self.model, plan, self.calib_chunks)  # path BNs -> eval mode
        elif bn == "batch":
            set_batchnorm_training(self.model.batchnorms(), True)  # statistics of each fixed chunk
        else:
            raise ConfigError(f"bn must be one of {', '.join(BN_MODES)}, got {bn!r}")
        loss_sum = torch.zeros((), device=self.runtime.device)
        correct = torch.zeros((), device=self.runtime.device, dtype=torch.long)
        n = 0
        try:
            with autocast(self.runtime.device.type, self.runtime.bf16):
                for x, y in self.val_chunks:
                    logits = self.model(x, plan).float()
                    loss_sum += F.cross_entropy(logits, y, reduction="sum")
                    correct += (logits.argmax(1) == y).sum()
                    n += y.shape[0]
        finally:
            set_batchnorm_training(self.model.batchnorms(), True)
            self.model.dropout.training = True
        return float(correct) / max(n, 1), float(loss_sum) / max(n, 1)

    def _calibration_chunks(self) -> list[torch.Tensor]:
        """The first ``calib_batches`` training batches, normalised, never augmented: fixed for every architecture."""
        size = min(len(self.train_set), self.cfg.calib_batches * self.cfg.batch_size)
        calib = self.train_set.take(torch.arange(size))
        return [self._prepare(x) for x, _ in BatchLoader(calib, self.cfg.batch_size)]

    def score(self, archs: Sequence[Architecture], bn: str | None = None) -> list[tuple[float, float]]:
        """(accuracy, loss) of each architecture with the current weights (no training)."""
        return [self.score_plan(self.model.plan(a), bn) for a in archs]

    def train_on(self, archs: Sequence[Architecture], epochs: int) -> None:
        """Train the supernet ``epochs`` epochs on ``archs`` (outside the round logic; benchmarks)."""
        self.pool = [self._member(a) for a in archs]
        if self.schedule_epochs <= 0:
            self.schedule_epochs = epochs
        failed: dict[Hashable, str] = {}
        for _ in range(epochs):
            self._train_epoch(failed)


__all__ = ["BN_MODES", "SCORES", "SupernetEvaluator", "SupernetTrainConfig"]
