"""The weight-sharing supernet, its evaluator and the digits dataset (tiny sizes, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nao.data.digits import load_digits_splits, stratified_split
from nao.errors import ConfigError, DataError
from nao.evaluators import evaluator_names
from nao.evaluators.supernet import SupernetEvaluator, SupernetTrainConfig
from nao.nn.supernet import Supernet, SupernetConfig, check_image_size
from nao.spaces import get_space


@pytest.fixture(scope="module")
def space():
    return get_space("nao-ws")


@pytest.fixture(scope="module")
def digits():
    return load_digits_splits(seed=0, subset=400)


def tiny_train(**kw) -> SupernetTrainConfig:
    base = dict(seed_pool=4, new_per_round=2, pool_size=4, epochs_per_round=1, batch_size=32,
                eval_batch_size=128, lr=0.05, augment=None)
    return SupernetTrainConfig(**{**base, **kw})


def make_evaluator(space, data, **kw) -> SupernetEvaluator:
    return SupernetEvaluator(space, data, SupernetConfig(channels=8, layers=1), tiny_train(**kw), seed=0)


def archs(space, n, seed=0):
    return space.sample_distinct(np.random.default_rng(seed), n)


# -- supernet module ---------------------------------------------------------------------------------
def test_forward_runs_exactly_the_sampled_architecture(space):
    net = Supernet(space, SupernetConfig(channels=8, layers=1, in_channels=3), image_size=8)
    arch = archs(space, 1, seed=3)[0]
    plan = net.plan(arch)
    net(torch.randn(4, 3, 8, 8), plan).sum().backward()
    used = {id(p) for m in net.path_modules(plan) for p in m.parameters()}
    for cell in net.cells:
        used.add(id(cell.combine_weight))
    for name, p in net.named_parameters():
        if id(p) in used:
            continue
        assert p.grad is None, f"{name} got a gradient but is not on the sampled path"
    # and something on the path did learn
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for m in net.path_modules(plan) for p in m.parameters())


def test_branch_swap_shares_weights(space):
    net = Supernet(space, SupernetConfig(channels=8, layers=1, in_channels=3), image_size=8).eval()
    arch = archs(space, 1, seed=5)[0]
    swapped = space.augment(arch, np.random.default_rng(1))
    x = torch.randn(3, 3, 8, 8)
    assert space.key(swapped) == space.key(arch)
    assert torch.allclose(net(x, arch), net(x, swapped))


def test_image_too_small_is_a_clear_error(space):
    with pytest.raises(ConfigError, match="3x3 is too small .* 2 reduction cells.* at least 4x4"):
        Supernet(space, SupernetConfig(channels=8, layers=1), image_size=3)
    check_image_size(4)


def test_non_cell_space_rejected():
    with pytest.raises(ConfigError, match="conv cell space"):
        Supernet(get_space("nb201"), SupernetConfig(channels=8, layers=1))


def test_registered():
    assert "supernet" in evaluator_names()


class _PickBadFirst:
    """Stands in for the architecture draw: index 1 while the whole pool of 4 is alive, else 0."""

    def integers(self, n: int) -> int:
        return 1 if n == 4 else 0


# -- evaluator ---------------------------------------------------------------------------------------
def test_rounds_pool_and_results(space, digits):
    ev = make_evaluator(space, digits)
    assert ev.batch_size == 4
    first = archs(space, 4, seed=0)
    r1 = ev.evaluate(first)
    assert [r.arch for r in r1] == first and all(r.ok for r in r1)
    assert all(0.0 <= r.metrics["val_acc"] <= 1.0 and r.info["round"] == 1 for r in r1)
    assert ev.batch_size == 2  # later rounds add new_per_round
    second = archs(space, 2, seed=99)
    r2 = ev.evaluate(second)
    assert [r.arch for r in r2] == second
    assert len(ev.pool) == 4  # the two worst of round 1 made room for the new ones
    ranked = ev.ranking()
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and len(ranked) == 4
    assert ev.epochs_done == 2 and len(ev.history) == 2


def test_scoring_is_fixed_and_repeatable(space, digits):
    ev = make_evaluator(space, digits)
    a = archs(space, 2)
    assert ev.score(a) == ev.score(a)  # same fixed validation images, same BN statistics


def test_recalibrated_scores_do_not_depend_on_chunking(space, digits):
    small = make_evaluator(space, digits, bn="recalibrate", eval_batch_size=16, calib_batches=2)
    large = make_evaluator(space, digits, bn="recalibrate", eval_batch_size=1000, calib_batches=2)
    a = archs(space, 2)
    for (acc_s, loss_s), (acc_l, loss_l) in zip(small.score(a), large.score(a)):
        assert acc_s == pytest.approx(acc_l) and loss_s == pytest.approx(loss_l, rel=1e-4)


def test_out_of_memory_marks_architecture_failed(space, digits, monkeypatch):
    ev = make_evaluator(space, digits)
    batch = archs(space, 4)
    bad_train, bad_score = ev.model.plan(batch[1]), ev.model.plan(batch[2])
    real_forward = ev.model.forward

    def forward(x, plan):
        if plan is bad_train and torch.is_grad_enabled():
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)")
        if plan is bad_score and not torch.is_grad_enabled():
            raise torch.OutOfMemoryError("CUDA out of memory (fake, scoring)")
        return real_forward(x, plan)

    monkeypatch.setattr(ev.model, "forward", forward)
    # Make sure the bad architecture is drawn for training: every draw picks it while it is alive.
    ev.rng = _PickBadFirst()
    results = ev.evaluate(batch)
    status = [r.status for r in results]
    assert status == ["ok", "failed", "failed", "ok"]
    assert "out of memory while training" in results[1].error
    assert "out of memory while scoring" in results[2].error
    assert len(ev.pool) == 2  # failed architectures leave the pool; the search goes on
    assert all(r.ok for r in ev.evaluate(archs(space, 2, seed=7)))


def test_config_errors(space, digits):
    with pytest.raises(ConfigError, match="bn must be one of"):
        make_evaluator(space, digits, bn="running")
    with pytest.raises(ConfigError, match="fewer than one supernet batch"):
        make_evaluator(space, digits, batch_size=10_000)


# -- digits ------------------------------------------------------------------------------------------
def test_digits_split_is_seeded_and_stratified():
    a, b = load_digits_splits(seed=1), load_digits_splits(seed=1)
    assert torch.equal(a.val.labels, b.val.labels) and a.sizes() == (1078, 359, 360)
    assert a.train.images.dtype == torch.uint8 and tuple(a.train.images.shape[1:]) == (3, 8, 8)
    counts = torch.bincount(a.val.labels, minlength=10)
    assert counts.min() >= 30  # every class present in proportion
    assert not torch.equal(load_digits_splits(seed=2).val.labels, a.val.labels)


def test_digits_too_small_for_split():
    with pytest.raises(DataError, match="too small for the split"):
        load_digits_splits(seed=0, subset=5)
    with pytest.raises(DataError, match="summing to 1"):
        stratified_split(np.zeros(10, dtype=int), (0.5, 0.5, 0.5), np.random.default_rng(0))
