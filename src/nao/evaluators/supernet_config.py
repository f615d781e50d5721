"""Settings of the conv supernet evaluator (:mod:`nao.evaluators.supernet`), in their own module so
that the evaluator stays readable; import them from either.

>>> SupernetTrainConfig(pool_size=10, new_per_round=20).check()
Traceback (most recent call last):
...
nao.errors.ConfigError: new_per_round 20 exceeds pool_size 10
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nao.config import Config
from nao.data.augment import AugmentConfig
from nao.errors import ConfigError

#: BatchNorm statistics when scoring (``SupernetTrainConfig.bn``).
BN_MODES = ("batch", "recalibrate")
#: What ranks the supernet's pool (``SupernetTrainConfig.score``).
SCORES = ("acc", "loss")


@dataclass(frozen=True)
class SupernetTrainConfig(Config):
    """How the supernet is trained and how it scores.

    Defaults are the official NAO-WS CIFAR-10 search settings (renqianluo/NAO_pytorch
    ``NAO_V1/train_search.py`` argument defaults), unless noted.

    Attributes:
        seed_pool: architectures in the first round (``--controller_seed_arch 600``).
        new_per_round: architectures each later round adds (``--controller_new_arch 300``).
        pool_size: architectures trained on per round; the best old ones are kept to fill it
            (the official code replaces the bottom ``new`` of its 600 by the new ones).
        epochs_per_round: supernet epochs between two scorings (``--child_eval_epochs 50``).
        total_epochs: length of the cosine schedule; 0 means ``epochs_per_round`` x the number
            of rounds the budget allows (official: ``--child_epochs 200``, i.e. 4 rounds).
        batch_size: training mini-batch (``--child_batch_size 128``).
        eval_batch_size: images per scoring chunk (``--child_eval_batch_size 500``).
        score_images: fixed validation images every architecture is scored on (0: the whole
            validation split). The official code scores each on one random batch of 500.
        lr, lr_min: cosine learning-rate range (``--child_lr_max 0.025``, ``--child_lr_min 0.001``).
        momentum, weight_decay, grad_clip: SGD settings (0.9, ``--child_l2_reg 3e-4``,
            ``--child_grad_bound 5``).
        bn: BatchNorm statistics when scoring: ``"batch"`` or ``"recalibrate"`` (module docstring).
        score: what ranks the pool and what search maximises: ``"acc"`` (validation accuracy, the
            official choice) or ``"loss"`` (minus the validation cross-entropy: continuous, so it
            separates cells whose accuracies differ by less than one validation image's worth).
            Results carry ``val_score`` (the ranking value) besides ``val_acc`` and ``val_loss``.
        calib_batches: training batches used to recalibrate BN (``bn="recalibrate"``).
        augment: training augmentation (``None``: none; the official code crops and flips CIFAR).
    """

    seed_pool: int = 600
    new_per_round: int = 300
    pool_size: int = 600
    epochs_per_round: int = 50
    total_epochs: int = 0
    batch_size: int = 128
    eval_batch_size: int = 500
    score_images: int = 0
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    bn: str = "batch"
    score: str = "acc"
    calib_batches: int = 4
    augment: AugmentConfig | None = field(default_factory=lambda: AugmentConfig(crop_padding=4, flip=True, cutout=0))

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        positive = ("seed_pool", "new_per_round", "pool_size", "epochs_per_round", "batch_size", "eval_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"supernet setting {name} must be at least 1, got {getattr(self, name)}")
        if self.score not in SCORES:
            raise ConfigError(f"supernet setting score must be one of {', '.join(SCORES)}, got {self.score!r}")
        if self.bn not in BN_MODES:
            raise ConfigError(f"supernet setting bn must be one of {', '.join(BN_MODES)}, got {self.bn!r}")
        if self.new_per_round > self.pool_size:
            raise ConfigError(f"new_per_round {self.new_per_round} exceeds pool_size {self.pool_size}")
