"""Contract tests run over every registered strategy on NB201 with a synthetic evaluator."""

import pytest

from nao.evaluators.base import Evaluator
from nao.results import Result
from nao.spaces import get_space
from nao.strategies import make_strategy, strategy_names
from nao.study import Study


class Synthetic(Evaluator):
    """val_acc rewards conv ops; test_acc is a different signal search must never see."""

    def __init__(self, space):
        self.space = space
        self.calls = []

    def evaluate(self, archs):
        self.calls.extend(archs)
        return [
            Result(a, "ok", {"val_acc": sum(t in (2, 3) for t in a.tokens) / 6 + 0.01 * a.tokens[0], "test_acc": 0.5})
            for a in archs
        ]


def run(name, seed=0, budget=30):
    space = get_space("nb201")
    ev = Synthetic(space)
    strategy = make_strategy(name, space, seed=seed)
    told = []
    orig = strategy.tell
    strategy.tell = lambda rs: (told.extend(rs), orig(rs))
    study = Study(space, strategy, ev)
    study.run(budget)
    return study, ev, told


@pytest.fixture(scope="module", params=strategy_names())
def name(request):
    return request.param


def test_budget_counts_unique_evaluations(name):
    study, ev, told = run(name)
    keys = [study.space.key(a) for a in ev.calls]
    assert len(keys) == len(set(keys)) == study.n_evaluated == 30


def test_every_evaluation_is_a_new_network(name):
    # Two NB201 rows equal after pruning build the same network: no strategy spends budget on both.
    study, ev, _ = run(name, budget=60)
    networks = {study.space.key(study.space.prune(a)) for a in ev.calls}
    assert len(ev.calls) == 60 and len(networks) == 60


def test_search_never_sees_test_metrics(name):
    _, _, told = run(name)
    assert told and all("test_acc" not in r.metrics for r in told)


def test_deterministic_for_a_seed(name):
    a, _, _ = run(name, seed=3)
    b, _, _ = run(name, seed=3)
    assert [r.arch for r in a.history] == [r.arch for r in b.history]


def test_beats_nothing_worse_than_first_sample(name):
    study, _, _ = run(name, budget=30)
    best = study.best()
    assert best.metrics["val_acc"] >= study.history[0].metrics["val_acc"]
