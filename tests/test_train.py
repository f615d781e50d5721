"""Training loop: metrics, divergence, checkpoint/resume, runtime choice, training evaluator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from nao.data.augment import AugmentConfig
from nao.data.cifar import CifarData, ImageSet
from nao.errors import ConfigError
from nao.nn.network import CellNetwork, NetworkConfig, known_cells
from nao.train.checkpoint import load_checkpoint
from nao.train.classifier import TrainConfig, make_runtime, train_classifier
from nao.train.presets import get_preset

CPU = make_runtime("cpu")


def _data(n: int = 64, seed: int = 0) -> ImageSet:
    # Two easy classes: bright vs dark images, so a few steps already learn something.
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    base = torch.where(labels.view(n, 1, 1, 1) == 1, 200, 40)
    noise = torch.randint(-30, 30, (n, 3, 32, 32), generator=g)
    return ImageSet((base + noise).clamp(0, 255).to(torch.uint8), labels)


def _net(aux: bool = True) -> CellNetwork:
    normal, reduce = known_cells("darts-v2")
    cfg = NetworkConfig(channels=4, layers=1, num_classes=2, auxiliary=aux, drop_path=0.1)
    return CellNetwork(normal, reduce, cfg, torch.Generator().manual_seed(0))


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=16, lr=0.05, eval_batch_size=32, augment=AugmentConfig(cutout=8), seed=0)
    return TrainConfig(**{**base, **kw})


def test_training_learns_and_reports_fractions(tmp_path):
    train, val = _data(64, 0), _data(32, 1)
    res = train_classifier(_net(), train, {"val": val}, _cfg(epochs=3), CPU, out_dir=tmp_path, quiet=True)
    assert res.ok and res.epochs_done == 3 and len(res.history) == 3
    assert 0.0 <= res.metrics["val_acc"] <= 1.0 and res.metrics["val_acc"] > 0.8
    assert res.metrics["images_per_s"] > 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "ok" and saved["final"]["val_acc"] == res.metrics["val_acc"]


class _Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3 * 32 * 32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1)) * float("nan")


def test_divergence_is_a_failed_result_not_an_exception(tmp_path):
    res = train_classifier(_Exploding(), _data(), {"val": _data(16)}, _cfg(), CPU, out_dir=tmp_path, quiet=True)
    assert res.status == "failed" and "nan" in res.error and "epoch 1" in res.error
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    train, val = _data(48), _data(16, 1)
    full = _net()
    train_classifier(full, train, {"val": val}, _cfg(), CPU, out_dir=tmp_path / "a", quiet=True)
    part = _net()
    first = train_classifier(part, train, {"val": val}, _cfg(), CPU, out_dir=tmp_path / "b", quiet=True,
                             stop_after_epoch=lambda row: True)
    assert first.epochs_done == 1
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["status"] == "stopped"
    resumed = _net()
    res = train_classifier(resumed, train, {"val": val}, _cfg(), CPU, out_dir=tmp_path / "b", resume=True, quiet=True)
    assert res.epochs_done == 2 and len(res.history) == 2
    for p, q in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 2


def test_options_label_smoothing_nesterov_no_aux(tmp_path):
    cfg = _cfg(epochs=1, label_smoothing=0.1, nesterov=True, grad_clip=0.0, aux_weight=0.0, eval_every=0)
    res = train_classifier(_net(aux=False), _data(), {}, cfg, CPU, quiet=True)
    assert res.ok and "train_loss" in res.metrics


def test_training_does_not_touch_the_callers_rng():
    net = _net()  # (building modules uses torch's default init, hence before the snapshot)
    state = torch.get_rng_state()
    train_classifier(net, _data(32), {}, _cfg(epochs=1), CPU, quiet=True)
    assert torch.equal(state, torch.get_rng_state())


def test_batch_larger_than_data_is_a_config_error():
    with pytest.raises(ConfigError, match="batch size"):
        train_classifier(_net(), _data(8), {}, _cfg(batch_size=16), CPU, quiet=True)


def test_runtime_fast_paths_are_cuda_only():
    rt = make_runtime("cpu", bf16=True, compile=True)
    assert not rt.bf16 and not rt.compile and rt.channels_last
    assert not make_runtime("cpu", channels_last=False).channels_last
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            make_runtime("cuda")
    with pytest.raises(ConfigError):
        make_runtime("tpu")


@pytest.mark.gpu
def test_cuda_fast_paths_train_and_learn():
    rt = make_runtime("cuda", bf16=True)
    assert rt.device.type == "cuda" and rt.bf16 and rt.channels_last
    train, val = _data(64, 0), _data(32, 1)
    res = train_classifier(_net(), train, {"val": val}, _cfg(epochs=3), rt, quiet=True)
    assert res.ok and res.metrics["val_acc"] > 0.8 and np.isfinite(res.metrics["train_loss"])


def test_presets_match_the_paper_settings():
    p = get_preset("paper")
    assert (p.network.channels, p.network.layers, p.train.batch_size, p.train.lr) == (36, 6, 128, 0.025)
    assert (p.train.augment.cutout, p.train.aux_weight, p.network.drop_path) == (16, 0.4, 0.2)
    with pytest.raises(ConfigError, match="paper, small"):
        get_preset("huge")


def test_training_evaluator_reports_val_acc_and_failures(monkeypatch):
    from nao.evaluators import training as tr
    from nao.registry import EVALUATORS
    from nao.spaces import get_space

    space = get_space("darts")
    data = CifarData("cifar10", _data(120), _data(20, 2), tuple("ab"), "synthetic")
    ev = EVALUATORS.get("training")(space, data=data, epochs=1, channels=4, layers=1, train_size=None,
                                    val_size=40, batch_size=16, report_test=True)
    arch = space.sample(np.random.default_rng(0))
    (r,) = ev.evaluate([arch])
    assert r.ok and 0 <= r.metrics["val_acc"] <= 1 and "test_acc" in r.metrics and r.cost_s > 0

    def oom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(tr, "train_classifier", oom)
    (r,) = ev.evaluate([arch])
    assert r.status == "failed" and "out of memory" in r.error


def test_epoch_bar_is_silent_when_stderr_is_not_a_terminal(capsys):
    # Under pytest stderr is captured (not a TTY): a log file must not fill with bar redraws.
    from nao.train.progress import EpochBar

    bar = EpochBar(total=4, desc="epoch 1/1")
    for _ in range(4):
        bar.update(1, loss=0.5, acc=0.25, images_per_s=100.0)
    bar.close()
    assert capsys.readouterr().err == ""
