"""Predictions for every image of a folder: flat, or one sub-folder per class (then accuracy too).

Images are read as ``--dataset folder`` reads them (:mod:`nao.data.folder`): PNG/JPEG files of any
size and channel count, converted to RGB and resized to the model's input; a corrupt file is a
one-line :class:`~nao.errors.DataError` naming it. With class sub-folders, each sub-folder's name
must be one of the model's classes (:func:`nao.data.record.check_classes`), else the folder is
refused rather than scored against the wrong labels.

>>> import tempfile, pathlib, torch
>>> from PIL import Image
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for c in ("0", "1"):
...     (root / c).mkdir()
...     Image.new("L", (8, 8), 255 * int(c)).save(root / c / "a.png")
>>> images = read_folder(root, image_size=8)
>>> images.labels, [p.as_posix() for p in images.paths], tuple(images.pixels.shape)
(['0', '1'], ['0/a.png', '1/a.png'], (2, 3, 8, 8))
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from nao.data.folder import IMAGE_SUFFIXES, open_rgb
from nao.errors import DataError


@dataclass
class FolderImages:
    """The images of a folder, resized for a model.

    Attributes:
        root: the folder.
        paths: each image's path relative to ``root``.
        pixels: ``(N, 3, S, S)`` uint8.
        labels: each image's class (its sub-folder's name), or None for a flat folder.
    """

    root: Path
    paths: list[Path]
    pixels: torch.Tensor
    labels: list[str] | None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def read_folder(root: str | os.PathLike, image_size: int, resize: str = "bilinear") -> FolderImages:
    """Every image of ``root`` (flat, or one sub-folder per class) resized to ``image_size``."""
    from nao.deploy.inference import Preprocess

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of images")
    subs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    loose = _images_in(root)
    if subs and loose:
        raise DataError(f"{root}: holds both image files ({loose[0].name}, ...) and sub-folders ({subs[0].name}, ...); "
                        f"give a flat folder of images or one sub-folder per class")
    files: list[Path] = []
    labels: list[str] | None = None
    if subs:
        labels = []
        for sub in subs:
            found = _images_in(sub)
            if not found:
                raise DataError(f"{sub}: empty class folder (no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files)")
            files += found
            labels += [sub.name] * len(found)
    else:
        files = loose
    if not files:
        raise DataError(f"{root}: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files")
    pre = Preprocess(image_size, (0.0,) * 3, (1.0,) * 3, resize)
    # Decoded at their own size, then resized as the model's training data were.
    pixels = pre.to_uint8([open_rgb(f) for f in files])
    return FolderImages(root, [f.relative_to(root) for f in files], pixels, labels)




@dataclass
class FolderPredictions:
    """Class probabilities for each image of a :class:`FolderImages`.

    Attributes:
        images: what was predicted.
        class_names: the model's classes, in output order.
        probs: ``(N, K)`` probabilities.
    """

    images: FolderImages
    class_names: list[str]
    probs: torch.Tensor

    @property
    def predicted(self) -> torch.Tensor:
        return self.probs.argmax(1)

    def true_index(self) -> torch.Tensor | None:
        """Each image's class index (None for a flat folder)."""
        if self.images.labels is None:
            return None
        return torch.tensor([self.class_names.index(c) for c in self.images.labels])

    def accuracy(self) -> float | None:
        truth = self.true_index()
        return None if truth is None else float((self.predicted == truth).float().mean())

    def confusion(self) -> torch.Tensor | None:
        """``(K, K)`` counts, rows the true class, columns the predicted one (None for a flat folder)."""
        truth = self.true_index()
        if truth is None:
            return None
        k = len(self.class_names)
        return torch.bincount(truth * k + self.predicted, minlength=k * k).view(k, k)

    def csv_text(self, top_k: int = 1) -> str:
        """One row per image: path, true class (if known), then ``top_k`` (class, probability) pairs."""
        k = min(top_k, len(self.class_names))
        p, idx = self.probs.topk(k, dim=1)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        head = ["path"] + (["true", "correct"] if self.images.labels is not None else [])
        w.writerow(head + [f"{name}_{i + 1}" for i in range(k) for name in ("pred", "prob")])
        for n, path in enumerate(self.images.paths):
            row: list[object] = [path.as_posix()]
            if self.images.labels is not None:
                row += [self.images.labels[n], int(self.class_names[int(idx[n, 0])] == self.images.labels[n])]
            for j in range(k):
                row += [self.class_names[int(idx[n, j])], f"{float(p[n, j]):.6f}"]
            w.writerow(row)
        return buf.getvalue()

    def summary(self) -> str:
        """Accuracy and confusion matrix (labelled folders) or the count of each predicted class."""
        n = len(self.images.paths)
        lines = [f"{n} images in {self.images.root}"]
        acc, conf = self.accuracy(), self.confusion()
        if acc is None or conf is None:
            counts = torch.bincount(self.predicted, minlength=len(self.class_names))
            lines.append("predicted classes: " + ", ".join(f"{c} {int(v)}" for c, v in zip(self.class_names, counts) if v))
            return "\n".join(lines)
        right = int(conf.trace())
        lines.append(f"accuracy {acc:.4f} ({right}/{n})")
        lines.append("confusion matrix (rows: true class, columns: predicted class):")
        width = max(max(len(c) for c in self.class_names), len(str(int(conf.max()))), 3)
        lines.append(" " * (width + 1) + " ".join(f"{c:>{width}}" for c in self.class_names))
        present = set(self.images.labels or [])
        for i, c in enumerate(self.class_names):
            if c in present:
                lines.append(f"{c:>{width}} " + " ".join(f"{int(v):>{width}}" for v in conf[i]))
        return "\n".join(lines)


def predict_folder(model, root: str | os.PathLike, batch_size: int = 256) -> FolderPredictions:
    """Predict every image of ``root`` with a :class:`~nao.deploy.inference.LoadedModel` (class sub-folders checked)."""
    from nao.data.record import check_classes

    pre = model.preprocess
    images = read_folder(root, pre.image_size, pre.resize)
    if images.labels is not None:
        check_classes({"classes": model.class_names}, sorted(set(images.labels)), str(images.root), subset_ok=True)
    return FolderPredictions(images, list(model.class_names), model.probabilities_of_uint8(images.pixels, batch_size))
