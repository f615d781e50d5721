"""Named training presets: a network size plus optimisation settings.

``paper`` follows the NAO paper's CIFAR-10 final training as released in the official
PyTorch code (renqianluo/NAO_pytorch ``NAO_V1/train_cifar.py`` defaults and
``train_NAONet_*_36_cifar10.sh``): 600 epochs, F=36, N=6, batch 128, SGD momentum 0.9,
lr 0.025 cosine to 0, weight decay 3e-4, grad-norm clip 5, cutout 16, classifier dropout
0.4 (``keep_prob=0.6``), drop path 0.2 (``drop_path_keep_prob=0.8``; the F=128 runs use
0.3), auxiliary head weighted 0.4 (the official NAONet-B script turns it on; the NAONet-A-36
script leaves it off). ``small`` is a CPU-sized network and schedule for quick checks.

>>> from nao.train.presets import get_preset
>>> p = get_preset("paper")
>>> p.network.channels, p.network.layers, p.train.epochs, p.train.augment.cutout
(36, 6, 600, 16)
"""

from __future__ import annotations

from dataclasses import dataclass

from nao.config import Config
from nao.data.augment import AugmentConfig
from nao.nn.network import NetworkConfig
from nao.train.classifier import TrainConfig


@dataclass(frozen=True)
class Preset(Config):
    """A network configuration and a training configuration that go together."""

    name: str
    network: NetworkConfig
    train: TrainConfig
    description: str


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        network=NetworkConfig(channels=36, layers=6, auxiliary=True, dropout=0.4, drop_path=0.2),
        train=TrainConfig(
            epochs=600,
            batch_size=128,
            eval_batch_size=500,
            lr=0.025,
            lr_min=0.0,
            momentum=0.9,
            nesterov=False,
            weight_decay=3e-4,
            grad_clip=5.0,
            aux_weight=0.4,
            augment=AugmentConfig(crop_padding=4, flip=True, cutout=16),
        ),
        description="NAO paper final training (600 epochs, F=36, N=6, cutout, drop path, aux head)",
    ),
    "small": Preset(
        name="small",
        network=NetworkConfig(channels=16, layers=1, auxiliary=False, dropout=0.0, drop_path=0.0),
        train=TrainConfig(
            epochs=4,
            batch_size=64,
            eval_batch_size=500,
            lr=0.05,
            lr_min=0.0,
            momentum=0.9,
            nesterov=True,
            weight_decay=3e-4,
            grad_clip=5.0,
            aux_weight=0.0,
            augment=AugmentConfig(crop_padding=4, flip=True, cutout=0),
            eval_every=0,
        ),
        description="CPU-sized: F=16, N=1 (5 cells), 4 epochs, no cutout/drop path/aux",
    ),
}


def get_preset(name: str) -> Preset:
    """The training preset ``name`` from the one registry (:func:`nao.presets.preset`)."""
    from nao.presets import preset

    return preset(f"train/{name}")


def _register() -> None:
    from nao.presets import register_preset

    for name, p in PRESETS.items():
        register_preset("train", name)(lambda p=p: p)


_register()
