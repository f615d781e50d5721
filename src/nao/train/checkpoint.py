"""Atomic training checkpoints: one ``torch.save`` dict per run directory.

A checkpoint holds the model and optimizer states, the epoch/step reached, the metric
history and a ``meta`` dict describing how to rebuild the model (architecture, space,
network config, dataset), so ``nao evaluate --checkpoint FILE`` needs nothing else.
Files are written to a temporary name and renamed, so a crash never leaves half a file.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.pt"
>>> save_checkpoint(path, {"model": {}, "epoch": 3, "meta": {"arch": "x"}})
>>> load_checkpoint(path)["epoch"]
3
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from nao.errors import DataError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (plus a format version) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({**state, "format_version": FORMAT_VERSION}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; DataError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        # Our checkpoints contain only tensors and plain Python values.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as e:
        raise DataError(f"{path}: not a readable nao checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION or "model" not in state:
        raise DataError(f"{path}: not a nao training checkpoint (missing model state or format version)")
    return state
