"""Batch augmentation and iteration on the device holding the uint8 dataset.

Every function works on a whole batch at once with an explicit ``torch.Generator``:
random crop with zero padding, horizontal flip, normalisation, and cutout (applied to the
normalised image, as in the cutout/DARTS/NAO code, so the hole takes the dataset's mean
colour, i.e. zero after normalisation). :class:`BatchLoader` keeps the dataset on its device and yields
augmented float batches in a seeded order, so the training loop never touches Python-level
per-image transforms.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
>>> random_crop(x, 4, g).shape, random_flip(x, g).dtype
(torch.Size([4, 3, 32, 32]), torch.uint8)
>>> cutout(normalize(x), 16, g).shape
torch.Size([4, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nao.config import Config
from nao.data.cifar import ImageSet

# Per-channel mean/std of the CIFAR-10 training images (in 0..1), the values the NAO and
# DARTS code normalise with; also used for CIFAR-100 as they do.
CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to the original size at a random offset per image."""
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=x.device)
    rows = dy + torch.arange(h, device=x.device)  # (B,H)
    cols = dx + torch.arange(w, device=x.device)  # (B,W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indexing with the channel slice in the middle puts it last: (B,H,W,C).
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()  # (B,H,W,C) -> (B,C,H,W)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def normalize(
    x: torch.Tensor, mean: tuple[float, ...] = CIFAR_MEAN, std: tuple[float, ...] = CIFAR_STD
) -> torch.Tensor:
    """uint8 ``(B,3,H,W)`` -> float32 standardised per channel."""
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square (clipped at the border) centred anywhere in each image."""
    if size <= 0:
        return x
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1, 1), generator=generator, device=x.device)
    cx = torch.randint(0, w, (b, 1, 1), generator=generator, device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    half = size // 2
    hole = (ys >= cy - half) & (ys < cy + half) & (xs >= cx - half) & (xs < cx + half)  # (B,H,W)
    return x * (~hole).unsqueeze(1).to(x.dtype)


@dataclass(frozen=True)
class AugmentConfig(Config):
    """Which augmentations a training batch gets.

    Attributes:
        crop_padding: pixels of zero padding for the random crop (0 disables).
        flip: random horizontal flips.
        cutout: side of the cutout square (0 disables).
    """

    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0


#: No augmentation at all (only normalisation): datasets that should not be augmented, smoke presets.
NO_AUGMENT = AugmentConfig(crop_padding=0, flip=False, cutout=0)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """uint8 batch -> augmented, normalised float32 batch."""
    x = random_crop(x, cfg.crop_padding, generator)
    if cfg.flip:
        x = random_flip(x, generator)
    return cutout(normalize(x), cfg.cutout, generator)


class BatchLoader:
    """Seeded mini-batches from an :class:`ImageSet` that lives on the compute device.

    Args:
        data: images/labels, already on the device they will be used on.
        batch_size: examples per batch.
        generator: drives the order and the augmentation; must live on ``data``'s device.
        augment: augmentations to apply, or ``None`` for plain normalised images in order.
        drop_last: skip a final partial batch (keeps BatchNorm statistics sane in training).
    """

    def __init__(
        self,
        data: ImageSet,
        batch_size: int,
        generator: torch.Generator | None = None,
        augment: AugmentConfig | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if augment is not None and generator is None:
            raise ValueError("augmentation needs a generator")
        self.data, self.batch_size, self.generator = data, batch_size, generator
        self.augment, self.drop_last = augment, drop_last

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.data)
        device = self.data.labels.device
        if self.augment is not None:
            order = torch.randperm(n, generator=self.generator, device=device)
        else:
            order = torch.arange(n, device=device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x, y = self.data.images[idx], self.data.labels[idx]
            if self.augment is not None:
                yield augment_batch(x, self.augment, self.generator), y
            else:
                yield normalize(x), y
