"""Training evaluator: score each architecture by training it briefly from scratch.

Every candidate gets the same seeded network initialisation scheme, data split and schedule
(a :class:`~nao.nn.network.NetworkConfig` and a :class:`~nao.train.classifier.TrainConfig`):
it is trained on the ``train`` split and reports ``val_acc`` (a fraction) on ``val``. The
test split is used only with ``report_test=True`` (for reports; search never sees ``test*``
metrics). A run that diverges or runs out of memory becomes a failed
:class:`~nao.results.Result` instead of an exception.

With ``checkpoint_root``, each candidate trains in ``checkpoint_root/<candidate_id>`` with a
checkpoint after every epoch, so an evaluation killed mid-way continues from its last epoch
when it is evaluated again, and a finished one is answered from its ``result.json``.

The evaluator is shipped to process-pool and Ray workers by pickling: it holds only CPU
tensors and a device *name*; the data moves to the device lazily, once per worker.

One module of about 400 lines: evaluation, per-candidate checkpoints and continuation at a
fidelity (:meth:`TrainingEvaluator.evaluate_at`) share the same candidate directory and result
cache, which splitting would have to expose as an interface of their own.

>>> import numpy as np, torch
>>> from nao.data.cifar import ImageSet
>>> from nao.spaces import get_space
>>> g = torch.Generator().manual_seed(0)
>>> data = ImageSet(torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=g),
...                 torch.randint(0, 2, (32,), generator=g))
>>> space = get_space("darts")
>>> ev = TrainingEvaluator(space, data, data, network=NetworkConfig(channels=4, layers=1, num_classes=2,
...                        auxiliary=False), train_config=TrainConfig(epochs=1, batch_size=16, eval_every=0))
>>> r = ev.evaluate([space.sample(np.random.default_rng(0))])[0]
>>> r.status, 0.0 <= r.metrics["val_acc"] <= 1.0, r.info["epochs"]
('ok', True, 1)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from nao.data.augment import AugmentConfig
from nao.data.cifar import CifarData, ImageSet, load_cifar, split_train_val, subset
from nao.data.digits import ImageSplits
from nao.data.paths import data_root
from nao.device import is_oom
from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.nn.network import NetworkConfig, build_network, count_parameters
from nao.nn.supernet import check_image_size
from nao.registry import EVALUATORS
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from nao.train.classifier import TrainConfig, make_runtime, train_classifier

log = logging.getLogger(__name__)

#: The finished candidate's outcome, written last: its presence means "done, do not retrain".
RESULT_NAME = "result.json"


# -- per-candidate directories (shared with nao.evaluators.lm_training) ---------------------------
def candidate_id(space: SearchSpace, arch: Architecture) -> str:
    """A stable, file-name-safe id of ``arch``: 16 hex digits of the SHA-1 of its formatted string.

    The formatted string (not Python's ``hash``) keeps the id equal across processes and runs.

    >>> from nao.spaces import get_space
    >>> sp = get_space("nb201")
    >>> a = sp.sample(__import__("numpy").random.default_rng(0))
    >>> len(candidate_id(sp, a)), candidate_id(sp, a) == candidate_id(sp, a)
    (16, True)
    """
    return hashlib.sha1(f"{space.name}:{space.format(arch)}".encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so metas compare equal."""
    return json.loads(json.dumps(value, default=str))


def check_meta(where: Path, found: Mapping[str, Any] | None, meta: Mapping[str, Any]) -> None:
    """ConfigError unless a candidate directory's stored ``meta`` is ``meta``.

    A mismatch means the directory was written by another architecture or other settings
    (a reused run directory); resuming it would silently mix two experiments.
    """
    if found is None or _plain(found) == _plain(meta):
        return
    diff = sorted(k for k in set(found) | set(meta) if _plain(found.get(k)) != _plain(meta.get(k)))
    raise ConfigError(
        f"{where} was written for different settings ({', '.join(diff)} differ, e.g. arch "
        f"{found.get('arch')!r} vs {meta.get('arch')!r}); use a new run directory"
    )


def rung_result_name(epochs: float | None) -> str:
    """The result file of a candidate trained to ``epochs`` (a fidelity rung); None: the full training.

    >>> rung_result_name(None), rung_result_name(3)
    ('result.json', 'result_e3.json')
    """
    return RESULT_NAME if epochs is None else f"result_e{epochs:g}.json"


def read_cached(out: Path, arch: Architecture, meta: Mapping[str, Any], name: str = RESULT_NAME) -> Result | None:
    """The stored :class:`Result` of a finished candidate in ``out`` (None if not finished)."""
    path = out / name
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a torn write (should not happen: written atomically): retrain from the checkpoint
    check_meta(path, rec.get("meta"), meta)
    info = {**rec.get("info", {}), "cached": True}
    return Result(arch, rec["status"], dict(rec.get("metrics", {})), float(rec.get("cost_s", 0.0)),
                  rec.get("error"), info, fidelity=rec.get("fidelity"), cost=float(rec.get("cost", 0.0)))


def write_cached(out: Path, result: Result, meta: Mapping[str, Any], name: str = RESULT_NAME) -> None:
    """Atomically record a finished candidate's outcome in ``out/result.json`` (or ``name``)."""
    rec = {"status": result.status, "metrics": result.metrics, "cost_s": result.cost_s, "error": result.error,
           "info": result.info, "fidelity": result.fidelity, "cost": result.cost, "meta": dict(meta)}
    out.mkdir(parents=True, exist_ok=True)  # a run can fail before its first checkpoint
    tmp = out / (name + ".tmp")
    tmp.write_text(json.dumps(rec, indent=2, default=str) + "\n")
    os.replace(tmp, out / name)


def _last_rung(out: Path | None, prefix: str, below: float) -> float:
    """The highest rung (``prefix<N>.json``) a candidate directory holds a result for below ``below`` (0: none).

    What a promotion has already paid for: its cost is what it adds beyond that, even when a killed run
    had trained part of the way before (those epochs were never journaled).
    """
    if out is None or not out.is_dir():
        return 0.0
    done = [float(p.name[len(prefix):-5]) for p in out.glob(f"{prefix}*.json")]
    return max((d for d in done if d < below), default=0.0)


# -- the evaluator ----------------------------------------------------------------------------------
def _check_labels(name: str, data: ImageSet, num_classes: int) -> None:
    if len(data) == 0:
        raise ConfigError(f"training evaluator: the {name} split is empty")
    top = int(data.labels.max())
    if top >= num_classes:
        raise ConfigError(f"training evaluator: the {name} split has label {top} but the network has "
                          f"num_classes={num_classes}")


@EVALUATORS.register("training")
class TrainingEvaluator(Evaluator):
    """Short from-scratch training of each candidate on already-split image data.

    Each result's ``fidelity`` is the epochs trained and its ``cost`` those epochs times the
    training images (unit ``image_epochs``); ``cost_s`` keeps the seconds.

    Args:
        space: a conv cell space (``nao``, ``nao-ws``, ``darts``).
        train, val, test: uint8 :class:`ImageSet` splits (CPU); ``test`` only for ``report_test``.
        network: network shape; ``num_classes`` must cover the labels.
        train_config: the schedule (epochs, batch size, lr, augmentation...); its ``seed`` is
            replaced by ``seed`` when that is given.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``, resolved in the worker that trains.
        seed: seeds the initialisation and the batch order (the same for every candidate);
            ``None``: ``train_config.seed``.
        checkpoint_root: if given, candidate ``a`` trains in ``checkpoint_root/candidate_id(a)``,
            checkpointed each epoch and resumed from there.
        report_test: also report ``test_acc``/``test_loss`` (reports only).
        **cifar: the older CIFAR-loading arguments (``data``, ``dataset``, ``data_dir``, ``epochs``,
            ``channels``...), used when ``train`` is not given: see :meth:`from_cifar`.
    """

    batch_size = 1  # candidates are trained one at a time
    cost_unit = "image_epochs"

    def __init__(
        self,
        space: SearchSpace,
        train: ImageSet | None = None,
        val: ImageSet | None = None,
        test: ImageSet | None = None,
        *,
        network: NetworkConfig | None = None,
        train_config: TrainConfig | None = None,
        device: str = "cpu",
        seed: int | None = None,
        checkpoint_root: str | os.PathLike | None = None,
        report_test: bool = False,
        **cifar: Any,
    ) -> None:
        if not (hasattr(space, "cells") and hasattr(space, "concat")):
            raise ConfigError(f"the training evaluator needs a conv cell space (nao, nao-ws, darts), not {space.name!r}")
        if train is None:  # the CIFAR-loading constructor of earlier versions
            train, val, test, network, train_config = _cifar_parts(seed=0 if seed is None else seed,
                                                                   report_test=report_test, **cifar)
        elif cifar:
            raise ConfigError(f"training evaluator: unexpected argument(s) {', '.join(sorted(cifar))} with train=")
        if val is None:
            raise ConfigError("training evaluator: a validation split (val=) is required")
        if report_test and test is None:
            raise ConfigError("training evaluator: report_test=True needs a test split")
        network = network or NetworkConfig(channels=16, layers=1, auxiliary=False)
        train_config = train_config or TrainConfig(epochs=2, batch_size=64, aux_weight=0.0, eval_every=0)
        if seed is not None:
            train_config = replace(train_config, seed=seed)
        if train_config.epochs <= 0 or train_config.batch_size <= 0:
            raise ConfigError("training evaluator: epochs and batch_size must be positive")
        if train_config.batch_size > len(train):
            raise ConfigError(f"training evaluator: batch size {train_config.batch_size} is larger than the "
                              f"{len(train)} training images")
        image_size = int(train.images.shape[-1])
        check_image_size(image_size)
        if network.auxiliary and image_size < 32:
            network = replace(network, auxiliary=False)  # the auxiliary head assumes the 8x8 map of a 32x32 input
        for name, part in (("train", train), ("val", val), ("test", test if report_test else None)):
            if part is not None:
                _check_labels(name, part, network.num_classes)
        self.space = space
        self.network, self.train_config = network, train_config
        self.device = device
        self.seed = train_config.seed
        self.checkpoint_root = Path(checkpoint_root) if checkpoint_root is not None else None
        # CPU copies in the pickled state; _sets() moves them to the device in the worker.
        self.train, self.val = train.to("cpu"), val.to("cpu")
        self.test = test.to("cpu") if report_test and test is not None else None
        self._on_device: dict[str, ImageSet] | None = None
        self._runtime = None

    @classmethod
    def from_splits(
        cls,
        space: SearchSpace,
        splits: ImageSplits,
        network: NetworkConfig | None = None,
        train_config: TrainConfig | None = None,
        **kwargs: Any,
    ) -> TrainingEvaluator:
        """An evaluator on an :class:`ImageSplits` (digits, CIFAR via ``nao.ws.load_splits``, a folder).

        ``network.num_classes`` is set from ``splits``, and ``train_config.augment`` from
        ``splits.augment`` (none when the splits have none); other keyword arguments go to the
        constructor (``device``, ``seed``, ``checkpoint_root``, ``report_test``).
        """
        network = replace(network or NetworkConfig(channels=16, layers=1, auxiliary=False),
                          num_classes=splits.num_classes)
        augment = splits.augment or AugmentConfig(crop_padding=0, flip=False, cutout=0)
        train_config = replace(train_config or TrainConfig(epochs=2, batch_size=64, aux_weight=0.0, eval_every=0),
                               augment=augment)
        return cls(space, splits.train, splits.val, splits.test, network=network, train_config=train_config, **kwargs)

    @classmethod
    def from_cifar(cls, space: SearchSpace, **kwargs: Any) -> TrainingEvaluator:
        """The CIFAR-loading constructor: ``dataset`` (``cifar10``/``cifar100``), ``data_dir``,
        ``data`` (a loaded :class:`CifarData`), ``download``, ``epochs``, ``channels``, ``layers``,
        ``train_size``, ``val_size``, ``batch_size``, ``lr``, ``weight_decay``, ``cutout``, plus the
        constructor's ``device``, ``seed``, ``checkpoint_root``, ``report_test``."""
        return cls(space, **kwargs)

    # -- pickling: CPU state only -------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_on_device"], state["_runtime"] = None, None  # may hold CUDA tensors
        return state

    def _sets(self) -> dict[str, ImageSet]:
        if self._on_device is None:
            self._runtime = make_runtime(self.device)
            dev = self._runtime.device
            # Moved once per worker; every candidate then trains from the same tensors.
            sets = {"train": self.train, "val": self.val} | ({"test": self.test} if self.test is not None else {})
            self._on_device = {k: v.to(dev) for k, v in sets.items()}
        return self._on_device

    # -- evaluation ---------------------------------------------------------------------------
    def candidate_dir(self, arch: Architecture) -> Path | None:
        """Where ``arch`` trains and checkpoints (None without ``checkpoint_root``)."""
        return self.checkpoint_root / candidate_id(self.space, arch) if self.checkpoint_root else None

    def candidate_meta(self, arch: Architecture) -> dict[str, Any]:
        """What a candidate's checkpoint must have been written for to be resumed."""
        return {"task": "cifar", "space": self.space.name, "arch": self.space.format(arch),
                "network": asdict(self.network), "train_config": self.train_config.to_dict(),
                "train_images": len(self.train), "val_images": len(self.val)}

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        return [self._one(arch) for arch in archs]

    #: Fidelity unit of :meth:`evaluate_at` (what ``--fidelity`` rungs count).
    fidelity_unit = "epochs"

    @property
    def max_fidelity(self) -> float:
        """The top rung: the planned training (``train_config.epochs``)."""
        return float(self.train_config.epochs)

    def evaluate_at(self, archs: Sequence[Architecture], epochs: float) -> list[Result]:
        """Train each of ``archs`` up to ``epochs`` (a fidelity rung) and score it there.

        A candidate already trained to a lower rung *continues from its checkpoint*; the learning
        rate follows the cosine schedule planned for ``train_config.epochs`` (the top rung), so a
        candidate promoted rung by rung ends bit-for-bit as if it had been trained to the top at
        once. Needs ``checkpoint_root`` (the checkpoints are what a promotion continues from).
        """
        if self.checkpoint_root is None:
            raise ConfigError("--fidelity needs candidate checkpoints to continue from (checkpoint_root)")
        top = int(self.train_config.epochs)
        until = int(round(epochs))
        if not 1 <= until <= top:
            raise ConfigError(f"--fidelity: rung of {epochs:g} epochs outside 1..{top}")
        return [self._one(arch, None if until == top else until, rung=True) for arch in archs]

    def _one(self, arch: Architecture, until: int | None = None, rung: bool = False) -> Result:
        t0 = time.perf_counter()
        out, meta = self.candidate_dir(arch), self.candidate_meta(arch)
        name = rung_result_name(until)
        if out is not None:
            cached = read_cached(out, arch, meta, name)
            if cached is not None:
                return cached
        start_epoch = 0  # epochs already trained: a promotion (or a killed run) continues from there
        if out is not None and (out / CHECKPOINT_NAME).is_file():
            state = load_checkpoint(out / CHECKPOINT_NAME)
            check_meta(out / CHECKPOINT_NAME, state.get("meta"), meta)
            start_epoch = int(state.get("epoch", 0))
        sets = self._sets()
        try:
            model = build_network(self.space, arch, self.network, torch.Generator().manual_seed(self.seed))
            evals = {k: v for k, v in sets.items() if k != "train"}
            run = train_classifier(model, sets["train"], evals, self.train_config, self._runtime, out_dir=out,
                                   resume=True, meta=meta, quiet=True, until_epoch=until)
            result = self._result(arch, run, count_parameters(model) / 1e6, time.perf_counter() - t0)
            if rung:  # a promotion pays only the epochs it adds to its last rung (its checkpoint had the rest)
                result.info["from_epoch"] = start_epoch
                paid = _last_rung(out, "result_e", run.epochs_done)
                result = replace(result, cost=float((run.epochs_done - paid) * len(self.train)))
        except Exception as e:  # an OOM must not end the search; anything else is a bug
            if not is_oom(e):
                raise
            log.warning("out of memory training %s: %s", self.space.format(arch), e)
            # Not cached: another worker (or a smaller batch) may fit it.
            return Result.failed(arch, f"out of memory: {str(e).splitlines()[0]}", time.perf_counter() - t0)
        finally:
            if self._runtime is not None and self._runtime.device.type == "cuda":
                torch.cuda.empty_cache()
        if out is not None:
            write_cached(out, result, meta, name)  # divergence is deterministic: a failure is final too
        return result

    def _result(self, arch: Architecture, run: Any, params_m: float, cost_s: float) -> Result:
        info = {"epochs": run.epochs_done}
        # Compute in image-epochs: every epoch trained (a candidate resumed from its checkpoint after a
        # kill included, as the killed process's share is in no journal record) times the training images.
        spent = {"fidelity": float(run.epochs_done), "cost": float(run.epochs_done * len(self.train))}
        if not run.ok:
            return Result(arch, "failed", {}, cost_s, run.error or "training failed", info, **spent)
        m = run.metrics
        if not all(math.isfinite(m.get(k, math.nan)) for k in ("val_loss", "val_acc")):
            return Result(arch, "failed", {}, cost_s, f"validation loss is {m.get('val_loss')} (diverged)", info,
                          **spent)
        metrics = {"val_acc": m["val_acc"], "val_loss": m["val_loss"], "train_acc": m["train_acc"],
                   "params_m": params_m}
        if self.test is not None:
            metrics["test_loss"], metrics["test_acc"] = m["test_loss"], m["test_acc"]
        return Result(arch, "ok", metrics, cost_s, None, info, **spent)


def _cifar_parts(
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
    seed: int = 0,
    report_test: bool = False,
    download: bool = False,
) -> tuple[ImageSet, ImageSet, ImageSet | None, NetworkConfig, TrainConfig]:
    """(train, val, test, network, train config) of the CIFAR-loading constructor."""
    if epochs <= 0 or channels <= 0 or layers <= 0 or batch_size <= 0:
        raise ConfigError("training evaluator: epochs, channels, layers and batch_size must be positive")
    data = data if data is not None else load_cifar(dataset, data_dir or data_root(), download=download)
    gen = torch.Generator().manual_seed(seed)
    train, val = split_train_val(data.train, val_size, gen)
    train = subset(train, train_size, gen) if train_size else train
    network = NetworkConfig(channels=channels, layers=layers, num_classes=data.num_classes, auxiliary=False)
    train_config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, nesterov=True, aux_weight=0.0,
        augment=AugmentConfig(crop_padding=4, flip=True, cutout=cutout), eval_every=0, seed=seed,
    )
    return train, val, data.test if report_test else None, network, train_config
