"""Image data and retraining shared by the image search kinds (``supernet-cnn``, ``trained-cnn``).

:func:`load_splits` makes the train / validation / test splits of a config's dataset (digits,
CIFAR-10/100 or an image folder); :func:`train_architecture` trains one cell network from scratch;
:func:`rerank` and :func:`final_training` are the end of every image search: the top candidates are
trained briefly from scratch and compared on validation, and the winner is trained with the final
settings on train + validation and tested once (the only time test images are read).

>>> DATASETS
('digits', 'cifar10', 'cifar100', 'folder')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from nao.config import Config
from nao.data.augment import NO_AUGMENT, AugmentConfig
from nao.data.cifar import ImageSet
from nao.data.digits import ImageSplits, load_digits_splits
from nao.data.record import data_record
from nao.device import OutOfMemoryError, short_error
from nao.errors import ConfigError, DataError
from nao.nn.network import CellNetwork, CellSpec, NetworkConfig
from nao.nn.supernet import check_image_size
from nao.rundir import RunDir
from nao.runs.flags import flag
from nao.spaces.base import Architecture
from nao.spaces.cells import ConvCellSpace
from nao.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from nao.train.classifier import TrainConfig, train_classifier

DATASETS = ("digits", "cifar10", "cifar100", "folder")
CIFAR_AUGMENT = AugmentConfig(crop_padding=4, flip=True, cutout=0)


#: The flags of every image search kind (``--dataset``, ``--subset``, ``--image-size``, ``--constraint``).
IMAGE_FLAGS = (
    flag("--dataset", choices=DATASETS, group="data",
         help="digits (embedded), cifar10/100 (binary files) or folder (--data-dir: one sub-folder per class)"),
    flag("--subset", "train_images", type=int, group="data", help="use only this many training images"),
    flag("--image-size", type=int, group="data", help="resize images to this side (default: the preset's)"),
    flag("--constraint", help="e.g. 'params_m<=0.05' or 'flops_m<=10', computed from the architecture before it "
                              "is evaluated, on the child network (--evaluator training) or the final network "
                              "(supernet): only architectures that satisfy it are evaluated"),
)


@dataclass
class ImageSearchFields(Config):
    """The settings every image search kind shares: its data split and its end (rerank, final training).

    Attributes:
        dataset: ``digits`` (embedded), ``cifar10``/``cifar100`` (binary files under ``data_dir``) or ``folder``
            (``data_dir`` holds one sub-folder of images per class).
        data_dir: where the data lives (default: :func:`nao.data.paths.data_root`).
        train_images, test_images: use only this many training / test images (0: all).
        val_images: CIFAR-10 validation images held out of the training set (official search: 5,000).
        image_size: resize the images to this side (0: keep them).
        digits_fractions: digits (train, validation, test) fractions.
        top_k: candidates reranked by brief training from scratch.
        rerank_workers: processes the reranks train in side by side (1: one after another, in this process).
        rerank_network, rerank_train: the brief training (official: 10 epochs at the search width).
        final_network, final_train: the winner's training (reported on the test split).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    train_images: int = 0
    val_images: int = 5000
    test_images: int = 0
    image_size: int = 0
    digits_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    top_k: int = 5
    rerank_workers: int = 1
    rerank_network: NetworkConfig = field(default_factory=NetworkConfig)
    rerank_train: TrainConfig = field(default_factory=TrainConfig)
    final_network: NetworkConfig = field(default_factory=NetworkConfig)
    final_train: TrainConfig = field(default_factory=TrainConfig)


def load_splits(cfg: Any) -> ImageSplits:
    """The dataset of ``cfg`` split into train / validation / test (:class:`DataError` if impossible).

    The one place a dataset name is checked: anything but :data:`DATASETS` is a :class:`ConfigError`.
    """
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"--dataset {cfg.dataset!r}: choose one of {', '.join(DATASETS)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.dataset == "digits":
        splits = load_digits_splits(cfg.seed, cfg.digits_fractions)
        train, val, test = splits.train, splits.val, splits.test
    elif cfg.dataset == "folder":
        from nao.data.folder import load_image_folder

        if not cfg.data_dir:
            raise DataError("--dataset folder needs --data-dir DIR (one sub-folder of images per class)")
        # Resized while read, so the size below is already the images' own.
        splits = load_image_folder(cfg.data_dir, image_size=cfg.image_size or 32, seed=cfg.seed)
        train, val, test = splits.train, splits.val, splits.test
    else:  # cifar10 / cifar100: the official binary files
        from nao.data.cifar import get_format, load_cifar, split_train_val
        from nao.data.paths import data_root

        fmt = get_format(cfg.dataset)
        data = load_cifar(cfg.dataset, cfg.data_dir or data_root())
        if not 0 < cfg.val_images < len(data.train):
            raise DataError(
                f"{fmt.title} has {len(data.train)} training images: too few for a validation split of {cfg.val_images}"
            )
        train, val = split_train_val(data.train, cfg.val_images, gen)
        test = data.test
        splits = ImageSplits(fmt.name, train, val, test, fmt.num_classes, CIFAR_AUGMENT,
                             {"source": data.source, "classes": list(data.classes)})
    train = _first(train, cfg.train_images, gen)
    test = _first(test, cfg.test_images, gen)
    if cfg.image_size and cfg.dataset != "folder":
        from nao.data.cifar import downsample

        train, val, test = (downsample(part, cfg.image_size) for part in (train, val, test))
    for name, part in (("training", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise DataError(f"the {name} split of {cfg.dataset} is empty; the dataset is too small for the requested split")
    return replace(splits, train=train, val=val, test=test,
                   info={**splits.info, "sizes": [len(train), len(val), len(test)]})


def _first(data: ImageSet, n: int, gen: torch.Generator) -> ImageSet:
    """A seeded random ``n`` of ``data`` (all of it for ``n <= 0``)."""
    if n <= 0 or n >= len(data):
        return data
    return data.take(torch.randperm(len(data), generator=gen)[:n])


def build_network(space: ConvCellSpace, arch: Architecture, net: NetworkConfig, num_classes: int,
                  image_size: int, seed: int) -> CellNetwork:
    """A stand-alone :class:`CellNetwork` for ``arch`` (checks the image can be reduced twice)."""
    check_image_size(image_size)
    normal, reduce = space.cells(arch)
    net = replace(net, num_classes=num_classes, in_channels=3)
    if net.auxiliary and image_size < 32:
        net = replace(net, auxiliary=False)  # the auxiliary head assumes the 8x8 map of a 32x32 input
    return CellNetwork(
        CellSpec.from_nodes(normal, space.concat(normal)),
        CellSpec.from_nodes(reduce, space.concat(reduce)),
        net,
        generator=torch.Generator().manual_seed(seed),
    )


def train_architecture(
    space: ConvCellSpace, arch: Architecture, data: ImageSplits, net: NetworkConfig, train: TrainConfig,
    runtime, train_set: ImageSet, evals: Mapping[str, ImageSet], seed: int, out_dir: Path | None = None,
    quiet: bool = True, resume: bool = False, meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``arch`` from scratch; a dict with ``status``, ``metrics``, ``seconds``, ``error``.

    Out-of-memory on the device gives ``status="failed"`` instead of an exception. With ``out_dir``
    the training is checkpointed each epoch (``meta`` stored with it) and ``resume`` continues it.
    """
    t0 = time.perf_counter()
    augment = train.augment if data.augment is not None else NO_AUGMENT
    cfg = replace(train, seed=seed, augment=augment, batch_size=min(train.batch_size, len(train_set)))
    try:
        model = build_network(space, arch, net, data.num_classes, data.image_size, seed)
        if meta is not None:  # the shape actually built (classes, auxiliary head), so the checkpoint rebuilds alone
            meta = {**meta, "network": model.config.to_dict()}
        result = train_classifier(model, train_set, evals, cfg, runtime, out_dir=out_dir, quiet=quiet, resume=resume,
                                  meta=meta)
    except OutOfMemoryError as e:
        if runtime.device.type == "cuda":
            torch.cuda.empty_cache()
        return {"status": "failed", "metrics": {}, "seconds": time.perf_counter() - t0,
                "error": f"out of memory: {short_error(e)}"}
    return {"status": result.status, "metrics": result.metrics, "seconds": result.seconds, "error": result.error}


def join_sets(a: ImageSet, b: ImageSet) -> ImageSet:
    """The examples of ``a`` followed by those of ``b``."""
    return ImageSet(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]))


def rerank(cfg: Any, space: ConvCellSpace, data: ImageSplits, runtime, rundir: RunDir,
           candidates: list[tuple[Architecture, float]], say: Callable[[str], None], quiet: bool,
           resume: bool = False) -> list[dict]:
    """Brief training from scratch of each candidate (train split -> validation); best first.

    With ``cfg.rerank_workers`` > 1 the candidates train side by side in that many processes (each
    training is seeded on its own, so the results do not depend on where it ran). ``rerank.json`` is
    rewritten after each candidate; a resumed run keeps the ones it holds.
    """
    done = {r["arch"]: r for r in rundir.read_json("rerank.json", default=[])} if resume else {}
    results: dict[int, dict] = {}

    def record(i: int, r: dict[str, Any], kept: bool = False) -> None:
        arch, score = candidates[i]
        if kept:
            say(f"  rerank {i + 1}/{len(candidates)}: kept from rerank.json")
        else:
            r = {"arch": space.format(arch), "tokens": list(arch.tokens), "search_score": score, **r}
            shown = f"val_acc {r['metrics']['val_acc']:.4f}" if r["status"] == "ok" else f"failed ({r['error']})"
            say(f"  rerank {i + 1}/{len(candidates)}: search score {score:.4f} -> {shown} ({r['seconds']:.0f}s)")
        results[i] = r
        rundir.write_json("rerank.json", [results[j] for j in sorted(results)])

    todo = []
    for i, (arch, _) in enumerate(candidates):
        if space.format(arch) in done:
            record(i, done[space.format(arch)], kept=True)
        else:
            todo.append(i)
    jobs = {i: (space, candidates[i][0], data, cfg.rerank_network, cfg.rerank_train, runtime, data.train,
                {"val": data.val}, cfg.seed + i) for i in todo}
    workers = min(getattr(cfg, "rerank_workers", 1), len(todo))
    if workers <= 1:
        for i in todo:
            record(i, train_architecture(*jobs[i], quiet=quiet))
    else:
        _rerank_in_processes(jobs, workers, record)
    order = sorted((results[i] for i in sorted(results) if results[i]["status"] == "ok"),
                   key=lambda r: r["metrics"]["val_acc"], reverse=True)
    if not order:
        raise DataError(f"every reranked architecture failed to train; see {rundir.path / 'rerank.json'}")
    return order


def _rerank_in_processes(jobs: dict[int, tuple], workers: int, record: Callable[[int, dict], None]) -> None:
    """Run ``train_architecture(*job)`` for each job in ``workers`` spawned processes of one thread each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: forking a process whose OpenMP runtime is initialised can hang the child.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = {pool.submit(train_architecture, *job, quiet=True): i for i, job in jobs.items()}
        for f in as_completed(futures):
            record(futures[f], f.result())


def final_training(cfg: Any, space: ConvCellSpace, data: ImageSplits, runtime, rundir: RunDir, order: list[dict],
           say: Callable[[str], None], quiet: bool, resume: bool = False) -> tuple[dict | None, dict]:
    """Train the winner on train + validation and test it; fall back to the runner-up if it fails.

    A resumed run continues ``final/checkpoint.pt`` when it holds the same architecture's training.
    """
    final: dict[str, Any] = {}
    out = rundir.path / "final"
    for rec in order:
        arch = space.make(rec["tokens"])
        shown = space.format(arch)
        again = resume and (out / CHECKPOINT_NAME).exists() and _checkpoint_arch(out / CHECKPOINT_NAME) == shown
        say(f"final training ({cfg.final_train.epochs} epochs, F={cfg.final_network.channels}, "
            f"N={cfg.final_network.layers}) of {shown}" + (" (continuing final/checkpoint.pt)" if again else ""))
        final = train_architecture(space, arch, data, cfg.final_network, cfg.final_train, runtime,
                                   join_sets(data.train, data.val), {"test": data.test}, cfg.seed,
                                   out_dir=out, quiet=quiet, resume=again,
                                   meta={"arch": shown, "space": space.name, "data": data_record(data, cfg.dataset)})
        if final["status"] == "ok":
            return rec, final
        say(f"  final training failed ({final['error']}); trying the next candidate")
    return None, final


def _checkpoint_arch(path: Path) -> str | None:
    """The architecture a training checkpoint belongs to (None if it does not say)."""
    try:
        return load_checkpoint(path).get("meta", {}).get("arch")
    except DataError:
        return None


def finish_images(cfg: Any, space: ConvCellSpace, data: Any, runtime: Any, ctx: Any,
                  candidates: list) -> dict[str, Any]:
    """Rerank ``candidates`` ((arch, search score) pairs), train and test the winner: ``result.json`` fields."""
    order = rerank(cfg, space, data, runtime, ctx.rundir, candidates, ctx.say, ctx.quiet, ctx.resumed)
    winner, final = final_training(cfg, space, data, runtime, ctx.rundir, order, ctx.say, ctx.quiet, ctx.resumed)
    result = {
        "winner": winner["arch"] if winner else None,
        "winner_tokens": winner["tokens"] if winner else None,
        "winner_official": space.format_official(space.make(winner["tokens"]))
        if winner and space.name in ("nao", "nao-ws") else None,
        "rerank": ctx.rundir.read_json("rerank.json", default=[]),
        "rerank_val_acc": winner["metrics"]["val_acc"] if winner else None,
        "search_score": winner["search_score"] if winner else None,
        "final": {**final.get("metrics", {}), "arch": winner["arch"] if winner else None,
                  "status": final.get("status"), "seconds": final.get("seconds"), "error": final.get("error"),
                  "epochs": cfg.final_train.epochs},
        "dataset": data.name,
        "sizes": list(data.sizes()),
    }
    if winner is None:
        ctx.rundir.write_json("result.json", result)
        raise DataError(f"the final training failed for every reranked architecture: {final.get('error')}")
    ctx.say(f"winner: {result['winner']}")
    ctx.say(f"test accuracy {result['final']['test_acc']:.4f} after {cfg.final_train.epochs} epochs; "
            f"run directory: {ctx.rundir.path}")
    return result
