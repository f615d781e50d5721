"""``nao train`` on the same path as ``nao search``: its presets from the one registry (``train/NAME``,
``lm/NAME``), then ``--config``, the flags and ``--set``, every value typed and checked; the same resume rule
(``train_config.json`` in ``--out``: a resume may change where it runs, nothing else) and one writer at a time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from nao.cli import main
from nao.data import cifar
from test_cifar100_runs import SMALL100, _write_cifar100

TINY = ["--epochs", "1", "--channels", "4", "--layers", "1", "--batch-size", "64", "--subset", "128",
        "--test-subset", "64", "--aux-weight", "0"]


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setitem(cifar.FORMATS, "cifar100", SMALL100)
    return _write_cifar100(tmp_path / "data")


def _train(data, out, *extra):
    return main(["train", "--arch", "darts-v2", "--dataset", "cifar100", "--data-dir", str(data), *TINY,
                 "--out", str(out), "-q", *extra])


def test_config_file_and_set_reach_the_training(data, tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 0.01\n  augment:\n    flip: false\n")
    out = tmp_path / "t"
    assert _train(data, out, "--config", str(f), "--set", "train.label_smoothing=0.1") == 0
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["train"]["lr"] == 0.01 and saved["train"]["augment"]["flip"] is False
    assert saved["train"]["label_smoothing"] == 0.1 and saved["network"]["channels"] == 4
    from nao.train.checkpoint import load_checkpoint

    assert load_checkpoint(out / "checkpoint.pt")["train_config"]["lr"] == 0.01
    # The same resume rule as a search: the settings are the run's, only where it runs may change.
    capsys.readouterr()
    assert _train(data, out, "--resume", "--config", str(f), "--set", "train.label_smoothing=0.2") == 2
    err = capsys.readouterr().err
    assert "train.label_smoothing 0.2 conflicts with the run's 0.1" in err and len(err.splitlines()) == 1
    assert _train(data, out, "--resume", "--config", str(f), "--set", "train.label_smoothing=0.1",
                  "--threads", "1") == 0


@pytest.mark.parametrize("settings, fragment", [
    (["train.lr=fast"], "--set train.lr=fast: train.lr: expects a number, got 'fast'"),
    (["train.epochs=1.5"], "train.epochs: expects a whole number, got 1.5"),
    (["network.chanels=8"], "unknown setting 'network.chanels'; valid here: auxiliary, channels"),
    (["train.augment=4"], "train.augment: expects a section of settings (crop_padding, flip, cutout), got 4"),
])
def test_bad_settings_are_one_line_and_write_nothing(data, tmp_path, capsys, settings, fragment):
    out = tmp_path / "t"
    assert _train(data, out, *(a for s in settings for a in ("--set", s))) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_lm_settings_are_checked_before_the_corpus_is_read(tmp_path, capsys):
    assert main(["train", "--task", "ptb", "--arch", "NAO", "--data-dir", str(tmp_path / "none"),
                 "--set", "model.hidden_size=big", "--out", str(tmp_path / "t"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "model.hidden_size: expects a whole number, got 'big'" in err and len(err.strip().splitlines()) == 1


def test_a_running_training_refuses_a_second_writer(data, tmp_path, capsys):
    out = tmp_path / "t"
    assert _train(data, out) == 0
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from nao.rundir import RunLock
        RunLock(Path({str(out)!r})).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert _train(data, out, "--resume") == 2
        assert f"is in use by a running process (pid {holder.pid})" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_time_limit_is_respected_within_one_step(tmp_path):
    import time

    import numpy as np

    from nao.data.corpus import load_corpus
    from nao.nn.rnn import build_model
    from nao.spaces import get_space
    from nao.train.lm import preset, train_lm

    rng = np.random.default_rng(0)
    for split, n in (("train", 150), ("valid", 40), ("test", 40)):
        lines = [" ".join(f"w{(int(rng.integers(12)) + k) % 12}" for k in range(5)) for _ in range(n)]
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    corpus = load_corpus(tmp_path)
    cfg = preset("tiny", epochs=100_000, time_limit_s=0.5)
    space = get_space("rnn")
    model = build_model(cfg.model, len(corpus.vocab), genotype=space.decode(space.sample(rng)), seed=0)
    t0 = time.perf_counter()
    result = train_lm(model, corpus, cfg, out_dir=tmp_path / "out", device="cpu", quiet=True)
    elapsed = time.perf_counter() - t0
    # 100,000 epochs asked, 0.5 s allowed: training stops within one step of the limit (a tiny step is
    # milliseconds; 1 s of slack for a loaded machine), then one validation, the checkpoint and the test.
    assert result.epochs_done < 100_000 and result.train_time_s < 1.5
    assert elapsed < 10.0
