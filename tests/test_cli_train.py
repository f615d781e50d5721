"""``nao train`` / ``nao evaluate`` end to end on a few real CIFAR-10 images."""

from __future__ import annotations

import json

import pytest

from nao.cli import main

TINY = ["--channels", "4", "--layers", "1", "--epochs", "1", "--batch-size", "16", "--subset", "48",
        "--test-subset", "32", "--threads", "1"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_arch_outside_every_space_is_rejected_before_anything_is_built(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--arch", "Genotype(normal=[('conv_9x9', 0)])", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "conv_9x9" in err or "pairs" in err
    assert not out.exists()


def test_space_mismatch_and_bad_string_in_named_space(tmp_path, capsys):
    assert main(["train", "--arch", "naonet-a", "--space", "darts", "--out", str(tmp_path)]) == 2
    assert "'nao'" in _one_line_error(capsys)
    assert main(["train", "--arch", "0 7 1 15", "--space", "nao", "--out", str(tmp_path)]) == 2
    assert "40 integers" in _one_line_error(capsys)


def test_missing_dataset_names_where_it_looked(tmp_path, capsys):
    code = main(["train", "--arch", "darts-v2", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"),
                 *TINY])
    assert code == 2
    err = _one_line_error(capsys)
    assert "nowhere" in err and "--download" in err


def test_train_evaluate_resume_roundtrip(cifar_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--arch", "naonet-ws", "--data-dir", str(cifar_dir), "--out", str(out), *TINY]
    assert main(["-q", *args]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "ok" and 0 <= summary["test_acc"] <= 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["meta"]["space"] == "nao-ws" and metrics["meta"]["train_images"] == 48
    assert metrics["meta"]["params"] > 0 and metrics["meta"]["test_images"] == 32

    # The run directory is protected; --resume of a finished run trains no more epochs.
    assert main(args) == 2
    assert "--resume" in _one_line_error(capsys)
    assert main(["-q", *args, "--resume"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epochs"] == 1
    other = ["train", "--arch", "darts-v2", "--data-dir", str(cifar_dir), "--out", str(out), "--resume", *TINY]
    assert main(other) == 2
    assert "--resume" in _one_line_error(capsys)

    ckpt = out / "checkpoint.pt"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data-dir", str(cifar_dir), "--subset", "32"]) == 0
    scored = json.loads(capsys.readouterr().out.strip())
    assert scored["images"] == 32 and 0 <= scored["test_acc"] <= 1


def test_evaluate_rejects_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"garbage")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    assert "x.pt" in _one_line_error(capsys)


def test_task_flag_and_presets_in_help():
    from nao.cli import build_parser

    args = build_parser().parse_args(["train", "--arch", "naonet-a", "--out", "o", "--preset", "paper"])
    assert args.task == "cifar" and args.preset == "paper"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--arch", "a", "--out", "o", "--task", "imagenet"])
