"""``nao.load``: the model a search or training found, as an ``nn.Module`` with its preprocessing.

>>> import nao
>>> m = nao.load("runs/search-x")  # doctest: +SKIP
>>> m.predict([PIL.Image.open("seven.png")])  # doctest: +SKIP
[[('7', 0.998)]]

:class:`Preprocess` turns raw images (Pillow images, image files, uint8 tensors or arrays of any
size and 1, 3 or 4 channels) into the normalised ``(N, 3, S, S)`` float batch the network was
trained on, the same way the training data were made: converted to RGB, resized to ``S`` (by block
averaging where training shrank CIFAR that way and the size divides, else bilinear as image folders
are read), scaled to 0..1 and standardised with the recorded channel mean/std.

>>> import torch
>>> pre = Preprocess(image_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
>>> pre(torch.full((8, 8), 255, dtype=torch.uint8)).shape  # one grey 8x8 image -> (1, 3, 4, 4)
torch.Size([1, 3, 4, 4])
>>> float(pre(torch.full((3, 4, 4), 255, dtype=torch.uint8)).max())
1.0
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nao.errors import DataError


@dataclass(frozen=True)
class Preprocess:
    """Raw images -> the normalised float batch a model takes (module docstring).

    Attributes:
        image_size: side ``S`` of the square input.
        mean, std: per-channel constants applied to RGB values scaled to 0..1.
        resize: ``area`` (block averaging where the size divides, as CIFAR was shrunk), else bilinear.
    """

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = "bilinear"

    def __call__(self, images: Any) -> torch.Tensor:
        """``(N, 3, S, S)`` float32 from one image or a sequence of them (see :meth:`to_uint8`)."""
        from nao.data.augment import normalize

        return normalize(self.to_uint8(images), tuple(self.mean), tuple(self.std))

    def to_uint8(self, images: Any) -> torch.Tensor:
        """``(N, 3, S, S)`` uint8: resized RGB images, not yet normalised."""
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            items: Sequence[Any] = list(images)
        elif isinstance(images, (list, tuple)):
            items = images
        else:
            items = [images]
        if not items:
            raise DataError("no images given")
        return torch.stack([self._one(x) for x in items])

    def _one(self, image: Any) -> torch.Tensor:
        from nao.data.folder import open_rgb, resize_rgb

        if isinstance(image, (str, os.PathLike)):
            image = open_rgb(Path(image))
        if hasattr(image, "convert") and hasattr(image, "size"):  # a Pillow image, in any mode
            image = torch.from_numpy(np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)
                                                          .transpose(2, 0, 1)))  # (H,W,3) -> (3,H,W)
        chw = _as_chw(image)
        side = chw.shape[-1]
        if chw.shape[-2:] == (self.image_size, self.image_size):
            return chw
        if self.resize == "area" and chw.shape[-2] == side and side % self.image_size == 0:
            from nao.data.cifar import ImageSet, downsample

            return downsample(ImageSet(chw[None], torch.zeros(1)), self.image_size).images[0]
        from PIL import Image

        rgb = Image.fromarray(chw.permute(1, 2, 0).numpy())  # (3,H,W) -> (H,W,3)
        return torch.from_numpy(resize_rgb(rgb, self.image_size))


def _as_chw(image: Any) -> torch.Tensor:
    """A uint8 tensor / array as ``(3, H, W)``: ``(H, W)`` grey, ``(C, H, W)`` tensors, ``(H, W, C)`` arrays."""
    if isinstance(image, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(image))
        if t.dim() == 3:
            t = t.permute(2, 0, 1)  # arrays follow Pillow's (H,W,C)
    elif isinstance(image, torch.Tensor):
        t = image.detach().cpu()
    else:
        raise DataError(f"cannot read an image from a {type(image).__name__}: give Pillow images, files, or uint8 "
                        f"tensors / arrays")
    if t.dtype != torch.uint8:
        raise DataError(f"images must be uint8 (0..255), got {t.dtype}; e.g. (x * 255).round().to(torch.uint8)")
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
        raise DataError(f"an image must be (H, W), (C, H, W) with 1, 3 or 4 channels, got shape {tuple(t.shape)}")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)  # grey -> RGB, as Pillow's convert("RGB") does
    return t[:3].contiguous()  # RGBA -> RGB drops alpha, as Pillow's convert("RGB") does


@dataclass
class LoadedModel:
    """A trained classifier ready to use: :func:`load` returns one.

    Attributes:
        model: ``nn.Module`` in eval mode, normalised ``(N, 3, S, S)`` floats -> ``(N, K)`` logits.
        preprocess: raw images -> the model's input (:class:`Preprocess`).
        class_names: the ``K`` class names, in output order.
        meta: architecture, accuracy at the end of training, data record, notes (``TrainedModel.info()``).
    """

    model: nn.Module
    preprocess: Preprocess
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, images: Any, batch_size: int = 256) -> torch.Tensor:
        """``(N, K)`` class probabilities of raw images (see :class:`Preprocess` for what is accepted)."""
        x = self.preprocess.to_uint8(images)
        return self.probabilities_of_uint8(x, batch_size)

    def probabilities_of_uint8(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """``(N, K)`` class probabilities of already resized ``(N, 3, S, S)`` uint8 images."""
        from nao.data.augment import normalize

        device = next(self.model.parameters()).device
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                batch = normalize(x[i : i + batch_size].to(device), tuple(self.preprocess.mean), tuple(self.preprocess.std))
                out.append(torch.softmax(self.model(batch).float(), dim=1).cpu())
        return torch.cat(out)

    def predict(self, images: Any, top_k: int = 1) -> list[list[tuple[str, float]]]:
        """For each image, its ``top_k`` (class name, probability) pairs, most likely first."""
        probs = self.probabilities(images)
        k = min(top_k, probs.shape[1])
        p, idx = probs.topk(k, dim=1)
        return [[(self.class_names[int(j)], float(q)) for q, j in zip(row_p, row_i)] for row_p, row_i in zip(p, idx)]


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """The trained model of a run directory (``nao search``), a ``nao train`` folder, or a ``checkpoint.pt``.

    Returns a :class:`LoadedModel` (model in eval mode on ``device``, preprocessing, class names). Raises a
    one-line :class:`~nao.errors.NaoError` for anything without a trained image model (see
    :func:`nao.deploy.model.open_trained`); ``meta["notes"]`` says what was assumed for an older checkpoint.
    """
    from nao.deploy.model import open_trained

    trained = open_trained(path)
    rec = trained.record
    pre = Preprocess(int(rec["image_size"]), tuple(rec["mean"]), tuple(rec["std"]), rec.get("resize", "bilinear"))
    return LoadedModel(trained.model.to(device).eval(), pre, trained.class_names, trained.info())
