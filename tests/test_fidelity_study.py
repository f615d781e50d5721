"""FidelityStudy: promotions continue from checkpoints, failures stay at their rung, resume equals uninterrupted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from nao.data.cifar import ImageSet
from nao.errors import ConfigError
from nao.evaluators.training import TrainingEvaluator
from nao.fidelity import ASHA, make_scheduler
from nao.fidelity.strategy import MultiFidelityNAO
from nao.fidelity.study import FidelityStudy, check_ladder
from nao.journal import Journal, read_journal
from nao.nn.network import NetworkConfig
from nao.results import Result
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.train.classifier import TrainConfig


class Toy:
    """Scores grow with the epochs; architectures whose first op is 0 fail (at any rung)."""

    max_fidelity = 9.0

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], float]] = []

    def evaluate_at(self, archs, epochs):
        out = []
        for a in archs:
            self.calls.append((a.tokens, epochs))
            if a.tokens[0] == 0:
                out.append(Result.failed(a, "diverged"))
            else:
                out.append(Result(a, "ok", {"val_acc": (sum(a.tokens) % 7) / 7 * epochs / 9, "test_acc": 0.5}))
        return out


class _Killed(Exception):
    pass


@pytest.mark.parametrize("sched", ["asha", "sh", "hyperband"])
def test_resume_after_a_kill_ends_as_the_uninterrupted_run(tmp_path, sched):
    space = get_space("nb201")

    def study(journal=None, replay=(), callbacks=()):
        return FidelityStudy(space, make_strategy("random", space, seed=1), Toy(), make_scheduler(sched, (1, 3, 9)),
                             journal=journal, replay=replay, callbacks=callbacks)

    whole = study()
    whole.run(budget=20)
    seen = []

    def kill(r):
        seen.append(r)
        if len(seen) == 11:
            raise _Killed

    with Journal(tmp_path / "j.jsonl", space) as j, pytest.raises(_Killed):
        study(journal=j, callbacks=[kill]).run(budget=20)
    replay = read_journal(tmp_path / "j.jsonl", space)
    assert len(replay) == 11 and {r.fidelity for r in replay} <= {1.0, 3.0, 9.0}
    toy = Toy()
    resumed = FidelityStudy(space, make_strategy("random", space, seed=1), toy, make_scheduler(sched, (1, 3, 9)),
                            replay=replay)
    resumed.run(budget=20)
    assert [(r.arch, r.fidelity, r.status) for r in resumed.history] == \
        [(r.arch, r.fidelity, r.status) for r in whole.history]
    assert resumed.scheduler.records() == whole.scheduler.records()
    assert len(toy.calls) == len(whole.history) - 11  # nothing in the journal is trained again
    failed = {r.arch for r in whole.history if not r.ok}
    assert failed and not any(r.arch in failed and r.fidelity > 1 for r in whole.history)


def test_strategies_see_every_rung_without_test_metrics():
    space = get_space("nb201")
    s = MultiFidelityNAO(space, seed=0, seed_archs=9, max_fidelity=9, fit_steps=5, refit_steps=2)
    told = []
    orig = s.tell
    s.tell = lambda rs: (told.extend(rs), orig(rs))
    study = FidelityStudy(space, s, Toy(), ASHA((1, 3, 9)))
    study.run(budget=15)
    assert {r.fidelity for r in told} == {1.0, 3.0, 9.0}
    assert not any("test_acc" in r.metrics for r in told)
    assert study.n_candidates == 15 and study.best().fidelity == 9.0
    ranked = study.ranked()
    assert ranked[0] is study.best() and len(ranked) == len({r.arch for r in study.history if r.ok})
    assert [r.fidelity for r in ranked] == sorted((r.fidelity for r in ranked), reverse=True)


def test_compute_bound():
    space = get_space("nb201")

    class Costly(Toy):
        def evaluate_at(self, archs, epochs):
            return [replace(r, cost=float(epochs)) for r in super().evaluate_at(archs, epochs)]

    study = FidelityStudy(space, make_strategy("random", space, seed=0), Costly(), ASHA((1, 3, 9)))
    study.run(budget=1000, max_cost=40)
    assert 40 <= study.spent_cost < 40 + 9  # stops starting once spent; overshoot at most one job
    with pytest.raises(ConfigError, match="--max-cost"):
        study.run(budget=10, max_cost=-1)


def test_bad_input():
    space = get_space("nb201")
    with pytest.raises(ConfigError, match="cannot train a candidate further"):
        FidelityStudy(space, make_strategy("random", space), object(), ASHA((1, 3)))
    with pytest.raises(ConfigError, match="--budget >= 9"):
        check_ladder((1, 3, 9), 3, 4)


def _images(n: int, seed: int) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = (torch.rand(n, 3, 8, 8, generator=g) * 120 + labels.view(-1, 1, 1, 1) * 60).to(torch.uint8)
    return ImageSet(images, labels)


def test_a_promoted_candidate_continues_and_ends_as_the_planned_training(tmp_path):
    space = get_space("darts")
    arch = space.sample(np.random.default_rng(0))
    net = NetworkConfig(channels=4, layers=1, num_classes=3, auxiliary=False)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, aux_weight=0.0, eval_every=0, seed=0)

    def ev(root):
        return TrainingEvaluator(space, _images(96, 1), _images(32, 2), network=net, train_config=cfg,
                                 checkpoint_root=root)

    (direct,) = ev(tmp_path / "a").evaluate([arch])
    rung = ev(tmp_path / "b")
    (low,) = rung.evaluate_at([arch], 1)
    (top,) = rung.evaluate_at([arch], 3)
    assert low.info["epochs"] == 1 and low.info["from_epoch"] == 0 and low.fidelity == 1
    assert top.info["epochs"] == 3 and top.info["from_epoch"] == 1  # continued, not restarted
    assert top.fidelity == 3 and top.cost == 2 * 96 and direct.cost == 3 * 96  # a promotion pays the epochs it adds
    assert top.metrics["val_acc"] == direct.metrics["val_acc"] and top.metrics["val_loss"] == direct.metrics["val_loss"]
    (again,) = rung.evaluate_at([arch], 1)  # answered from its rung's result file
    assert again.info.get("cached") and again.metrics == low.metrics
    with pytest.raises(ConfigError, match="--fidelity"):
        rung.evaluate_at([arch], 5)
    with pytest.raises(ConfigError, match="checkpoint"):
        TrainingEvaluator(space, _images(96, 1), _images(32, 2), network=net, train_config=cfg).evaluate_at([arch], 1)


def test_a_promoted_language_model_continues_as_the_planned_training(tmp_path):
    from nao.data.corpus import load_corpus
    from nao.evaluators.lm_training import LMTrainingEvaluator
    from nao.train.lm import preset

    d = tmp_path / "ptb"
    d.mkdir()
    words = "the cat sat on a mat and the dog ran to it".split()
    rng = np.random.default_rng(0)
    for split, n in (("train", 400), ("valid", 80), ("test", 80)):
        (d / f"ptb.{split}.txt").write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(n // 8)) + "\n")
    corpus = load_corpus(d)
    space = get_space("rnn")
    cfg = preset("tiny", epochs=1, eval_every=10)

    def ev(root):
        return LMTrainingEvaluator(space, corpus, cfg, checkpoint_root=root)

    arch = space.named("NAO")
    (direct,) = ev(tmp_path / "a").evaluate([arch])
    rung = ev(tmp_path / "b")
    assert rung.rung_steps(1 / 3) % 10 == 0
    (low,) = rung.evaluate_at([arch], 1 / 3)
    (top,) = rung.evaluate_at([arch], 1)
    assert low.info["steps"] == rung.rung_steps(1 / 3) < top.info["steps"] == direct.info["steps"]
    assert top.info["from_step"] == low.info["steps"]  # continued from the rung's checkpoint
    assert top.metrics == direct.metrics and top.cost < direct.cost


def test_run_kind_helpers():
    from nao.fidelity.runs import check_fidelity, fidelity_strategy, scheduler_for

    space = get_space("nb201")
    with pytest.raises(ConfigError, match="--fidelity asha: this kind's candidates cannot be trained further"):
        scheduler_for("asha", 3.0, object(), 30)  # a supernet's evaluator has no evaluate_at
    assert scheduler_for("sh", 3.0, Toy(), 30).rungs == (1.0, 3.0, 9.0)
    with pytest.raises(ConfigError, match="--fidelity: unknown scheduler 'bohb'"):
        check_fidelity("bohb", 3.0, 9, 30)
    with pytest.raises(ConfigError, match="--fidelity: a candidate trained for 1 epochs"):
        check_fidelity("asha", 3.0, 1, 30, whole=True)  # whole epochs: 1/9 and 1/3 round up to the top rung
    with pytest.raises(ConfigError, match="--min-fidelity: a candidate trained for 2 epochs"):
        check_fidelity("asha", 3.0, 2, 30, min_fidelity=1.5, whole=True)  # 2/3 is below the lowest rung asked
    with pytest.raises(ConfigError, match="--min-fidelity must lie between 0 and the candidates' 2 epochs"):
        check_fidelity("asha", 3.0, 2, 30, min_fidelity=2, whole=True)
    nao = fidelity_strategy(make_strategy("nao", space, seed=0), space, 0, 9.0, {})
    assert isinstance(nao, MultiFidelityNAO) and nao.max_fidelity == 9.0
    rnd = make_strategy("random", space)
    assert fidelity_strategy(rnd, space, 0, 9.0, {}) is rnd
