"""``nao search ... --evaluator training``: NAO that trains every candidate (images and language models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nao.train.classifier
from nao.cli import main

_CNN = ["search", "cnn", "--evaluator", "training", "--preset", "smoke", "--seed", "1", "-q"]


def _journal(run) -> list[dict]:
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


def _outcome(run) -> dict:
    """What a run computed, without timings."""
    result = json.loads((run / "result.json").read_text())
    return {"journal": [(r["arch"], r["status"], {k: v for k, v in r["metrics"].items() if "per_s" not in k})
                        for r in _journal(run)],
            "winner": result["winner"], "test_acc": result["final"]["test_acc"]}


def test_trained_cnn_smoke_writes_a_full_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*_CNN, "--out", str(run)]) == 0
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "journal.jsonl", "best.json", "predictions.json", "rerank.json", "result.json", "final",
            "candidates", "search.log"} <= names
    journal = _journal(run)
    assert len(journal) == 6 and all(r["status"] == "ok" for r in journal)
    # Each candidate trained in its own checkpointed directory.
    cands = sorted((run / "candidates").iterdir())
    assert len(cands) == 6 and all((c / "checkpoint.pt").exists() for c in cands)
    result = json.loads((run / "result.json").read_text())
    assert result["kind"] == "trained-cnn" and result["scores_from"] == "training"
    assert result["objective"] == {"metric": "val_acc", "mode": "max"}
    assert 0.0 < result["final"]["test_acc"] <= 1.0 and len(result["rerank"]) == 2
    # Search never saw test metrics: the journal holds validation metrics only.
    assert not any(k.startswith("test") for r in journal for k in r["metrics"])
    # A finished run resumes to itself; a larger budget is refused, not silently ignored.
    before = (run / "journal.jsonl").read_text()
    assert main(["search", "--resume", str(run), "-q"]) == 0
    capsys.readouterr()
    assert main(["search", "--resume", str(run), "--budget", "9", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "finished" in err and "budget 9" in err
    assert (run / "journal.jsonl").read_text() == before


def test_trained_cnn_killed_mid_candidate_resumes_each_candidate_from_its_last_epoch(tmp_path, monkeypatch):
    # Two epochs per candidate; the run dies right after the first epoch of candidate 4 is checkpointed.
    two = ["--set", "train.epochs=2"]
    whole = tmp_path / "whole"
    assert main([*_CNN, *two, "--out", str(whole)]) == 0
    run = tmp_path / "run"
    real, calls = nao.train.classifier.save_checkpoint, []

    class Killed(BaseException):
        pass

    def dying(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 7:  # candidates 1-3: 2 checkpoints each; candidate 4's first epoch
            raise Killed()

    with monkeypatch.context() as m:
        m.setattr(nao.train.classifier, "save_checkpoint", dying)
        with pytest.raises(Killed):
            main([*_CNN, *two, "--out", str(run)])
    assert len(_journal(run)) == 3
    epochs = []
    real_epoch = nao.train.classifier._Trainer.run_epoch

    def counting(self, quiet):
        epochs.append(1)
        return real_epoch(self, quiet)

    monkeypatch.setattr(nao.train.classifier._Trainer, "run_epoch", counting)
    assert main(["search", "--resume", str(run), "-q"]) == 0
    # Candidate 4 redid one epoch (not two); candidates 5 and 6 trained 2 each; 2 reranks, 1 final of 1 epoch.
    assert len(epochs) == 1 + 2 * 2 + 2 * 1 + 1
    assert _outcome(run) == _outcome(whole)


def test_trained_cnn_on_an_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(2):  # two classes of different brightness
        d = tmp_path / "imgs" / f"class{c}"
        d.mkdir(parents=True)
        for i in range(40):
            arr = np.clip(rng.normal(60 + 120 * c, 30, (10, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{i}.png")
    run = tmp_path / "run"
    assert main([*_CNN, "--dataset", "folder", "--data-dir", str(tmp_path / "imgs"), "--image-size", "8",
                 "--out", str(run)]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["dataset"]  # named after the folder
    assert result["final"]["status"] == "ok" and sum(result["sizes"]) == 80


def test_trained_cnn_bad_folder_exits_2_without_a_run(tmp_path, capsys):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    (tmp_path / "imgs" / "b").mkdir(parents=True)
    run = tmp_path / "run"
    assert main([*_CNN, "--dataset", "folder", "--data-dir", str(tmp_path / "imgs"), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "imgs" in err and len(err.strip().splitlines()) == 1 and not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_gpus_per_eval_without_gpus_exits_2(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*_CNN, "--executor", "ray", "--gpus-per-eval", "1", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "--gpus-per-eval 1" in err and "no CUDA GPU" in err and not run.exists()


def test_trained_cnn_on_a_process_pool(tmp_path, capsys):
    run = tmp_path / "run"
    loud = [f for f in _CNN if f != "-q"]
    assert main([*loud, "--executor", "processes", "--workers", "2", "--out", str(run)]) == 0
    journal = _journal(run)
    assert len(journal) == 6 and len({r["arch"] for r in journal}) == 6
    assert all(r["status"] == "ok" for r in journal)
    # One progress line per finished candidate: score, epochs, seconds, running/waiting, ETAs.
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("candidate ")]
    assert [line.split(":")[0] for line in lines] == [f"candidate {i}/6" for i in range(1, 7)]
    assert all("val_acc" in line and "1 epoch," in line and "running" in line and "waiting" in line
               and "search ETA" in line for line in lines)
    assert "round ETA" in lines[0]  # NAO: its seed pool is drawn as one round


@pytest.fixture
def tiny_ptb(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    for split, n in (("train", 150), ("valid", 40), ("test", 40)):
        lines = [" ".join(words[(s + k) % 12] for k in range(5)) for s in rng.integers(12, size=n)]
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_trained_rnn_minimises_validation_perplexity(tiny_ptb, tmp_path):
    run = tmp_path / "run"
    small = [f"--set={k}" for k in ("lm.batch_size=4", "lm.bptt=8", "final.batch_size=4", "final.bptt=8",
                                    "lm.eval_batch_size=4", "final.eval_batch_size=4")]
    assert main(["search", "ptb", "--evaluator", "training", "--preset", "smoke", "--data-dir", str(tiny_ptb),
                 *small, "--out", str(run), "-q"]) == 0
    journal = _journal(run)
    assert len(journal) == 6 and all("val_ppl" in r["metrics"] for r in journal)
    best = json.loads((run / "best.json").read_text())
    assert best["metrics"]["val_ppl"] == min(r["metrics"]["val_ppl"] for r in journal)  # lower is better
    result = json.loads((run / "result.json").read_text())
    assert result["objective"] == {"metric": "val_ppl", "mode": "min"} and result["final"]["test_ppl"] > 1


def test_trained_cnn_constraint_on_the_child_network(tmp_path):
    # params_m of the child network is computed exactly before training: no infeasible cell is trained.
    run = tmp_path / "run"
    assert main([*_CNN, "--constraint", "params_m<=0.025", "--out", str(run)]) == 0
    journal = _journal(run)
    assert len(journal) == 6 and all(r["metrics"]["params_m"] <= 0.025 for r in journal)
    constraint = json.loads((run / "result.json").read_text())["constraint"]
    assert constraint["text"] == "params_m<=0.025" and constraint["proposed"] >= 6


def test_supernet_constraint_on_the_final_network(tmp_path):
    # NAO-WS: every architecture that joins the pool satisfies the bound on the final network, computed
    # before the supernet sees it; the bound (about the 25th percentile here) refuses some random draws.
    from dataclasses import replace

    from nao.constraints import network_cost
    from nao.presets import preset
    from nao.spaces import get_space

    run = tmp_path / "run"
    assert main(["search", "cnn", "--preset", "smoke", "--seed", "1", "-q", "--strategy", "nao",
                 "--constraint", "params_m<=0.041", "--out", str(run)]) == 0
    cfg, space = preset("supernet-cnn/smoke"), get_space("nao-ws")
    cost = network_cost(space, replace(cfg.final_network, num_classes=10), 8, "params_m")
    journal = _journal(run)
    assert len(journal) == 6 and all(cost(space.parse(r["arch"])) <= 0.041 for r in journal)
    constraint = json.loads((run / "result.json").read_text())["constraint"]
    assert constraint["text"] == "params_m<=0.041" and constraint["proposed"] >= 6


@pytest.mark.parametrize("flags, message", [
    (["--evaluator", "training", "--constraint", "val_acc<=0.5"], "unknown metric 'val_acc'"),
    (["--constraint", "latency_ms<=5"], "unknown metric 'latency_ms'"),
])
def test_bad_constraint_exits_2_without_a_run(tmp_path, capsys, flags, message):
    run = tmp_path / "run"
    assert main(["search", "cnn", "--preset", "smoke", *flags, "--out", str(run)]) == 2
    assert message in capsys.readouterr().err and not run.exists()
