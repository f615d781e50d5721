"""CIFAR-100 where the paper transfers to it: ``nao search cnn --dataset cifar100`` (both evaluators) and
``nao train --dataset cifar100`` read the official binary format (coarse label byte, fine label byte, 3,072
pixel bytes); without the files they say where they looked, in one line, and exit 2.

The files are written here, in the official layout, with fewer records (the record counts of the format are
patched down so a test does not write 150 MB)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nao.cli import main
from nao.data import cifar

SMALL100 = replace(cifar.FORMATS["cifar100"], train_files=(("train.bin", 420),), test_files=(("test.bin", 140),))


def _write_cifar100(root: Path) -> Path:
    """``root/cifar-100-binary/{train,test}.bin`` + ``fine_label_names.txt``; fine labels use all 100 classes."""
    folder = root / SMALL100.directory
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, (fname, n) in enumerate(SMALL100.train_files + SMALL100.test_files):
        rows = rng.integers(0, 256, (n, SMALL100.record_bytes), dtype=np.uint8)
        fine = (np.arange(n) + k) % 100
        rows[:, 0] = fine // 5  # coarse label (20 superclasses)
        rows[:, 1] = fine  # fine label: the class
        (folder / fname).write_bytes(rows.tobytes())
    (folder / SMALL100.meta_file).write_text("\n".join(f"fine{i}" for i in range(100)))
    return root


@pytest.fixture
def cifar100_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setitem(cifar.FORMATS, "cifar100", SMALL100)
    return _write_cifar100(tmp_path / "data")


def test_trained_search_on_cifar100_uses_its_100_classes(cifar100_dir, tmp_path):
    # Before: load_splits fell through to CIFAR-10 for any name but digits/folder, so this trained on CIFAR-10.
    out = tmp_path / "run"
    rc = main(["-q", "search", "cnn", "--evaluator", "training", "--preset", "smoke", "--dataset", "cifar100",
               "--data-dir", str(cifar100_dir), "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "result.json").read_text())
    assert result["dataset"] == "cifar100"
    assert json.loads((out / "config.json").read_text())["dataset"] == "cifar100"
    from nao.train.checkpoint import load_checkpoint

    state = load_checkpoint(out / "final" / "checkpoint.pt")
    classifier = [v for k, v in state["model"].items() if k.startswith("classifier") and k.endswith("weight")]
    assert classifier and classifier[0].shape[0] == 100  # 100 outputs: labels up to 99 were trained on


def test_supernet_search_on_cifar100(cifar100_dir, tmp_path):
    out = tmp_path / "ws"
    rc = main(["-q", "search", "cnn", "--preset", "smoke", "--dataset", "cifar100", "--data-dir", str(cifar100_dir),
               "--out", str(out)])
    assert rc == 0
    assert json.loads((out / "result.json").read_text())["dataset"] == "cifar100"


@pytest.mark.parametrize("argv", [
    ["search", "cnn", "--evaluator", "training", "--preset", "smoke"],
    ["search", "cnn", "--preset", "smoke"],
    ["train", "--arch", "darts-v2"],
])
def test_cifar100_missing_says_where_it_looked(tmp_path, capsys, argv):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main([*argv, "--dataset", "cifar100", "--data-dir", str(empty), "--out", str(tmp_path / "r"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "CIFAR-100 not found" in err and str(empty / "cifar-100-binary") in err
    assert not (tmp_path / "r").exists()


def test_train_on_cifar100(cifar100_dir, tmp_path, capsys):
    out = tmp_path / "t"
    rc = main(["train", "--arch", "darts-v2", "--dataset", "cifar100", "--data-dir", str(cifar100_dir),
               "--epochs", "1", "--channels", "4", "--layers", "1", "--batch-size", "64", "--subset", "128",
               "--test-subset", "64", "--aux-weight", "0", "--out", str(out), "-q"])
    assert rc == 0, capsys.readouterr().err
    from nao.train.checkpoint import load_checkpoint

    meta = load_checkpoint(out / "checkpoint.pt")["meta"]
    assert meta["dataset"] == "cifar100" and meta["network"]["num_classes"] == 100
