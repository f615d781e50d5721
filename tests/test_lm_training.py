"""LMTrainingEvaluator: val_ppl per recurrent cell, per-candidate resume, divergence, pickling (no PTB needed)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import nao.train.lm as lm
from nao.data.corpus import load_corpus
from nao.errors import ConfigError, DataError
from nao.evaluators import evaluator_names
from nao.evaluators.lm_training import LMTrainingEvaluator
from nao.evaluators.training import candidate_id
from nao.spaces import get_space
from nao.train.lm import preset

CFG = preset("tiny", epochs=2, hidden_size=16)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    for split, n in (("train", 60), ("valid", 20), ("test", 20)):
        # a learnable pattern: each line counts upwards from a random start
        lines = [" ".join(words[(int(s) + k) % 12] for k in range(5)) for s in rng.integers(12, size=n)]
        (root / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    return load_corpus(root)


class _Killed(Exception):
    """Stands for the worker dying right after a validation checkpoint."""


@pytest.mark.parametrize("name", ["rnn", "rnn-darts", "rnn-enas"])
def test_scores_every_recurrent_space(corpus, name):
    assert "lm-training" in evaluator_names()
    space = get_space(name)
    (r,) = LMTrainingEvaluator(space, corpus, preset("tiny", epochs=1, hidden_size=16)).evaluate(
        [space.sample(np.random.default_rng(0))])
    assert r.ok and set(r.metrics) == {"val_ppl", "val_loss", "params_m"}
    assert math.isclose(r.metrics["val_ppl"], math.exp(r.metrics["val_loss"])) and r.metrics["val_ppl"] < 30
    assert r.info["epochs"] >= 1 and "test_ppl" not in r.metrics
    assert r.fidelity == r.info["epochs"] and r.cost == pytest.approx(r.fidelity * corpus.train.numel())  # token-epochs


def test_resume_after_interruption_matches_an_uninterrupted_run(corpus, tmp_path, monkeypatch):
    space = get_space("rnn")
    arch = space.sample(np.random.default_rng(1))
    (whole,) = LMTrainingEvaluator(space, corpus, CFG, checkpoint_root=tmp_path / "a").evaluate([arch])

    ev = LMTrainingEvaluator(space, corpus, CFG, checkpoint_root=tmp_path / "b")
    real = lm._validate

    def killed(*a, **k):
        real(*a, **k)
        raise _Killed

    monkeypatch.setattr(lm, "_validate", killed)
    with pytest.raises(_Killed):
        ev.evaluate([arch])
    assert ev.candidate_dir(arch) == tmp_path / "b" / candidate_id(space, arch)
    monkeypatch.setattr(lm, "_validate", real)

    steps = []
    step = lm.LMTrainer.step
    monkeypatch.setattr(lm.LMTrainer, "step", lambda self, g=None: steps.append(1) or step(self, g))
    (resumed,) = pickle.loads(pickle.dumps(ev)).evaluate([arch])  # a fresh worker resumes it
    assert 0 < len(steps) < whole.info["steps"]  # only the second epoch ran
    assert resumed.ok and resumed.metrics == whole.metrics and resumed.info["steps"] == whole.info["steps"]

    steps.clear()
    (again,) = ev.evaluate([arch])  # finished: from result.json
    assert steps == [] and again.metrics == whole.metrics and again.info["cached"]

    other = LMTrainingEvaluator(space, corpus, preset("tiny", epochs=3, hidden_size=16), checkpoint_root=tmp_path / "b")
    with pytest.raises(ConfigError, match="config"):
        other.evaluate([arch])


def test_divergence_is_a_failed_result(corpus, tmp_path):
    space = get_space("rnn")
    ev = LMTrainingEvaluator(space, corpus, preset("tiny", epochs=1, hidden_size=16, lr=1e30, clip=1e30),
                             checkpoint_root=tmp_path)
    (r,) = ev.evaluate([space.named("NAO")])
    assert r.status == "failed" and ("diverged" in r.error) and r.metrics == {}
    (again,) = ev.evaluate([space.named("NAO")])
    assert again.status == "failed" and again.info.get("cached")


def test_out_of_memory_is_a_failed_result(corpus, monkeypatch):
    from nao.evaluators import lm_training

    def oom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(lm_training, "train_lm", oom)
    space = get_space("rnn")
    (r,) = LMTrainingEvaluator(space, corpus, CFG).evaluate([space.named("NAO")])
    assert r.status == "failed" and "out of memory" in r.error


def test_boundary_errors(corpus):
    with pytest.raises(ConfigError, match="recurrent cell space"):
        LMTrainingEvaluator(get_space("darts"), corpus, CFG)
    with pytest.raises(DataError, match="bptt"):
        LMTrainingEvaluator(get_space("rnn"), corpus, preset("tiny", bptt=10_000))
