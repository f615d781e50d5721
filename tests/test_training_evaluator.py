"""TrainingEvaluator: pre-split data, per-candidate checkpoints and resume, failures, pickling."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from nao.data.cifar import ImageSet
from nao.data.digits import ImageSplits
from nao.errors import ConfigError
from nao.evaluators import evaluator_names
from nao.evaluators import training as tr
from nao.evaluators.training import TrainingEvaluator, candidate_id
from nao.nn.network import NetworkConfig
from nao.spaces import get_space
from nao.train import classifier
from nao.train.classifier import TrainConfig

NET = NetworkConfig(channels=4, layers=1, num_classes=3, auxiliary=False)
CFG = TrainConfig(epochs=2, batch_size=16, lr=0.05, aux_weight=0.0, eval_every=0, seed=0)


def _images(n: int, seed: int) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    # Class-dependent brightness, so the tiny network learns something.
    images = (torch.rand(n, 3, 8, 8, generator=g) * 120 + labels.view(-1, 1, 1, 1) * 60).to(torch.uint8)
    return ImageSet(images, labels)


@pytest.fixture(scope="module")
def space():
    return get_space("darts")


@pytest.fixture(scope="module")
def arch(space):
    return space.sample(np.random.default_rng(0))


def _evaluator(space, **kw) -> TrainingEvaluator:
    return TrainingEvaluator(space, _images(96, 1), _images(32, 2), _images(32, 3), network=NET, train_config=CFG, **kw)


class _Killed(Exception):
    """Stands for the worker process dying after an epoch's checkpoint was written."""


def test_registered_and_reports_metrics(space, arch):
    assert "training" in evaluator_names()
    (r,) = _evaluator(space, report_test=True).evaluate([arch])
    assert r.ok and r.info["epochs"] == 2 and r.cost_s > 0
    assert r.fidelity == 2 and r.cost == 2 * 96  # image-epochs: 2 epochs over the 96 training images
    assert set(r.metrics) == {"val_acc", "val_loss", "train_acc", "params_m", "test_acc", "test_loss"}
    assert 0 <= r.metrics["val_acc"] <= 1 and r.metrics["params_m"] > 0


def test_resume_after_interruption_matches_an_uninterrupted_run(space, arch, tmp_path, monkeypatch):
    (whole,) = _evaluator(space, checkpoint_root=tmp_path / "a").evaluate([arch])
    ev = _evaluator(space, checkpoint_root=tmp_path / "b")
    real = tr.train_classifier

    def killed_after_one_epoch(*a, **k):
        def stop(row):
            raise _Killed

        return real(*a, **k, stop_after_epoch=stop)

    monkeypatch.setattr(tr, "train_classifier", killed_after_one_epoch)
    with pytest.raises(_Killed):
        ev.evaluate([arch])
    out = ev.candidate_dir(arch)
    assert out == tmp_path / "b" / candidate_id(space, arch)
    assert json.loads((out / "metrics.json").read_text())["epochs_done"] == 1
    monkeypatch.setattr(tr, "train_classifier", real)

    epochs_run = []
    run_epoch = classifier._Trainer.run_epoch
    monkeypatch.setattr(classifier._Trainer, "run_epoch", lambda self, q: epochs_run.append(self.epoch) or run_epoch(self, q))
    (resumed,) = pickle.loads(pickle.dumps(ev)).evaluate([arch])  # a fresh worker resumes it
    assert epochs_run == [1]  # only the second epoch ran
    assert resumed.ok and resumed.metrics == whole.metrics and resumed.info["epochs"] == 2

    # Finished: answered from result.json without training.
    epochs_run.clear()
    (again,) = ev.evaluate([arch])
    assert epochs_run == [] and again.metrics == whole.metrics and again.info["cached"]


def test_checkpoint_of_other_settings_is_refused(space, arch, tmp_path, monkeypatch):
    _evaluator(space, checkpoint_root=tmp_path).evaluate([arch])
    other = TrainingEvaluator(space, _images(96, 1), _images(32, 2), network=NET,
                              train_config=TrainConfig(epochs=3, batch_size=16, aux_weight=0.0, eval_every=0),
                              checkpoint_root=tmp_path)
    with pytest.raises(ConfigError, match="train_config"):
        other.evaluate([arch])


def test_divergence_is_a_failed_result(space, arch, tmp_path):
    ev = TrainingEvaluator(space, _images(96, 1), _images(32, 2), network=NET,
                           train_config=TrainConfig(epochs=1, batch_size=16, lr=1e6, grad_clip=0.0, aux_weight=0.0,
                                                    eval_every=0), checkpoint_root=tmp_path)
    (r,) = ev.evaluate([arch])
    assert r.status == "failed" and r.error and r.metrics == {}
    (again,) = ev.evaluate([arch])  # recorded: not retrained
    assert again.status == "failed" and again.info.get("cached")


def test_out_of_memory_is_a_failed_result(space, arch, monkeypatch):
    def oom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(tr, "train_classifier", oom)
    (r,) = _evaluator(space).evaluate([arch])
    assert r.status == "failed" and "out of memory" in r.error


def test_pickled_state_holds_cpu_tensors_only(space, arch):
    ev = _evaluator(space)
    ev.evaluate([arch])
    state = ev.__getstate__()
    assert state["_on_device"] is None and state["_runtime"] is None
    assert ev.train.images.device.type == "cpu"


def test_from_splits_and_validation(space):
    splits = ImageSplits("toy", _images(96, 1), _images(32, 2), _images(32, 3), num_classes=3)
    ev = TrainingEvaluator.from_splits(space, splits, NetworkConfig(channels=4, layers=1, auxiliary=False), CFG, seed=5)
    assert ev.network.num_classes == 3 and ev.train_config.seed == 5 and not ev.train_config.augment.flip
    with pytest.raises(ConfigError, match="label 2"):
        TrainingEvaluator(space, _images(96, 1), _images(32, 2), network=NetworkConfig(num_classes=2), train_config=CFG)
    with pytest.raises(ConfigError, match="conv cell space"):
        TrainingEvaluator(get_space("nb201"), _images(96, 1), _images(32, 2))


class _DiesAfterFirstEpochOnce(TrainingEvaluator):
    """Its worker process exits right after the first epoch's checkpoint, the first time only."""

    def _one(self, arch):
        marker = self.checkpoint_root / "died"
        if marker.exists():
            return super()._one(arch)
        marker.touch()
        real = tr.train_classifier
        # Patched in the worker process only, which is about to die anyway.
        tr.train_classifier = lambda *a, **k: real(*a, **k, stop_after_epoch=lambda row: os._exit(3))
        return super()._one(arch)


def test_a_worker_killed_mid_candidate_is_retried_and_resumes(space, arch, tmp_path):
    from nao.executors import ProcessExecutor

    (whole,) = _evaluator(space).evaluate([arch])
    ev = _DiesAfterFirstEpochOnce(space, _images(96, 1), _images(32, 2), network=NET, train_config=CFG,
                                  checkpoint_root=tmp_path)
    # fork: a spawned worker re-imports torch (seconds on a busy CI box); the evaluator is pickled either way.
    ex = ProcessExecutor(workers=1, max_retries=1, start_method="fork", threads_per_worker=1)
    try:
        ex.submit(ev, [arch])
        (r,) = ex.poll()
    finally:
        ex.close()
    assert r.ok and r.info["attempts"] == 2 and r.metrics == whole.metrics
    history = json.loads((ev.candidate_dir(arch) / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2]


def test_images_too_small_for_two_reductions_are_refused(space):
    tiny = ImageSet(torch.zeros(32, 3, 2, 2, dtype=torch.uint8), torch.zeros(32, dtype=torch.long))
    with pytest.raises(ConfigError, match="too small"):
        TrainingEvaluator(space, tiny, tiny, network=NET, train_config=CFG)
