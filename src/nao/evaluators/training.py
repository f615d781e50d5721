"""Training evaluator: score each architecture by training it briefly from scratch.

Every candidate gets the same seeded network initialisation scheme, data split and
schedule: it is trained for a few epochs on a training split of CIFAR and reports
``val_acc`` (a fraction) on a held-out validation split of the official training set --
the test set is never touched unless ``report_test=True`` (for reports only; search never
sees ``test*`` metrics). A run that diverges or runs out of memory becomes a failed
:class:`~nao.results.Result` instead of an exception.

>>> import numpy as np
>>> from nao.spaces import get_space
>>> from nao.data.paths import data_root
>>> ev = TrainingEvaluator(get_space("darts"), data_dir=data_root(), epochs=1,  # doctest: +SKIP
...                        train_size=2000, val_size=500, channels=8, layers=1)
>>> ev.evaluate([get_space("darts").sample(np.random.default_rng(0))])[0].metrics["val_acc"]  # doctest: +SKIP
0.2...
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import torch

from nao.data.augment import AugmentConfig
from nao.data.cifar import CifarData, ImageSet, load_cifar, split_train_val, subset
from nao.data.paths import data_root
from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.nn.network import NetworkConfig, build_network, count_parameters
from nao.registry import EVALUATORS
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.train.classifier import TrainConfig, evaluate, make_runtime, train_classifier

log = logging.getLogger(__name__)


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return (oom and isinstance(e, oom)) or (isinstance(e, RuntimeError) and "out of memory" in str(e).lower())


@EVALUATORS.register("training")
class TrainingEvaluator(Evaluator):
    """Short from-scratch training of each candidate on a CIFAR train/validation split.

    Args:
        space: a conv cell space (``nao``, ``nao-ws``, ``darts``).
        dataset: ``cifar10`` or ``cifar100``.
        data_dir: where the dataset is (default: :func:`nao.data.paths.data_root`).
        data: an already loaded :class:`CifarData` (skips ``dataset``/``data_dir``).
        epochs: training epochs per candidate.
        channels, layers: network size (F, N); small by default so a candidate costs minutes.
        train_size: train on a seeded subset of this many images (``None``: the whole split).
        val_size: validation images held out of the official training set.
        batch_size, lr, weight_decay: SGD settings (cosine schedule, momentum 0.9, Nesterov).
        cutout: cutout size of the training augmentation (0 disables).
        device: ``cpu``, ``cuda`` or ``auto``.
        seed: seeds the split, the initialisation and the batch order (same for every candidate).
        report_test: also report ``test_acc`` on the official test set (reports only).
        download: fetch the dataset if absent.
    """

    batch_size = 1  # candidates are trained one at a time

    def __init__(
        self,
        space: SearchSpace,
        dataset: str = "cifar10",
        data_dir: str | os.PathLike | None = None,
        data: CifarData | None = None,
        epochs: int = 2,
        channels: int = 16,
        layers: int = 1,
        train_size: int | None = 10_000,
        val_size: int = 5_000,
        batch_size: int = 64,
        lr: float = 0.05,
        weight_decay: float = 3e-4,
        cutout: int = 0,
        device: str = "cpu",
        seed: int = 0,
        report_test: bool = False,
        download: bool = False,
    ) -> None:
        if not (hasattr(space, "cells") and hasattr(space, "concat")):
            raise ConfigError(f"the training evaluator needs a conv cell space (nao, nao-ws, darts), not {space.name!r}")
        if epochs <= 0 or channels <= 0 or layers <= 0 or batch_size <= 0:
            raise ConfigError("training evaluator: epochs, channels, layers and batch_size must be positive")
        self.space = space
        self.runtime = make_runtime(device)
        data = data if data is not None else load_cifar(dataset, data_dir or data_root(), download=download)
        gen = torch.Generator().manual_seed(seed)
        train, val = split_train_val(data.train, val_size, gen)
        train = subset(train, train_size, gen) if train_size else train
        # Moved to the device once; every candidate then trains from the same tensors.
        self.train, self.val = train.to(self.runtime.device), val.to(self.runtime.device)
        self.test: ImageSet | None = data.test.to(self.runtime.device) if report_test else None
        self.network = NetworkConfig(channels=channels, layers=layers, num_classes=data.num_classes, auxiliary=False)
        self.train_config = TrainConfig(
            epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, nesterov=True, aux_weight=0.0,
            augment=AugmentConfig(crop_padding=4, flip=True, cutout=cutout), eval_every=0, seed=seed,
        )
        self.seed = seed

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        return [self._one(arch) for arch in archs]

    def _one(self, arch: Architecture) -> Result:
        t0 = time.perf_counter()
        try:
            model = build_network(self.space, arch, self.network, torch.Generator().manual_seed(self.seed))
            run = train_classifier(model, self.train, {"val": self.val}, self.train_config, self.runtime, quiet=True)
            if not run.ok:
                return Result.failed(arch, run.error or "training failed", time.perf_counter() - t0)
            metrics = {
                "val_acc": run.metrics["val_acc"],
                "val_loss": run.metrics["val_loss"],
                "train_acc": run.metrics["train_acc"],
                "params_m": count_parameters(model) / 1e6,
            }
            if self.test is not None:
                metrics["test_loss"], metrics["test_acc"] = evaluate(model, self.test, self.runtime)
            return Result(arch, "ok", metrics, time.perf_counter() - t0, info={"epochs": run.epochs_done})
        except Exception as e:  # an OOM must not end the search; anything else is a bug
            if not _is_oom(e):
                raise
            log.warning("out of memory training %s: %s", self.space.format(arch), e)
            return Result.failed(arch, f"out of memory: {str(e).splitlines()[0]}", time.perf_counter() - t0)
        finally:
            if self.runtime.device.type == "cuda":
                torch.cuda.empty_cache()
