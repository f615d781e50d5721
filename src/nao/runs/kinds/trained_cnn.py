"""Kind ``trained-cnn``: NAO as in the paper, every candidate trained from scratch (``trained-rnn``, its
language-model twin, shares :class:`~nao.runs.trained.TrainedKind`).

Each candidate is trained briefly on a training split and scored on a validation split held out of
the training data (images: ``val_acc``; language models: ``val_ppl``, lower is better), through any
executor (sequential, a local process pool, Ray: one candidate per worker or GPU). Every candidate
checkpoints each epoch in ``DIR/candidates/<id>/``; after a crash ``nao search --resume DIR`` keeps
the journal's finished candidates and continues unfinished ones from their last epoch. Image
searches end like NAO-WS: the top ``top_k`` are retrained briefly and the winner is trained with
the final settings and tested once; language-model searches train the winner with ``final`` and
test it.

Presets (``trained-cnn/NAME``): ``smoke`` (seconds, tests), ``cpu`` (16x16 CIFAR-10 on 2 cores),
``paper`` (the official NAO search settings, for a GPU cluster).

Zero-cost proxies (``--zero-cost all``, off by default): each candidate's untrained child network is scored
on a seeded minibatch of the run's training split before it trains (:mod:`nao.runs.trained` says how the
strategy uses them and how their seconds join the cost, in ``image_epochs``).

>>> from nao.presets import preset
>>> cfg = preset("trained-cnn/paper")
>>> cfg.network.channels, cfg.network.layers, cfg.train.epochs, cfg.budget
(32, 3, 25, 1500)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nao.constraints import constraint_summary, network_feasibility
from nao.data.augment import NO_AUGMENT, AugmentConfig
from nao.device import resolve_device
from nao.errors import ConfigError
from nao.evaluators.training import TrainingEvaluator
from nao.fidelity.runs import check_fidelity
from nao.nn.network import NetworkConfig
from nao.nn.supernet import check_image_size
from nao.presets import register_preset
from nao.proxies.measures import PROXIES, check_names
from nao.results import Objective
from nao.runs.executor import ExecutorConfig
from nao.runs.flags import DEVICE_FLAGS, EXECUTOR_FLAGS, LADDER_FLAGS
from nao.runs.images import IMAGE_FLAGS, ImageSearchFields, finish_images, load_splits
from nao.runs.skeleton import RunContext, Search, register_kind
from nao.runs.trained import CANDIDATES_DIR, ZERO_COST_BATCH, ProxyCharging, TrainedKind, zero_cost_flags
from nao.spaces import get_space
from nao.spaces.cells import ConvCellSpace
from nao.study import Study
from nao.train.classifier import TrainConfig, make_runtime


@dataclass
class TrainedCnnConfig(ImageSearchFields):
    """An image-cell search that trains every candidate.

    Attributes mirror :class:`~nao.runs.kinds.supernet_cnn.WSConfig` for the data (``dataset`` digits,
    cifar10, cifar100 or folder; ``train_images``/``val_images``/``test_images``/``image_size``) and the end of
    the search (``top_k``, ``rerank_*``, ``final_*``); ``network`` and ``train`` are each candidate's
    child network and training, ``strategy_options`` the strategy's round sizes, ``executor`` where
    candidates train. ``constraint`` (e.g. ``params_m<=0.05``, or ``flops_m``) admits only candidates whose
    child network satisfies it, computed exactly from the architecture before training
    (:func:`nao.constraints.network_feasibility`); others are never trained nor counted.
    ``zero_cost`` names the zero-cost proxies each candidate is scored with before it trains (empty: none),
    on a seeded minibatch of ``zero_cost_batch`` training images (:mod:`nao.runs.trained`).
    """

    preset: str = "smoke"
    constraint: str | None = None
    space: str = "nao-ws"
    strategy: str = "nao"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    budget: int = 6
    max_cost: float | None = None  # a bound on compute, in the evaluator's cost_unit (None: count only)
    fidelity: str = "none"  # none, asha, sh, hyperband: rungs of train.epochs / eta**k (nao.fidelity)
    eta: float = 3.0  # the fidelity scheduler's reduction factor (the top 1/eta of a rung is promoted)
    min_fidelity: float | None = None  # the lowest rung (None: max / eta**2, three rungs)
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    zero_cost: tuple[str, ...] = ()
    zero_cost_batch: int = ZERO_COST_BATCH


def child_zero_cost(space: ConvCellSpace, batch, names: tuple[str, ...], network: NetworkConfig, seed: int,
                    device) -> Any:
    """Live proxies of the run's own child networks (a :class:`~nao.proxies.source.ZeroCost`): each candidate
    built as the training evaluator builds it (``network``, seeded by the run's seed: the very weights it starts
    training from), without its training-only auxiliary head, and scored on ``batch`` on ``device``; the
    measured seconds, build included, are the price. (Not :class:`~nao.proxies.source.LiveZeroCost`, which builds
    the default 36-channel network; the source module is imported here, not at start-up: it loads SciPy.)"""
    import time

    import torch

    from nao.nn.network import build_network
    from nao.proxies.measures import score
    from nao.proxies.source import FunctionZeroCost

    network = replace(network, auxiliary=False)

    def one(arch) -> tuple[list[float], float]:
        start = time.perf_counter()
        net = build_network(space, arch, network, torch.Generator().manual_seed(seed)).to(device)
        values = score(net, batch, names)
        return [values[n] for n in names], time.perf_counter() - start

    return FunctionZeroCost(space, names, one)


@register_preset("trained-cnn", "smoke")
def _cnn_smoke() -> TrainedCnnConfig:
    # Seconds on a CPU: the whole pipeline (search, per-candidate checkpoints, rerank, final), not a search.
    net = NetworkConfig(channels=8, layers=1, auxiliary=False)
    tiny = TrainConfig(epochs=1, batch_size=32, eval_batch_size=256, lr=0.05, lr_min=0.0, nesterov=True,
                       aux_weight=0.0, augment=NO_AUGMENT, eval_every=0)
    return TrainedCnnConfig(
        preset="smoke", train_images=256, val_images=128, test_images=128, budget=6,
        strategy_options={"seed_archs": 4, "per_round": 2, "top_k": 2, "candidates": 4,
                          "controller": {"epochs": 25, "pretrain_archs": 0}},
        network=net, train=tiny, top_k=2, rerank_network=net, rerank_train=tiny, final_network=net, final_train=tiny)


@register_preset("trained-cnn", "cpu")
def _cnn_cpu() -> TrainedCnnConfig:
    # 2 CPU cores, --executor processes: 16x16 CIFAR-10 (5k train / 1k validation), a child of F=8, N=1 trained
    # 2 epochs (~10 s each on one core), 40 random seeds + 3 NAO rounds of 20 = 100 candidates.
    augment = AugmentConfig(crop_padding=2, flip=True, cutout=0)
    net = NetworkConfig(channels=8, layers=1, auxiliary=False, dropout=0.0, drop_path=0.0)
    brief = TrainConfig(epochs=2, batch_size=64, eval_batch_size=500, lr=0.05, lr_min=0.0, nesterov=True,
                        weight_decay=3e-4, grad_clip=5.0, aux_weight=0.0, augment=augment, eval_every=0)
    return TrainedCnnConfig(
        preset="cpu", dataset="cifar10", train_images=5000, val_images=1000, image_size=16, budget=100,
        strategy_options={"seed_archs": 40, "per_round": 20, "top_k": 10, "candidates": 60},
        network=net, train=brief, top_k=3, rerank_workers=2, rerank_network=net, rerank_train=replace(brief, epochs=5),
        final_network=replace(net, channels=12), final_train=replace(brief, epochs=10))


@register_preset("trained-cnn", "paper")
def _cnn_paper() -> TrainedCnnConfig:
    # The official NAO CIFAR-10 search (renqianluo/NAO, NAO/cnn train_search scripts and the paper, sec. 4.1):
    # children N=3, F=32, B=5 nodes, 25 epochs, batch 128, cosine lr 0.024, auxiliary head, drop-path keep
    # 0.7 (drop_path 0.3); the controller is trained on all evaluated architectures, the top 100 are moved
    # with lambda = 10, 20, 30 into 300 new ones per iteration. A random seed pool of 600 (the NAO-WS seed pool
    # size; the paper's 600 evaluated + 3 x 300) and 3 iterations: 1,500 candidates, the paper's budget order.
    from nao.controller.config import official
    from nao.train.presets import get_preset

    final = get_preset("paper")
    augment = AugmentConfig(crop_padding=4, flip=True, cutout=0)
    child = TrainConfig(epochs=25, batch_size=128, eval_batch_size=500, lr=0.024, lr_min=0.0, weight_decay=3e-4,
                        grad_clip=5.0, aux_weight=0.4, augment=augment, eval_every=0)
    net = NetworkConfig(channels=32, layers=3, auxiliary=True, dropout=0.0, drop_path=0.3)
    return TrainedCnnConfig(
        preset="paper", dataset="cifar10", val_images=5000, budget=1500, threads=0, device="auto",
        strategy_options={"seed_archs": 600, "per_round": 300, "top_k": 100, "candidates": 300,
                          "controller": official()},
        network=net, train=child, top_k=5, rerank_network=net, rerank_train=child,
        final_network=final.network, final_train=final.train)


@register_kind
class TrainedCnnKind(TrainedKind):
    """Image cells, every candidate trained; rerank and final training as for NAO-WS."""

    name = "trained-cnn"
    task, evaluator = "cnn", "training"
    config_class = TrainedCnnConfig
    flags = (*DEVICE_FLAGS, *IMAGE_FLAGS, *EXECUTOR_FLAGS, *LADDER_FLAGS,
             *zero_cost_flags(tuple(PROXIES), "image_epochs"))
    objective = Objective("val_acc", "max")

    def prepare(self) -> None:
        cfg = self.config
        self.space = get_space(cfg.space)
        self.check_strategy(check_names)  # the options, and --zero-cost's names, batch and needs
        if not isinstance(self.space, ConvCellSpace):
            raise ConfigError(f"a trained-cnn search needs a conv cell space (nao-ws, nao, darts), not {cfg.space!r}")
        self.runtime = make_runtime(resolve_device(cfg.device))
        self.data = load_splits(cfg)
        check_image_size(self.data.image_size)
        # Parsed here, before a run directory exists: a bad --constraint is an input error.
        self.feasibility = network_feasibility(
            cfg.constraint, self.space, replace(cfg.network, num_classes=self.data.num_classes), self.data.image_size,
        ) if cfg.constraint else None
        # Whole epochs (an image candidate trains whole epochs); checked before the run directory exists.
        self.rungs = check_fidelity(cfg.fidelity, cfg.eta, cfg.train.epochs, cfg.budget, cfg.min_fidelity,
                                     whole=True)
        self.proxy_batch = self._proxy_batch() if cfg.zero_cost else None
        self.executor = cfg.executor.build()

    def _proxy_batch(self):
        """The proxies' minibatch: seeded training images, at the run's size, normalised as training does."""
        from nao.proxies.measures import ProxyBatch
        from nao.proxies.table import image_batch

        cfg, train = self.config, self.data.train
        if cfg.zero_cost_batch > len(train):
            raise ConfigError(f"--zero-cost-batch {cfg.zero_cost_batch} is larger than the {len(train)} training images")
        batch = image_batch(train.images, train.labels, cfg.zero_cost_batch, cfg.seed, self.data.image_size,
                            self.data.num_classes)
        device = self.runtime.device
        return ProxyBatch(batch.inputs.to(device), batch.targets.to(device))

    def build(self, ctx: RunContext) -> Search:
        cfg = self.config
        evaluator = TrainingEvaluator.from_splits(self.space, self.data, network=cfg.network, train_config=cfg.train,
                                                  device=str(self.runtime.device), seed=cfg.seed,
                                                  checkpoint_root=ctx.rundir.path / CANDIDATES_DIR)
        executor, zero_cost = self.executor, None
        if cfg.zero_cost:
            zero_cost = child_zero_cost(self.space, self.proxy_batch, tuple(cfg.zero_cost),
                                        replace(cfg.network, num_classes=self.data.num_classes), cfg.seed,
                                        self.runtime.device)
            executor = ProxyCharging(self.executor, zero_cost)
        strategy = self.strategy(None if self.rungs is None else float(cfg.train.epochs), self.feasibility,
                                 zero_cost=zero_cost)
        n_tr, n_va, n_te = self.data.sizes()
        ctx.say(f"NAO training every candidate on {self.data.name}: {n_tr} train / {n_va} val images, child "
                f"F={cfg.network.channels} N={cfg.network.layers} x {cfg.train.epochs} epochs, budget {cfg.budget}, "
                f"executor {cfg.executor.name}")
        if self.rungs is not None:
            ctx.say(f"fidelity {cfg.fidelity}: rungs of {', '.join(f'{r:g}' for r in self.rungs)} epochs, the top "
                    f"1/{cfg.eta:g} of each promoted and continued from its checkpoint")
        if zero_cost is not None:
            ctx.say(f"zero-cost proxies {','.join(cfg.zero_cost)} on {cfg.zero_cost_batch} training images before "
                    f"each candidate trains (charged in image_epochs at the run's training throughput)")
        return Search(self.space, evaluator, strategy, self.objective, cfg.budget, executor,
                      scheduler=self.scheduler())

    def finish(self, ctx: RunContext, search: Search, study: Study) -> dict[str, Any]:
        if hasattr(study, "ranked"):  # by rungs: each candidate at its highest, higher rungs first
            ranked = study.ranked()
        else:
            ranked = sorted((r for r in study.history if r.ok), key=self.objective.score, reverse=True)
        candidates = [(r.arch, r.metrics["val_acc"]) for r in ranked[: self.config.top_k]]
        if not candidates:
            raise ConfigError(f"every candidate failed to train; see {ctx.rundir.journal_path}")
        ctx.say(f"reranking the top {len(candidates)} by {self.config.rerank_train.epochs}-epoch training")
        extra = constraint_summary(ctx, search.strategy, self.config.constraint, "never trained")
        return {**finish_images(self.config, self.space, self.data, self.runtime, ctx, candidates), **extra}
