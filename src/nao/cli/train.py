"""``nao train`` and ``nao evaluate``: train one architecture from scratch, score a checkpoint.

``nao train --arch NAME|STRING`` takes a known name (``nao.spaces.known``: NAONet-A,
NAONet-WS, NAONet-B, DARTS-V2) or a genotype / official NAO integer string; its space is
``--space`` or the first cell preset that parses it. The architecture is checked before
any data is read or model built. Training writes ``checkpoint.pt`` and ``metrics.json`` to
``--out`` every epoch; ``--resume`` continues from there. A diverged run exits with 1.

Tasks: ``--task cifar`` (default) trains on CIFAR-10/100 or, with ``--dataset folder --data-dir DIR``,
on a user's image-folder tree (one sub-folder per class; seeded train / validation / test split,
images resized to ``--image-size``); other tasks plug into ``TASKS``.

Slightly over 400 lines: the flags of ``nao train`` and ``nao evaluate`` are still written out here
(mapped to dotted settings in one table) rather than declared and generated as ``nao search``'s are.

>>> from nao.cli import build_parser
>>> args = build_parser().parse_args(["train", "--arch", "darts-v2", "--out", "/tmp/x"])
>>> args.task, args.dataset
('cifar', 'cifar10')
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from nao.errors import ConfigError
from nao.train.checkpoint import CHECKPOINT_NAME

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``evaluate`` subcommands."""
    p = subparsers.add_parser("train", help="train one architecture from scratch (CIFAR-10/100)")
    p.add_argument("--task", choices=sorted(TASKS), default="cifar", help="what to train (default: cifar)")
    p.add_argument("--arch", required=True, help="known name (naonet-a, naonet-ws, naonet-b, darts-v2) or string")
    p.add_argument("--space", default=None, help="space of a string --arch (default: try darts, nao, nao-ws)")
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "folder"],
                   help="cifar10, cifar100, or folder: your own images in --data-dir, one sub-folder per class")
    p.add_argument("--data-dir", default=None,
                   help="folder holding the dataset (default: $NAO_DATA or ../shared/data); with --dataset folder, "
                        "the image-folder tree itself")
    p.add_argument("--image-size", type=int, default=None,
                   help="train on S x S images (folder: every image resized, default 32; CIFAR: shrunk by area "
                        "averaging, S must divide 32)")
    p.add_argument("--download", action="store_true", help="download the dataset if it is not in --data-dir")
    p.add_argument("--preset", choices=["paper", "small"], default=None,
                   help="network size and schedule (default: paper on CUDA, small on CPU)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--channels", type=int, default=None, help="F, channels of the first stage")
    p.add_argument("--layers", type=int, default=None, help="N, normal cells per stage")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--drop-path", type=float, default=None, help="final drop-path probability")
    p.add_argument("--cutout", type=int, default=None, help="cutout size (0 disables)")
    p.add_argument("--aux-weight", type=float, default=None, help="auxiliary loss weight (0 removes the head)")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--subset", type=int, default=None, help="train on a seeded random subset of K images")
    p.add_argument("--val-size", type=int, default=0, help="hold out V training images as a validation split")
    p.add_argument("--test-subset", type=int, default=None, help="evaluate on a seeded subset of K test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA only)")
    p.add_argument("--no-bf16", action="store_true", help="disable bf16 autocast on CUDA")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC memory format (default: on; faster on CPU too)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="YAML file of settings on top of the preset (network.*, train.*; --task ptb: the LM config)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="settings",
                   help="one setting on top of preset, --config and flags, dotted (e.g. train.lr=0.05); repeatable")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    p.add_argument("--out", required=True, help="run directory (checkpoint.pt, metrics.json)")
    from nao.cli.lm import add_lm_train_args  # --task ptb flags (the shared ones above are reused)

    add_lm_train_args(p)
    p.set_defaults(func=run_train)

    e = subparsers.add_parser("evaluate", help="accuracy of a training checkpoint")
    e.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by nao train")
    e.add_argument("--data-dir", default=None, help="folder holding the dataset (default: $NAO_DATA or ../shared/data)")
    e.add_argument("--split", choices=["test", "train"], default="test")
    e.add_argument("--device", default="cpu")
    e.add_argument("--batch-size", type=int, default=500)
    e.add_argument("--subset", type=int, default=None, help="score only the first K images of the split")
    e.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    """Dispatch ``nao train`` on ``--task``."""
    return TASKS[args.task](args)


def run_evaluate(args: argparse.Namespace) -> int:
    """Dispatch ``nao evaluate`` on the task recorded in the checkpoint."""
    from nao.train.checkpoint import load_checkpoint

    state = load_checkpoint(args.checkpoint)
    task = state.get("meta", {}).get("task", "cifar")
    if task not in EVALUATE_TASKS:
        raise ConfigError(f"{args.checkpoint}: checkpoint of task {task!r}, which nao evaluate cannot score")
    return EVALUATE_TASKS[task](args, state)


# -- cifar ---------------------------------------------------------------------------------
def _check_positive(**values: int | float | None) -> None:
    for name, v in values.items():
        if v is not None and v <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {v}")


def _check_out_dir(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    if (out / CHECKPOINT_NAME).exists() and not resume:
        raise ConfigError(f"--out {out} already holds {CHECKPOINT_NAME}; pass --resume or choose another --out")


#: ``nao train`` flags (images) -> settings of the training preset (:class:`nao.train.presets.Preset`).
_CIFAR_FLAG_KEYS = {"epochs": ("train.epochs",), "channels": ("network.channels",), "layers": ("network.layers",),
                    "batch_size": ("train.batch_size",), "lr": ("train.lr",), "weight_decay": ("train.weight_decay",),
                    "drop_path": ("network.drop_path",), "cutout": ("train.augment.cutout",),
                    "aux_weight": ("train.aux_weight",), "label_smoothing": ("train.label_smoothing",)}
#: The settings of a ``nao train`` run, in its ``--out`` (a resume must match them).
TRAIN_RECORD = "train_config.json"
#: What a resumed ``nao train`` may change: where it runs and where the data lives.
TRAIN_RESUMABLE = ("device", "threads", "data_dir", "compile", "bf16", "channels_last")


def cifar_configs(args: argparse.Namespace, runtime_device: str) -> tuple[Any, Any, str]:
    """(NetworkConfig, TrainConfig, preset name): the preset (``train/NAME`` in the one registry), then
    ``--config``, the flags and ``--set``, resolved like a search's settings (:func:`nao.config.apply_layers`)."""
    from nao.config import apply_layers
    from nao.presets import preset, setting_layers
    from nao.train.presets import Preset

    preset_name = args.preset or ("paper" if runtime_device.startswith("cuda") else "small")
    flags: dict[str, Any] = {}
    for dest, keys in _CIFAR_FLAG_KEYS.items():
        if getattr(args, dest, None) is not None:
            flags.update({k: getattr(args, dest) for k in keys})
    if args.aux_weight is not None:
        flags["network.auxiliary"] = args.aux_weight > 0  # no head to weight when the weight is 0
    flags["train.seed"] = args.seed
    layers = setting_layers(args.config, flags, args.settings)
    cfg = apply_layers(Preset, preset(f"train/{preset_name}").to_dict(), layers)
    # A folder's own class count is set once it is read.
    net = replace(cfg.network, num_classes=100 if args.dataset == "cifar100" else 10)
    return net, cfg.train, preset_name


def _train_record(args: argparse.Namespace, space: str, arch: str, net: Any, train: Any, preset: str) -> dict[str, Any]:
    """``--out/train_config.json`` of ``nao train``: what was trained, on what, how (a resume must match it)."""
    return {"task": "cifar", "arch": arch, "space": space, "dataset": args.dataset, "preset": preset,
            "data_dir": str(Path(args.data_dir).resolve()) if args.data_dir else None,
            "image_size": args.image_size, "subset": args.subset, "val_size": args.val_size,
            "test_subset": args.test_subset, "seed": args.seed, "device": args.device, "threads": args.threads,
            "compile": args.compile, "bf16": not args.no_bf16, "channels_last": args.channels_last,
            "network": net.to_dict(), "train": train.to_dict()}


def check_train_resume(out: Path, record: dict[str, Any], resume: bool, allowed: tuple[str, ...]) -> None:
    """The resume rule of ``nao train`` (:mod:`nao.runs.resume_policy`): every setting of ``record`` outside
    ``allowed`` must equal ``out/train_config.json``'s."""
    from nao.runs.resume_policy import refuse_changes

    saved = out / TRAIN_RECORD
    if resume and saved.is_file():
        try:
            old = json.loads(saved.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{saved}: not valid JSON ({e})") from None
        refuse_changes(out, old, json.loads(json.dumps(record)), allowed)


def write_train_record(out: Path, record: dict[str, Any]) -> None:
    """Write ``out/train_config.json`` whole (temp file + rename), once every check has passed."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{TRAIN_RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(out / TRAIN_RECORD)


def run_cifar(args: argparse.Namespace) -> int:
    """Train ``--arch`` on CIFAR-10/100; exit 0 when done, 1 when the run diverged."""
    from nao.data.cifar import downsample, load_cifar, split_train_val, subset
    from nao.data.paths import data_root
    from nao.data.record import data_record, make_record
    from nao.nn.network import build_network, count_flops, count_parameters
    from nao.spaces.resolve import resolve_arch
    from nao.train.classifier import make_runtime, train_classifier

    # Validate everything cheap first: the architecture, the flags, the output directory.
    space, arch = resolve_arch(args.arch, args.space, family="cell")
    _check_positive(epochs=args.epochs, channels=args.channels, layers=args.layers, batch_size=args.batch_size,
                    subset=args.subset, test_subset=args.test_subset, lr=args.lr)
    if args.val_size < 0:
        raise ConfigError(f"--val-size must be >= 0, got {args.val_size}")
    _check_image_flags(args)
    if args.threads is not None:
        _check_positive(threads=args.threads)
        torch.set_num_threads(args.threads)  # process-wide, chosen once at the top of the program
    runtime = make_runtime(args.device, bf16=not args.no_bf16, channels_last=args.channels_last, compile=args.compile)
    net_cfg, train_cfg, preset_name = cifar_configs(args, str(runtime.device))
    out = Path(args.out)
    _check_out_dir(out, args.resume)
    arch_text = space.format(arch)
    record = _train_record(args, space.name, arch_text, net_cfg, train_cfg, preset_name)
    check_train_resume(out, record, args.resume, TRAIN_RESUMABLE)
    if args.resume and (out / CHECKPOINT_NAME).exists():
        _check_resume_matches(out / CHECKPOINT_NAME, space.name, arch_text, args)

    gen = torch.Generator().manual_seed(args.seed)
    data_meta: dict[str, Any] = {}
    if args.dataset == "folder":
        from nao.data.folder import load_image_folder

        splits = load_image_folder(args.data_dir, image_size=args.image_size, seed=args.seed)
        net_cfg, train_cfg = replace(net_cfg, num_classes=splits.num_classes), _scaled_augment(train_cfg, args.image_size)
        train, test = splits.train, splits.test
        evals = {"val": splits.val}
        data_meta = {"data_dir": str(Path(args.data_dir).resolve()), "image_size": args.image_size,
                     "split_seed": args.seed, "classes": splits.info["classes"], "data": data_record(splits, "folder")}
    else:
        data = load_cifar(args.dataset, args.data_dir or data_root(), download=args.download)
        train, test, evals = data.train, data.test, {}
        if args.image_size:
            train, test = downsample(train, args.image_size), downsample(test, args.image_size)
            train_cfg = _scaled_augment(train_cfg, args.image_size)
            data_meta = {"image_size": args.image_size}
        data_meta["data"] = make_record(args.dataset, data.classes, args.image_size or 32, {"source": data.source})
    train = train if args.subset is None else subset(train, args.subset, gen)
    if args.val_size:
        train, evals["val"] = split_train_val(train, args.val_size, gen)
    evals["test"] = test if args.test_subset is None else subset(test, args.test_subset, gen)
    model = build_network(space, arch, net_cfg, torch.Generator().manual_seed(args.seed))
    params, flops = count_parameters(model), count_flops(model)
    meta = {
        "task": "cifar",
        "space": space.name,
        "arch": arch_text,
        "network": asdict(net_cfg),
        "dataset": args.dataset,
        "preset": preset_name,
        "train_images": len(train),
        "test_images": len(evals["test"]),
        "params": params,
        "flops": flops,
        "device": str(runtime.device),
        **data_meta,
    }
    log.info("%s in %s: %.3fM params, %.1fM multiply-adds; %d training images on %s",
             args.arch, space.name, params / 1e6, flops / 1e6, len(train), runtime.device)
    quiet = bool(getattr(args, "quiet", False))
    with _one_writer(out):
        write_train_record(out, record)  # every check has passed: the data is read, the model built
        result = train_classifier(model, train, evals, train_cfg, runtime, out, args.resume, meta, quiet)
    summary = {"status": result.status, "epochs": result.epochs_done, **{k: round(v, 4) for k, v in result.metrics.items()}}
    print(json.dumps(summary))
    if not result.ok:
        print(f"nao train: failed: {result.error}", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _one_writer(out: Path) -> Iterator[None]:
    """Hold ``out``'s writer lock (:class:`nao.rundir.RunLock`) while training writes there."""
    from nao.rundir import RunLock

    out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _check_image_flags(args: argparse.Namespace) -> None:
    """--dataset folder / --image-size combinations, checked before any data is read."""
    from nao.nn.supernet import check_image_size

    _check_positive(image_size=args.image_size)
    if args.dataset == "folder":
        if not args.data_dir:
            raise ConfigError("--dataset folder needs --data-dir DIR (one sub-folder of images per class)")
        if args.val_size:
            raise ConfigError("--val-size does not apply to --dataset folder: its seeded split has a validation part")
        if args.download:
            raise ConfigError("--download does not apply to --dataset folder (your own images)")
        args.image_size = args.image_size or 32
    elif args.image_size and 32 % args.image_size:
        raise ConfigError(f"--image-size {args.image_size}: CIFAR images are shrunk by whole blocks, so it must divide 32")
    if args.image_size:
        check_image_size(args.image_size)


def _scaled_augment(train_cfg: Any, image_size: int | None) -> Any:
    """The preset's crop padding and cutout (sized for 32 x 32) scaled to ``image_size``."""
    if not image_size or image_size == 32:
        return train_cfg
    aug = train_cfg.augment
    scale = image_size / 32
    return replace(train_cfg, augment=replace(aug, crop_padding=round(aug.crop_padding * scale),
                                              cutout=round(aug.cutout * scale)))


def _check_resume_matches(path: Path, space: str, arch_text: str, args: argparse.Namespace) -> None:
    """--resume continues the same architecture on the same data (dataset, image folder, image size)."""
    from nao.train.checkpoint import load_checkpoint

    meta = load_checkpoint(path).get("meta", {})
    if (meta.get("space"), meta.get("arch"), meta.get("dataset")) != (space, arch_text, args.dataset):
        raise ConfigError(
            f"--resume: {path} was trained with {meta.get('arch')} ({meta.get('space')}) on {meta.get('dataset')}, "
            f"not this --arch/--dataset"
        )
    data_dir = str(Path(args.data_dir).resolve()) if args.dataset == "folder" else None
    if (meta.get("data_dir"), meta.get("image_size")) != (data_dir, args.image_size):
        raise ConfigError(f"--resume: {path} was trained on {meta.get('data_dir') or meta.get('dataset')} at image size "
                          f"{meta.get('image_size') or 32}, not this --data-dir/--image-size")


def evaluate_cifar(args: argparse.Namespace, state: dict[str, Any]) -> int:
    """Score an image checkpoint (CIFAR or an image folder) on ``--split`` and print a JSON line."""
    from nao.nn.network import NetworkConfig, build_network
    from nao.spaces import get_space
    from nao.train.classifier import evaluate, make_runtime

    meta = state["meta"]
    if "dataset" not in meta:  # a search's final model (RUN/final/checkpoint.pt): the run's own data
        from nao.deploy.model import run_final_split

        model, split, notes = run_final_split(Path(args.checkpoint), args.split, args.data_dir)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        try:
            space = get_space(meta["space"])
            arch = space.parse(meta["arch"])
            cfg = NetworkConfig(**meta["network"])
        except KeyError as e:
            raise ConfigError(f"{args.checkpoint}: checkpoint metadata lacks {e}") from None
        model = build_network(space, arch, cfg)
        model.load_state_dict(state["model"])
        split = _evaluation_split(meta, args)
    runtime = make_runtime(args.device)
    if args.subset is not None:
        _check_positive(subset=args.subset)
        split = split.take(torch.arange(min(args.subset, len(split))))
    loss, acc = evaluate(model.to(runtime.device), split.to(runtime.device), runtime, args.batch_size)
    print(json.dumps({"checkpoint": str(args.checkpoint), "split": args.split, f"{args.split}_acc": round(acc, 4),
                      f"{args.split}_loss": round(loss, 4), "images": len(split), "epochs": state.get("epoch")}))
    return 0


def _evaluation_split(meta: dict[str, Any], args: argparse.Namespace) -> Any:
    """The ``--split`` images a checkpoint is scored on, read as its training read them."""
    from nao.data.cifar import downsample, load_cifar
    from nao.data.paths import data_root

    if meta["dataset"] == "folder":
        from nao.data.folder import load_image_folder

        # The same tree (--data-dir, or the one recorded), size and seeded split as the training run's.
        where = args.data_dir or meta["data_dir"]
        splits = load_image_folder(where, image_size=meta["image_size"], seed=meta["split_seed"])
        _check_same_data(meta, splits, f"--data-dir {where}" if args.data_dir else str(where))
        return splits.test if args.split == "test" else splits.train
    data = load_cifar(meta["dataset"], args.data_dir or data_root())
    split = data.test if args.split == "test" else data.train
    return downsample(split, meta["image_size"]) if meta.get("image_size") else split


def _check_same_data(meta: dict[str, Any], splits: Any, where: str) -> None:
    """Refuse an image folder that is not the one the checkpoint was trained on (other classes or images)."""
    from nao.data.record import check_classes, check_split_sizes

    record = meta.get("data")
    if record is None:  # written before checkpoints recorded their data: the class names are all there is
        print(f"note: {where}: the checkpoint records no split (older nao); only its class names are checked",
              file=sys.stderr)
        record = {"classes": meta.get("classes") or splits.info["classes"]}
    check_classes(record, splits.info["classes"], where)
    check_split_sizes(record, splits.sizes(), where)


def _run_ptb(args: argparse.Namespace) -> int:
    from nao.cli.lm import run_lm_train  # PTB / WikiText-2 language model (nao.cli.lm)

    return run_lm_train(args)


def _evaluate_ptb(args: argparse.Namespace, state: dict[str, Any]) -> int:
    from nao.cli.lm import evaluate_ptb

    return evaluate_ptb(args, state)


#: ``--task`` name -> runner. Other tasks (e.g. a PTB language model) add themselves here.
TASKS: dict[str, Callable[[argparse.Namespace], int]] = {"cifar": run_cifar, "ptb": _run_ptb}
#: task recorded in a checkpoint -> scorer for ``nao evaluate``.
EVALUATE_TASKS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], int]] = {"cifar": evaluate_cifar, "ptb": _evaluate_ptb}
