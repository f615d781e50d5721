"""What an image model was trained on, stored in its checkpoint (``meta["data"]``).

A checkpoint that records its data can be used without the run that made it: :mod:`nao.deploy`
exports and loads it with the right input size, normalisation and class names, and ``nao evaluate`` /
``nao predict`` refuse images that do not match it (other classes, another split of the folder) in one
line instead of scoring them against the wrong labels.

The record (a plain dict, JSON-ready):

- ``dataset``: ``digits``, ``cifar10``, ``cifar100`` or ``folder``; ``kind``: ``digits`` | ``cifar`` | ``folder``.
- ``classes``: class names in label order.
- ``image_size``: side of the square images the network saw; ``resize``: how they got there
  (``none``, ``area``: block averaging of CIFAR, ``bilinear``: Pillow's, as image folders are read).
- ``mean`` / ``std``: per channel, applied to RGB values scaled to 0..1 (:func:`nao.data.augment.normalize`).
- ``split``: provenance of the split (seed, fractions, sizes of train / validation / test, source).

>>> import torch
>>> from nao.data.cifar import ImageSet
>>> from nao.data.digits import ImageSplits
>>> part = ImageSet(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
>>> rec = data_record(ImageSplits("toy", part, part, part, 2, info={"classes": ["a", "b"], "seed": 0}), "folder")
>>> rec["classes"], rec["image_size"], rec["resize"], rec["split"]["sizes"]
(['a', 'b'], 8, 'bilinear', [4, 4, 4])
>>> check_classes(rec, ["a", "c"], "DIR")
Traceback (most recent call last):
...
nao.errors.DataError: DIR: classes ['a', 'c'] do not match the ['a', 'b'] the model was trained on
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nao.errors import DataError

#: Version of the record's layout (bumped if a field changes meaning).
RECORD_VERSION = 1


#: Side of the images each built-in dataset comes in (anything smaller was shrunk by block averaging).
NATIVE_SIZE = {"digits": 8, "cifar10": 32, "cifar100": 32}


def make_record(dataset: str, classes: Sequence[Any], image_size: int, split: Mapping[str, Any]) -> dict[str, Any]:
    """The record of images of ``dataset`` (``digits``, ``cifar10``, ``cifar100`` or ``folder``)."""
    from nao.data.augment import CIFAR_MEAN, CIFAR_STD  # the constants every image loader normalises with

    if dataset == "folder":
        kind, resize = "folder", "bilinear"
    else:
        kind = "digits" if dataset == "digits" else "cifar"
        resize = "none" if image_size == NATIVE_SIZE.get(dataset, image_size) else "area"
    return {
        "version": RECORD_VERSION,
        "dataset": dataset,
        "kind": kind,
        "classes": [str(c) for c in classes],
        "image_size": int(image_size),
        "resize": resize,
        "mean": list(CIFAR_MEAN),
        "std": list(CIFAR_STD),
        "split": dict(split),
    }


def data_record(splits: Any, dataset: str) -> dict[str, Any]:
    """The record of :class:`~nao.data.digits.ImageSplits` ``splits`` read as ``dataset`` (see :func:`make_record`)."""
    info = dict(splits.info)
    classes = info.pop("classes", None) or range(splits.num_classes)
    return make_record(dataset, classes, splits.image_size, {**info, "sizes": list(splits.sizes())})


def check_classes(record: Mapping[str, Any], found: Sequence[str], where: str, subset_ok: bool = False) -> None:
    """DataError naming ``where`` unless ``found`` are the record's classes (or, with ``subset_ok``, some of them)."""
    trained = list(record.get("classes") or [])
    found = [str(c) for c in found]
    if subset_ok:
        unknown = [c for c in found if c not in trained]
        if unknown:
            raise DataError(f"{where}: class folder(s) {unknown} are not classes of the model (it knows {trained})")
    elif found != trained:
        raise DataError(f"{where}: classes {found} do not match the {trained} the model was trained on")


def check_split_sizes(record: Mapping[str, Any], sizes: Sequence[int], where: str) -> None:
    """DataError unless a re-read dataset splits into the recorded sizes (else its test part is another one)."""
    recorded = list(record.get("split", {}).get("sizes") or [])
    if recorded and list(sizes) != recorded:
        raise DataError(f"{where}: splits into {list(sizes)} train/validation/test images, but the model was trained "
                        f"on a split of {recorded}; the images changed, so its test split is not the held-out one")
