"""Open the trained model of a run directory or a training checkpoint, ready for inference.

:func:`open_trained` accepts what a user has after a search or a training:

- a search run directory with a final training (``supernet-cnn``, ``trained-cnn``): ``DIR/final/checkpoint.pt``;
- a ``nao train`` output folder (``DIR/checkpoint.pt``) or any such ``checkpoint.pt`` itself.

It rebuilds the network in eval mode without its training-only parts (the auxiliary head is left
out, drop path is never applied in eval mode) and wraps it so that it returns logits only. The
:class:`TrainedModel` also carries what inference needs: input size, channel mean/std, class names,
architecture, the accuracy measured at the end of training. Checkpoints record what they were trained
on (:mod:`nao.data.record`); for older ones without that record the values are rebuilt from the run's
``config.json`` and the checkpoint itself, and :attr:`TrainedModel.notes` says what was assumed.

Anything else (a missing path, a foreign file, a tabular run, a run stopped before its final
training, an unfinished training, a language model: see :mod:`nao.deploy.lm`) is a one-line :class:`~nao.errors.NaoError`.

>>> import tempfile
>>> open_trained(tempfile.mkdtemp())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
nao.errors.DataError: ...: neither a search run directory nor a nao train output folder (no final/checkpoint.pt or checkpoint.pt)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nao.data.record import NATIVE_SIZE, make_record
from nao.deploy.lm import is_language_model
from nao.errors import ConfigError, DataError
from nao.train.checkpoint import CHECKPOINT_NAME, load_checkpoint


class Classifier(nn.Module):
    """A network returning ``(logits, aux)`` (or logits) seen as one returning logits only."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[0] if isinstance(out, tuple) else out


@dataclass
class TrainedModel:
    """A trained image classifier and what inference needs.

    Attributes:
        model: :class:`Classifier` in eval mode on the CPU, ``(B, 3, S, S)`` normalised floats -> ``(B, K)`` logits.
        record: the data record (:mod:`nao.data.record`): classes, image size, resize, mean, std, split.
        arch, space: the architecture string and its space.
        network: the network's shape (:class:`~nao.nn.network.NetworkConfig` fields).
        metrics: accuracies measured at the end of training (e.g. ``test_acc``), fractions.
        epochs: epochs trained.
        checkpoint: the file the weights came from.
        notes: what had to be assumed for an older checkpoint (empty when it records everything).
    """

    model: nn.Module
    record: dict[str, Any]
    arch: str
    space: str
    network: dict[str, Any]
    metrics: dict[str, float]
    epochs: int
    checkpoint: Path
    notes: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return list(self.record["classes"])

    @property
    def image_size(self) -> int:
        return int(self.record["image_size"])

    def info(self) -> dict[str, Any]:
        """JSON-ready description (the file written beside an export)."""
        return {
            "arch": self.arch,
            "space": self.space,
            "image_size": self.image_size,
            "mean": self.record["mean"],
            "std": self.record["std"],
            "class_names": self.class_names,
            "accuracy": self.metrics,
            "epochs": self.epochs,
            "network": self.network,
            "data": self.record,
            "checkpoint": str(self.checkpoint),
            "notes": self.notes,
        }


def find_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """(checkpoint file, the run's ``config.json`` or None) for a run directory, output folder or file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory (give a run directory or a checkpoint.pt)")
    if p.is_file():
        run = p.parent.parent if p.parent.name == "final" else None
        return p, _read_config(run) if run is not None and (run / "config.json").is_file() else None
    if (p / "final" / CHECKPOINT_NAME).is_file():
        return p / "final" / CHECKPOINT_NAME, _read_config(p) if (p / "config.json").is_file() else None
    if (p / CHECKPOINT_NAME).is_file():
        return p / CHECKPOINT_NAME, None
    if (p / "config.json").is_file():
        kind = _read_config(p).get("kind")
        if kind == "tabular":
            raise DataError(f"{p}: a tabular run: its candidates were looked up in a benchmark table, never trained, "
                            f"so there is no model to use")
        if kind == "supernet-rnn":
            raise DataError(f"{p}: a supernet-rnn run has no final training, so there is no trained model; train its "
                            f"winner with nao train --task ptb --arch ARCH")
        raise DataError(f"{p}: no final model (final/{CHECKPOINT_NAME}): the run stopped before its final training; "
                        f"finish it with nao search --resume {p}")
    raise DataError(f"{p}: neither a search run directory nor a nao train output folder "
                    f"(no final/{CHECKPOINT_NAME} or {CHECKPOINT_NAME})")


def _read_config(run: Path) -> dict[str, Any]:
    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{run / 'config.json'}: not readable JSON ({e})") from None
    if not isinstance(config, dict):
        raise DataError(f"{run / 'config.json'}: not a run config (a JSON object)")
    return config


def open_trained(path: str | Path) -> TrainedModel:
    """The trained image classifier of a run directory, ``nao train`` folder or checkpoint (module docstring)."""
    ckpt, run_config = find_checkpoint(path)
    state = load_checkpoint(ckpt)
    meta = state.get("meta") or {}
    if is_language_model(state, run_config):
        raise ConfigError(f"{ckpt}: a language model (PTB / WikiText-2); nao load and predict handle image "
                          f"classifiers only (nao export --format torchscript exports it one step per call)")
    _check_finished(ckpt, state, run_config)
    notes: list[str] = []
    net = _network(ckpt, state, meta, run_config, notes)
    record = meta.get("data") or _old_record(ckpt, meta, run_config, net, notes)
    history = state.get("history") or [{}]
    metrics = {k: float(v) for k, v in history[-1].items() if k.endswith("_acc") and k != "train_acc"}
    return TrainedModel(net, record, str(meta["arch"]), str(meta["space"]), asdict(net.net.config), metrics,
                        int(state.get("epoch", 0)), ckpt, notes)


def _check_finished(ckpt: Path, state: dict[str, Any], run_config: dict[str, Any] | None) -> None:
    planned = int(state["train_config"].get("epochs", 0))
    done = int(state.get("epoch", 0))
    if done < planned:
        how = f"nao search --resume {ckpt.parent.parent}" if run_config is not None else "nao train ... --resume"
        raise DataError(f"{ckpt}: training stopped at epoch {done} of {planned}; finish it first ({how})")


def _network(ckpt: Path, state: dict[str, Any], meta: dict[str, Any], run_config: dict[str, Any] | None,
             notes: list[str]) -> Classifier:
    from nao.nn.network import NetworkConfig, build_network
    from nao.spaces import get_space

    if "arch" not in meta or "space" not in meta:
        raise DataError(f"{ckpt}: checkpoint metadata names no architecture (meta.arch / meta.space)")
    space = get_space(meta["space"])
    arch = space.parse(meta["arch"])
    if "network" in meta:
        cfg = NetworkConfig(**meta["network"])
    elif run_config is not None and "final_network" in run_config:
        cfg = NetworkConfig(**run_config["final_network"])
    else:
        raise DataError(f"{ckpt}: checkpoint metadata lacks the network shape (meta.network) and no run config.json "
                        f"is beside it")
    weights = state["model"]
    if "classifier.weight" not in weights:
        raise DataError(f"{ckpt}: the weights are not a cell network's (no classifier.weight)")
    # The class count comes from the weights themselves: an old run config says 10 whatever the data had.
    # Inference never uses the auxiliary head or drop path: build without them.
    cfg = replace(cfg, num_classes=int(weights["classifier.weight"].shape[0]), auxiliary=False, drop_path=0.0)
    model = build_network(space, arch, cfg)
    kept = {k: v for k, v in weights.items() if not k.startswith("auxiliary_head.")}
    try:
        model.load_state_dict(kept)
    except RuntimeError as e:
        raise DataError(f"{ckpt}: weights do not fit {meta['arch']} ({str(e).splitlines()[0]})") from None
    return Classifier(model).eval()


def _old_record(ckpt: Path, meta: dict[str, Any], run_config: dict[str, Any] | None, net: Classifier,
                notes: list[str]) -> dict[str, Any]:
    """The data record of a checkpoint written before checkpoints carried one, from what is known."""
    num_classes = net.net.config.num_classes
    source = run_config or meta
    dataset = source.get("dataset") or "cifar10"
    size = int(source.get("image_size") or 0) or NATIVE_SIZE.get(dataset, 32)
    classes = meta.get("classes") or ([str(i) for i in range(10)] if dataset == "digits" else None)
    if classes is None and dataset == "folder" and source.get("data_dir"):
        from nao.data.folder import class_folders

        try:
            classes = [f.name for f in class_folders(source["data_dir"])]
        except DataError:
            classes = None
    said = ("from the checkpoint" if meta.get("classes") else "the digits 0..9" if dataset == "digits"
            else "from the image folder" if classes else "assumed 0..K-1")
    if classes is None or len(classes) != num_classes:
        classes = [str(i) for i in range(num_classes)]
        said = "assumed 0..K-1"
    notes.append(f"{ckpt} records no training data (written by an older nao): {dataset}, {size}x{size} images, "
                 f"CIFAR mean/std (what every nao image loader uses), class names {said}")
    return make_record(dataset, classes, size, {"seed": source.get("seed", source.get("split_seed"))})


def run_final_split(ckpt: Path, split: str, data_dir: str | None = None) -> tuple[nn.Module, Any, list[str]]:
    """(model, images, notes) to score a search's ``final/checkpoint.pt`` on its run's own ``split``.

    ``split`` is ``test`` or ``train`` (the final training's train + validation images). The data are
    rebuilt from the run's ``config.json`` (``data_dir`` replaces its data folder) and must match the
    checkpoint's record (classes, split sizes).
    """
    from dataclasses import replace as dc_replace

    from nao.data.record import check_classes, check_split_sizes
    from nao.runs import make_kind
    from nao.runs.images import join_sets, load_splits

    run = ckpt.parent.parent
    if ckpt.parent.name != "final" or not (run / "config.json").is_file():
        raise DataError(f"{ckpt}: the checkpoint names no dataset and no run config.json is beside it "
                        f"(expected RUN/final/{CHECKPOINT_NAME})")
    config = _read_config(run)
    state = load_checkpoint(ckpt)
    notes: list[str] = []
    model = _network(ckpt, state, state.get("meta") or {}, config, notes)
    cfg = make_kind(config).config
    if data_dir:
        cfg = dc_replace(cfg, data_dir=data_dir)
    data = load_splits(cfg)
    record = (state.get("meta") or {}).get("data")
    where = f"--data-dir {data_dir}" if data_dir else str(cfg.data_dir or cfg.dataset)
    if record is None:
        notes.append(f"{ckpt} records no training data (older nao): the run's data are not checked against it")
    else:
        check_classes(record, data.info.get("classes") or [str(i) for i in range(data.num_classes)], where)
        check_split_sizes(record, data.sizes(), where)
    return model, (data.test if split == "test" else join_sets(data.train, data.val)), notes
