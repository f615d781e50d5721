"""The embedded default dataset: scikit-learn's handwritten digits (8x8 grayscale, 1,797 images).

It ships with scikit-learn (no download), so ``nao search`` with no arguments can run a
complete NAO-WS search anywhere in a few minutes. :func:`load_digits_splits` returns a
seeded, class-stratified train / validation / test split as :class:`ImageSplits`, whose
parts are the same on-device uint8 :class:`~nao.data.cifar.ImageSet` the CIFAR path uses,
so the supernet and the training loop never care which dataset they were given.

To fit that format, the 17 grey levels (0..16) are rescaled to 0..255 and the single
channel is repeated three times; :func:`nao.data.augment.normalize` then standardises them
with fixed per-channel constants, an affine map the networks' stem BatchNorm absorbs.

>>> splits = load_digits_splits(seed=0)
>>> tuple(splits.train.images.shape[1:]), splits.num_classes, splits.sizes()
((3, 8, 8), 10, (1078, 359, 360))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from nao.data.augment import AugmentConfig
from nao.data.cifar import ImageSet
from nao.errors import DataError

#: Default fractions of the 1,797 digits used for (train, validation, test).
DIGITS_FRACTIONS = (0.6, 0.2, 0.2)


@dataclass
class ImageSplits:
    """An image classification dataset split three ways (train / validation / test).

    Each split is a :class:`~nao.data.cifar.ImageSet` (uint8 ``(N, 3, H, W)`` images, int64
    labels), normalised per batch by :func:`nao.data.augment.normalize`.

    Attributes:
        name: dataset name (for logs and run directories).
        train, val, test: the splits. Search only ever reads ``train`` and ``val``.
        num_classes: number of classes.
        augment: training augmentation suited to the images (``None``: none).
        info: provenance (source, seed, fractions, subset).
    """

    name: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    num_classes: int
    augment: AugmentConfig | None = None
    info: dict = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])

    def sizes(self) -> tuple[int, int, int]:
        """Number of (train, validation, test) images."""
        return len(self.train), len(self.val), len(self.test)


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a class-stratified (train, val, test) split with the given fractions.

    Each class is shuffled and cut at the cumulative fractions, so every split holds about
    the same class mix. Raises :class:`DataError` if a split would be empty.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cut1 = int(round(fractions[0] * len(idx)))
        cut2 = cut1 + int(round(fractions[1] * len(idx)))
        for k, chunk in enumerate((idx[:cut1], idx[cut1:cut2], idx[cut2:])):
            parts[k].append(chunk)
    out = tuple(rng.permutation(np.concatenate(p)) for p in parts)
    for name, idx in zip(("train", "validation", "test"), out):
        if len(idx) == 0:
            raise DataError(
                f"a dataset of {len(labels)} images is too small for the split {tuple(fractions)}: "
                f"the {name} split would be empty (use more images or other fractions)"
            )
    return out  # type: ignore[return-value]


def load_digits_splits(
    seed: int = 0, fractions: tuple[float, float, float] = DIGITS_FRACTIONS, subset: int | None = None
) -> ImageSplits:
    """scikit-learn's digits as :class:`ImageSplits` (``(N, 3, 8, 8)`` uint8, no augmentation).

    Args:
        seed: seeds the split (and the subset choice).
        fractions: (train, validation, test) fractions.
        subset: use only this many images (a seeded random choice); for tests and smoke runs.
    """
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    data = load_digits()
    grey = np.asarray(data.images, dtype=np.float64)  # (N,8,8), levels 0..16
    images = np.round(grey * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(images[:, None], 3, axis=1)  # (N,8,8) -> (N,3,8,8): the RGB layout of ImageSet
    labels = np.asarray(data.target, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if subset is not None:
        if subset < 1:
            raise DataError(f"--subset {subset}: must be a positive number of images")
        keep = rng.permutation(len(labels))[: min(subset, len(labels))]
        images, labels = images[keep], labels[keep]
    x, y = torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
    parts = [ImageSet(x[i].contiguous(), y[i].contiguous()) for i in stratified_split(labels, fractions, rng)]
    return ImageSplits(
        name="digits",
        train=parts[0],
        val=parts[1],
        test=parts[2],
        num_classes=10,
        augment=None,  # flips and shifts change what an 8x8 digit means
        info={"source": "sklearn.datasets.load_digits", "seed": seed, "fractions": list(fractions), "subset": subset},
    )
