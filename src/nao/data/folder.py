"""Image-folder datasets: one sub-folder per class of PNG/JPEG files, as :class:`ImageSplits`.

The layout torchvision's ``ImageFolder`` reads::

    root/
      cat/  001.png  002.jpg ...
      dog/  a.jpeg ...

Class names are the sub-folders' names, sorted (so labels are ``0..K-1`` in that order);
hidden entries are skipped, and so are files that are not ``.png``/``.jpg``/``.jpeg``. Every
image is converted to RGB and resized to ``image_size`` x ``image_size`` (bilinear, with
Pillow's antialiasing when shrinking; the aspect ratio is not kept), giving the same uint8
``(N, 3, H, W)`` tensors as CIFAR (:class:`~nao.data.cifar.ImageSet`), then split into
train / validation / test with a seeded, class-stratified split
(:func:`nao.data.digits.stratified_split`). Bad input raises a one-line
:class:`~nao.errors.DataError` naming the file or folder.

>>> import tempfile, pathlib
>>> from PIL import Image
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for c, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
...     (root / c).mkdir()
...     for i in range(10):
...         Image.new("RGB", (12, 9), colour).save(root / c / f"{i}.png")
>>> splits = load_image_folder(root, image_size=8, seed=0)
>>> splits.info["classes"], splits.sizes(), tuple(splits.train.images.shape[1:])
(['blue', 'red'], (16, 2, 2), (3, 8, 8))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from nao.data.augment import AugmentConfig
from nao.data.cifar import ImageSet
from nao.data.digits import ImageSplits, stratified_split
from nao.errors import DataError

#: File suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Default (train, validation, test) fractions.
FOLDER_FRACTIONS = (0.8, 0.1, 0.1)


def class_folders(root: str | os.PathLike) -> list[Path]:
    """The class sub-folders of ``root``, sorted by name (hidden ones skipped).

    Raises :class:`DataError` if ``root`` is not a folder or has fewer than two classes.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (an image-folder dataset has one sub-folder of images per class)")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if len(folders) < 2:
        raise DataError(f"{root}: {len(folders)} class folder(s); an image-folder dataset needs at least two "
                        f"(one sub-folder of images per class)")
    return folders


def image_files(folder: Path) -> list[Path]:
    """The PNG/JPEG files of one class folder, sorted; DataError naming the folder if there are none."""
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: empty class folder (no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files)")
    return files


def is_image_folder(root: str | os.PathLike) -> bool:
    """Whether ``root`` looks like an image-folder dataset (two or more sub-folders holding images).

    Cheap (reads directory listings only), for a CLI deciding how to read ``--data``.
    """
    try:
        return all(any(p.suffix.lower() in IMAGE_SUFFIXES for p in f.iterdir()) for f in class_folders(root))
    except (DataError, OSError):
        return False


def read_image(path: Path, image_size: int) -> np.ndarray:
    """One file as a ``(3, image_size, image_size)`` uint8 array; DataError naming it if unreadable."""
    return resize_rgb(open_rgb(path), image_size)


def open_rgb(path: Path):  # -> PIL.Image.Image (Pillow is imported only when images are read)
    """One file decoded and converted to RGB (any channel count); DataError naming it if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable image ({reason})") from None


def resize_rgb(rgb, image_size: int) -> np.ndarray:
    """An RGB Pillow image resized to ``image_size`` square (bilinear; antialiased when shrinking) as ``(3,S,S)`` uint8."""
    from PIL import Image

    out = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8).transpose(2, 0, 1))  # (H,W,3) -> (3,H,W), as ImageSet


def load_image_folder(
    root: str | os.PathLike,
    image_size: int = 32,
    seed: int = 0,
    fractions: tuple[float, float, float] = FOLDER_FRACTIONS,
    augment: AugmentConfig | None = None,
    name: str | None = None,
) -> ImageSplits:
    """Read an image-folder dataset into seeded, class-stratified train / validation / test splits.

    Args:
        root: the folder holding one sub-folder of images per class.
        image_size: every image is resized to this many pixels square.
        seed: seeds the split.
        fractions: (train, validation, test) fractions, per class.
        augment: training augmentation stored with the splits (``None``: none; natural photos
            usually want ``AugmentConfig(crop_padding=image_size // 8, flip=True, cutout=0)``).
        name: dataset name for logs and run directories (default: the folder's name).

    Raises :class:`DataError` for an unreadable image (naming the file), an empty class folder
    (naming it), fewer than two classes, or a split that would be empty.
    """
    if image_size < 1:
        raise DataError(f"image size must be a positive number of pixels, got {image_size}")
    root = Path(root)
    folders = class_folders(root)
    images, labels = [], []
    for label, folder in enumerate(folders):
        for path in image_files(folder):
            images.append(read_image(path, image_size))
            labels.append(label)
    x = torch.from_numpy(np.stack(images))  # (N, 3, S, S) uint8
    y_np = np.asarray(labels, dtype=np.int64)
    y = torch.from_numpy(y_np)
    parts = [ImageSet(x[i].contiguous(), y[i].contiguous())
             for i in stratified_split(y_np, fractions, np.random.default_rng(seed))]
    classes = [f.name for f in folders]
    return ImageSplits(
        name=name or root.name,
        train=parts[0],
        val=parts[1],
        test=parts[2],
        num_classes=len(classes),
        augment=augment,
        info={"source": str(root), "classes": classes, "seed": seed, "fractions": list(fractions),
              "image_size": image_size, "sizes": [len(p) for p in parts]},
    )
