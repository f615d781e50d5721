"""Kind ``supernet-cnn``: NAO-WS on images (Luo et al. 2018, sec. 3.4).

1. **Search.** The Study drives the strategy (``nao`` by default) against a
   :class:`~nao.evaluators.supernet.SupernetEvaluator`. Each evaluator call is one round: the new
   architectures join the pool, the supernet trains on the pool, every pool member is scored on
   fixed validation images; the controller then proposes the next round from those scores. The
   budget counts architectures scored.
2. **Rerank.** The ``top_k`` architectures of the final pool are each trained briefly from scratch
   and compared on the validation split (the official code reranks the top 5 with 10 epochs each).
3. **Final training.** The winner is trained with the final settings on train + validation and
   tested once.

Presets (``supernet-cnn/NAME`` in :mod:`nao.presets`): ``digits`` (the default ``nao search``, a few
minutes on 2 CPU cores), ``cpu`` (16x16 CIFAR-10 subset), ``smoke`` (seconds; tests), ``short`` and
``paper`` (the official NAO-WS CIFAR-10 settings).

Besides the common run files: ``supernet.json`` (per-round history and the final pool ranking),
``supernet.pt`` (the evaluator's state after the last finished round, what a resume continues
from), ``rerank.json`` and ``final/`` (checkpoint and metrics of the winner's training).

Over 400 lines on purpose: a kind is one module (its config, presets, flags and class, registered
once), and about a third of it is the five presets' data, each with the reason for its numbers.

>>> from nao.presets import preset
>>> cfg = preset("supernet-cnn/smoke")
>>> cfg.budget, SupernetCnnKind(cfg).objective().metric
(6, 'val_acc')
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from nao.constraints import constrained_strategy, constraint_summary, network_feasibility
from nao.data.augment import NO_AUGMENT, AugmentConfig
from nao.errors import ConfigError, DataError
from nao.evaluators.rounds import SUPERNET_CHECKPOINT, resume_point, rounds_for_budget
from nao.evaluators.supernet import SupernetEvaluator, SupernetTrainConfig
from nao.nn.network import NetworkConfig
from nao.nn.supernet import SupernetConfig, check_image_size
from nao.presets import register_preset
from nao.results import Objective, Result
from nao.rundir import RunDir
from nao.runs.flags import DEVICE_FLAGS, flag
from nao.runs.images import CIFAR_AUGMENT, IMAGE_FLAGS, ImageSearchFields, finish_images, load_splits
from nao.runs.skeleton import RunContext, RunKind, Search, register_kind
from nao.spaces import get_space
from nao.spaces.cells import ConvCellSpace
from nao.strategies import check_strategy_options
from nao.study import Study
from nao.threads import torch_threads
from nao.train.classifier import TrainConfig, make_runtime

log = logging.getLogger(__name__)

_CIFAR_AUGMENT = CIFAR_AUGMENT


@dataclass
class WSConfig(ImageSearchFields):
    """Everything a NAO-WS run needs; :func:`preset_config` fills it from a preset.

    Attributes:
        preset: the preset it came from (for the record).
        dataset: ``digits`` (embedded), ``cifar10``/``cifar100`` (binary files under ``data_dir``) or ``folder``.
        data_dir: where CIFAR-10 lives (default: :func:`nao.data.paths.data_root`).
        train_images: use only this many training images (0: all); smoke runs.
        val_images: CIFAR-10 validation images held out of the 50k training set (official
            search: ratio 0.9, i.e. 5,000). Digits use ``digits_fractions`` instead.
        test_images: use only this many test images (0: all).
        image_size: shrink the images to this side by area averaging (0: keep them); the ``cpu``
            preset searches 16x16 CIFAR-10.
        digits_fractions: digits (train, validation, test) fractions.
        space: conv cell space searched.
        strategy: search strategy proposing each round (``nao``; ``random`` etc. for baselines).
        strategy_options: keyword arguments of the strategy, as in every kind (the presets' are the
            ``nao`` strategy's; another ``--strategy`` starts without them). For ``nao``,
            ``seed_archs`` and ``per_round`` default to the supernet's ``seed_pool`` and
            ``new_per_round`` so that each controller round fills one supernet round. (Runs of
            older versions called it ``nao_options``; their ``config.json`` still resumes.)
        budget: architectures scored by the supernet (the Study's budget).
        seed: seeds the split, the supernet, the strategy and the retraining.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads: torch intra-op CPU threads for the run (0: torch's current setting, which the
            run's ``config.json`` then records so a resume uses the same count). Tiny
            networks gain little from a second thread, and OpenMP threads slow to a crawl when
            the cores are shared, so the CPU presets use 1.
        supernet: supernet shape.
        supernet_train: supernet training and scoring.
        top_k: architectures reranked by brief training from scratch.
        rerank_workers: processes the reranks train in, side by side (1: one after another, in this
            process). The CPU presets use both cores of a 2-core machine here.
        rerank_network, rerank_train: the brief training (official: 10 epochs at the search width).
        final_network, final_train: the winner's training (reported on the test split).
        constraint: e.g. ``params_m<=0.5`` or ``flops_m<=300``: only architectures whose *final*
            network (``final_network`` at the run's image size: what the search hands over)
            satisfies it join the pool, computed exactly from the architecture before any supernet
            training (:func:`nao.constraints.network_feasibility`); others are never scored nor
            counted against the budget.
    """

    preset: str = "digits"
    constraint: str | None = None
    space: str = "nao-ws"
    strategy: str = "nao"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    budget: int = 1500
    max_cost: float | None = None  # a bound on compute, in the evaluator's cost_unit (None: count only)
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    supernet_train: SupernetTrainConfig = field(default_factory=SupernetTrainConfig)

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting."""
        if self.image_size < 0:
            raise ConfigError(f"--image-size must be positive (or 0 to keep the images), got {self.image_size}")
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, got {self.top_k}")
        self.supernet_train.check()


# -- presets ---------------------------------------------------------------------------------------
@register_preset("supernet-cnn", "digits")
def _digits_preset() -> WSConfig:
    # Sized so that `nao search` (no arguments) finishes in under 5 minutes on 2 CPU cores
    # (timed in BENCHMARKS.md): F=8, one cell per stage, 8x8 -> 4x4 -> 2x2. A pool of 40 rather
    # than hundreds: each architecture must get enough supernet steps on 1,078 images.
    small = TrainConfig(epochs=10, batch_size=64, eval_batch_size=512, lr=0.05, lr_min=0.0, momentum=0.9,
                        nesterov=True, weight_decay=3e-4, grad_clip=5.0, aux_weight=0.0, augment=NO_AUGMENT,
                        eval_every=0)
    net = NetworkConfig(channels=8, layers=1, auxiliary=False, dropout=0.0, drop_path=0.0)
    return WSConfig(
        preset="digits",
        dataset="digits",
        budget=100,
        threads=1,
        supernet=SupernetConfig(channels=8, layers=1),
        supernet_train=SupernetTrainConfig(
            # lr 0.1, not 0.05: a round is only ~170 steps shared by 40 cells; at 0.05 the supernet was
            # so undertrained at the first scoring (train acc 0.36) that it favoured cells of identities
            # and pools, and NAO's proposals drifted there (6.0 separable convs of 20 ops against 8.0 for
            # uniform sampling); at 0.1 they stay near 7.5 (BENCHMARKS.md, NAO-WS on digits).
            seed_pool=40, new_per_round=20, pool_size=40, epochs_per_round=10, batch_size=64,
            eval_batch_size=512, lr=0.1, lr_min=0.001, bn="batch", augment=None,
        ),
        # The controller improves the top 10; it decodes 60 candidates and proposes the 20 best-predicted.
        strategy_options={"top_k": 10, "candidates": 60},
        top_k=3,
        rerank_workers=2,
        rerank_network=net,
        rerank_train=small,
        final_network=replace(net, channels=12),
        final_train=replace(small, epochs=15),
    )


@register_preset("supernet-cnn", "cpu")
def _cpu_preset() -> WSConfig:
    # CIFAR-10 sized for a 2-core CPU (~25 min): a 10k-image training subset and 2k held-out
    # validation images, all shrunk to 16x16, 10k test images. Digits are too easy to tell cells apart
    # (every cell trains to 96-99%); CIFAR-10 at this size leaves room between good and bad cells.
    # Same search shape as digits (pool of 40, 3 rounds, supernet lr 0.1), 4 supernet epochs per round.
    augment = AugmentConfig(crop_padding=2, flip=True, cutout=0)  # 4 px of padding at 32x32, halved
    brief = TrainConfig(epochs=5, batch_size=64, eval_batch_size=500, lr=0.05, lr_min=0.0, momentum=0.9,
                        nesterov=True, weight_decay=3e-4, grad_clip=5.0, aux_weight=0.0, augment=augment,
                        eval_every=0)
    net = NetworkConfig(channels=8, layers=1, auxiliary=False, dropout=0.0, drop_path=0.0)
    return WSConfig(
        preset="cpu",
        dataset="cifar10",
        train_images=10_000,
        val_images=2_000,
        image_size=16,
        budget=100,
        threads=1,
        supernet=SupernetConfig(channels=8, layers=1),
        supernet_train=SupernetTrainConfig(
            # Ranked by minus validation loss, not accuracy: the top cells' accuracies on 2,000 images
            # differ by less than one score's sampling noise, and on this preset -loss ranked closer to
            # stand-alone training (Kendall tau 0.39 vs 0.35) and its winners beat the random mean with
            # both search seeds tried (acc: level with it; BENCHMARKS.md, NAO-WS on 16x16 CIFAR-10).
            seed_pool=40, new_per_round=20, pool_size=40, epochs_per_round=4, batch_size=64,
            eval_batch_size=500, lr=0.1, lr_min=0.001, bn="batch", score="loss", augment=augment,
        ),
        strategy_options={"top_k": 10, "candidates": 60},
        top_k=3,
        rerank_workers=2,
        rerank_network=net,
        rerank_train=brief,
        final_network=replace(net, channels=12),
        final_train=replace(brief, epochs=10),
    )


@register_preset("supernet-cnn", "smoke")
def _smoke_preset() -> WSConfig:
    # Seconds on a CPU: a correctness check of the whole pipeline, not a search.
    tiny = TrainConfig(epochs=1, batch_size=32, eval_batch_size=256, lr=0.05, lr_min=0.0, momentum=0.9,
                       nesterov=True, weight_decay=3e-4, grad_clip=5.0, aux_weight=0.0, augment=NO_AUGMENT,
                       eval_every=0)
    net = NetworkConfig(channels=8, layers=1, auxiliary=False)
    return WSConfig(
        preset="smoke",
        threads=1,
        # A few controller epochs, no autoencoder pretraining: the controller only has to run, not to learn.
        strategy_options={"top_k": 2, "candidates": 4, "controller": {"epochs": 25, "pretrain_archs": 0}},
        budget=6,
        train_images=256,
        val_images=128,
        test_images=128,
        supernet=SupernetConfig(channels=8, layers=1),
        supernet_train=SupernetTrainConfig(
            seed_pool=4, new_per_round=2, pool_size=4, epochs_per_round=1, batch_size=32,
            eval_batch_size=256, lr=0.05, bn="batch", augment=None,
        ),
        top_k=2,
        rerank_network=net,
        rerank_train=tiny,
        final_network=net,
        final_train=tiny,
    )


@register_preset("supernet-cnn", "paper")
def _paper_preset() -> WSConfig:
    # The official NAO-WS CIFAR-10 search, renqianluo/NAO_pytorch NAO_V1/train_search.py defaults:
    # supernet F=20 (--child_channels), N=3 (--child_layers), B=5 nodes; batch 128; SGD lr 0.025
    # cosine to 0.001 over 200 epochs (--child_epochs), l2 3e-4, grad bound 5; pool of 600 random
    # seed architectures (--controller_seed_arch); every 50 epochs (--child_eval_epochs) all are
    # scored, the controller is trained and decodes 300 new ones (--controller_new_arch) from the
    # top 100, which replace the bottom 300; at epoch 200 the top 5 are retrained 10 epochs each
    # (train_and_evaluate_top_on_cifar10, same F/N, lr 0.025 -> 0.001) and the best one wins.
    # 4 rounds: 600 + 3 x 300 = 1,500 architectures scored. The winner's final training is the
    # paper's: F=36, N=6, 600 epochs, cutout, drop path, aux head (nao.train.presets "paper").
    from nao.controller.config import official
    from nao.train.presets import get_preset

    final = get_preset("paper")
    return WSConfig(
        preset="paper",
        dataset="cifar10",
        val_images=5000,
        budget=1500,
        supernet=SupernetConfig(channels=20, layers=3),
        supernet_train=SupernetTrainConfig(
            seed_pool=600, new_per_round=300, pool_size=600, epochs_per_round=50, total_epochs=200,
            batch_size=128, eval_batch_size=500, score_images=1000, lr=0.025, lr_min=0.001,
            weight_decay=3e-4, grad_clip=5.0, bn="batch", augment=_CIFAR_AUGMENT,
        ),
        # The official controller (sigmoid predictor, min-max targets, greedy decoding) decodes the
        # new architectures from the top 100 of the pool, and one controller is kept across rounds.
        # (It is trained 1,000 epochs per round, --controller_epochs; here the strategy's own fit
        # length applies.)
        strategy_options={"top_k": 100, "candidates": 300, "warm_start": True, "controller": official()},
        top_k=5,
        rerank_network=NetworkConfig(channels=20, layers=3, auxiliary=False, dropout=0.0, drop_path=0.1),
        rerank_train=TrainConfig(epochs=10, batch_size=128, eval_batch_size=500, lr=0.025, lr_min=0.001,
                                 weight_decay=3e-4, grad_clip=5.0, aux_weight=0.0, augment=_CIFAR_AUGMENT,
                                 eval_every=0),
        final_network=final.network,
        final_train=final.train,
    )


@register_preset("supernet-cnn", "short")
def _short_preset() -> WSConfig:
    # A CIFAR-10 search sized for a few GPU hours (not tuned; no GPU was available to time it):
    # the paper's shapes with a quarter of the pool and fewer, shorter rounds, and a 100-epoch
    # final training at F=36, N=6.
    paper = _paper_preset()
    return replace(
        paper,
        preset="short",
        budget=300,
        supernet_train=replace(paper.supernet_train, seed_pool=150, new_per_round=75, pool_size=150,
                               epochs_per_round=20, total_epochs=0),
        top_k=3,
        rerank_train=replace(paper.rerank_train, epochs=5),
        final_train=replace(paper.final_train, epochs=100),
    )



#: The preset used when none is named, per dataset.
DEFAULT_PRESET = {"digits": "digits", "cifar10": "short", "cifar100": "short"}


@register_kind
class SupernetCnnKind(RunKind):
    """NAO-WS on images: supernet rounds, rerank, final training (module docstring)."""

    name = "supernet-cnn"
    task, evaluator, default_for_task = "cnn", "supernet", True
    help = "image cells: NAO-WS supernet (default) or training every candidate"
    config_class = WSConfig
    flags = (*DEVICE_FLAGS, *IMAGE_FLAGS,
             flag("--supernet-score", "supernet_train.score", choices=("acc", "loss"),
                  help="--evaluator supernet: rank the pool by validation accuracy or loss (default: the preset's)"))
    scores_from = "supernet"
    no_executor = "a supernet search evaluates in this process only: its shared weights live there"
    # The supernet's learning-rate schedule is laid out for the budget: it cannot change on resume.
    resumable_changes = ("device", "data_dir")

    @classmethod
    def default_preset(cls, given: dict[str, Any]) -> str:
        return DEFAULT_PRESET.get(given.get("dataset") or "digits", "short")

    @classmethod
    def upgrade(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """A ``config.json`` of an older version: ``nao_options`` (the ``nao`` strategy's) became ``strategy_options``."""
        if "nao_options" not in saved:
            return saved
        saved = dict(saved)
        options = saved.pop("nao_options")
        saved.setdefault("strategy_options", options if saved.get("strategy", "nao") == "nao" else {})
        return saved

    def objective(self) -> Objective:
        """Pool ranked by validation accuracy (official) or by validation loss (lower is better)."""
        return Objective("val_acc", "max") if self.config.supernet_train.score == "acc" else Objective("val_loss", "min")

    def threads(self) -> AbstractContextManager:
        return torch_threads(self.config.threads)

    def prepare(self) -> None:
        cfg = self.config
        cfg.check()
        if cfg.threads == 0:
            # Record the thread count in use: CPU sums depend on it, and a resume reuses it to end identically.
            self.config = cfg = replace(cfg, threads=torch.get_num_threads())
        self.space = get_space(cfg.space)
        check_strategy_options(cfg.strategy, cfg.strategy_options, self.space)
        if not isinstance(self.space, ConvCellSpace):
            raise ConfigError(f"a supernet search needs a conv cell space (nao-ws, nao, darts), not {cfg.space!r}; "
                              f"to search {cfg.space} with a benchmark table use nao search tabular --benchmark FILE")
        self.runtime = make_runtime(cfg.device)
        self.data = load_splits(cfg)  # every user error is raised before the run directory exists
        check_image_size(self.data.image_size)
        final = replace(cfg.final_network, num_classes=self.data.num_classes)
        self.feasibility = network_feasibility(cfg.constraint, self.space, final, self.data.image_size) \
            if cfg.constraint else None

    def build(self, ctx: RunContext) -> Search:
        cfg, data = self.config, self.data
        sn_train = cfg.supernet_train if data.augment is not None else replace(cfg.supernet_train, augment=None)
        rounds = rounds_for_budget(cfg.budget, sn_train.seed_pool, sn_train.new_per_round)
        self.evaluator = SupernetEvaluator(self.space, data, cfg.supernet, sn_train, self.runtime, seed=cfg.seed,
                                           on_round=_round_line(ctx),
                                           checkpoint_path=ctx.rundir.path / SUPERNET_CHECKPOINT,
                                           schedule_epochs=rounds * sn_train.epochs_per_round)
        options = dict(cfg.strategy_options)
        if cfg.strategy == "nao":
            options = {"seed_archs": sn_train.seed_pool, "per_round": sn_train.new_per_round, **options}
        strategy = constrained_strategy(cfg.strategy, self.space, self.feasibility, seed=cfg.seed,
                                        objective=self.objective(), **options)
        n_tr, n_va, n_te = data.sizes()
        ctx.say(f"NAO-WS on {data.name}: {n_tr} train / {n_va} val / {n_te} test images, space {self.space.name}, "
                f"strategy {cfg.strategy}, budget {cfg.budget} ({rounds} rounds x {sn_train.epochs_per_round} "
                f"supernet epochs), device {self.runtime.device}"
                + (f", constraint {cfg.constraint} on the final network" if cfg.constraint else ""))
        # observe first: a round's checkpoint is written once its last result is journaled.
        return Search(self.space, self.evaluator, strategy, self.objective(), cfg.budget,
                      callbacks=[self.evaluator.observe])

    def resume_point(self, rundir: RunDir, search: Search) -> tuple[list[Result], list[str]]:
        previous, state, notes = resume_point(rundir.path, rundir.journal_path, self.space, self.runtime.device)
        if state is not None:
            self.evaluator.resume_from(state)
        notes.append(f"the supernet continues after round {state['rounds'] if state else 0}")
        return previous, notes

    def after_search(self, ctx: RunContext, search: Search, study: Study) -> None:
        ctx.rundir.write_json("supernet.json", {
            "history": self.evaluator.history,
            "pool_rounds": self.evaluator.round_rows,  # per round: pool best/median, supernet train acc
            "ranking": [{"arch": self.space.format(a), "val_acc": s} for a, s in self.evaluator.ranking()],
        })

    def finish(self, ctx: RunContext, search: Search, study: Study) -> dict[str, Any]:
        cfg, space = self.config, self.space
        ranking = self.evaluator.ranking()
        if not ranking:
            raise DataError(f"every architecture failed in the supernet; see {ctx.rundir.journal_path}")
        ctx.say(f"reranking the top {min(cfg.top_k, len(ranking))} by {cfg.rerank_train.epochs}-epoch training "
                f"from scratch")
        return {**finish_images(cfg, space, self.data, self.runtime, ctx, ranking[: cfg.top_k]),
                **constraint_summary(ctx, search.strategy, cfg.constraint, "never scored")}

    def is_finished(self, result: dict[str, Any]) -> bool:
        return result.get("final", {}).get("status") == "ok"


def _round_line(ctx: RunContext) -> Callable[[dict[str, float]], None]:
    # ctx.say is looked up per call: the skeleton points it at search.log too once the log is open.
    def on_round(row: dict[str, float]) -> None:
        ctx.say(f"round {row['round']}: {row['new']} new, pool {row['pool']}, supernet epoch {row['epochs']} "
            f"(train_acc {row['train_acc']:.3f}, {row['images_per_s']:.0f} img/s), "
            f"pool val_acc best {row['best']:.4f} / median {row['median']:.4f}, {row['seconds']:.0f}s")

    return on_round


