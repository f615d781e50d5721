"""Contract tests run over every registered strategy on NB201 with a synthetic evaluator."""

import functools

import pytest

from fakes import ConvCount
from nao.proxies.source import FunctionZeroCost
from nao.spaces import get_space
from nao.strategies import make_strategy, strategy_names
from nao.study import Study


def _zero_cost(space):
    """A synthetic proxy for strategies that need one: live (not ``none``) edges, a loose hint of the objective."""
    return FunctionZeroCost(space, ("live",), lambda a: ([float(sum(t != 0 for t in a.tokens))], 0.01))


def run(name, seed=0, budget=30):
    space = get_space("nb201")
    ev = ConvCount(space)  # val_acc rewards conv ops; test_acc is a signal search must never see
    zero_cost = _zero_cost(space) if name.endswith("-zc") else None
    strategy = make_strategy(name, space, seed=seed, zero_cost=zero_cost)
    told = []
    orig = strategy.tell
    strategy.tell = lambda rs: (told.extend(rs), orig(rs))
    study = Study(space, strategy, ev)
    study.run(budget)
    return study, ev, told


@functools.cache
def run_once(name):
    """``run(name)`` with the defaults, shared by the tests that only read it (the slow strategies take ~10-30 s)."""
    return run(name)


@pytest.fixture(scope="module", params=strategy_names())
def name(request):
    return request.param


def test_budget_counts_unique_evaluations(name):
    study, ev, told = run_once(name)
    keys = [study.space.key(a) for a in ev.calls]
    assert len(keys) == len(set(keys)) == study.n_evaluated == 30


def test_every_evaluation_is_a_new_network(name):
    # Two NB201 rows equal after pruning build the same network: no strategy spends budget on both.
    study, ev, _ = run(name, budget=60)
    networks = {study.space.key(study.space.prune(a)) for a in ev.calls}
    assert len(ev.calls) == 60 and len(networks) == 60


def test_search_never_sees_test_metrics(name):
    _, _, told = run_once(name)
    assert told and all("test_acc" not in r.metrics for r in told)


def test_deterministic_for_a_seed(name):
    a, _, _ = run(name, seed=3)
    b, _, _ = run(name, seed=3)
    assert [r.arch for r in a.history] == [r.arch for r in b.history]


def test_finds_good_architectures(name):
    study, _, _ = run_once(name)
    best = study.best().metrics["val_acc"]
    assert best == max(r.metrics["val_acc"] for r in study.history if r.ok)
    # 4 convolutions out of 6 is ConvCount's 90th percentile over the 15,625 cells: 30 random samples miss
    # it with probability 0.9**30 = 4% (and not with seed 0); no strategy may do worse than random search.
    assert best >= 4 / 6
    assert best >= run_once("random")[0].best().metrics["val_acc"]


def test_a_listed_module_that_is_missing_fails(monkeypatch):
    from nao.registry import STRATEGIES, Registry

    listed = Registry("strategy", (*STRATEGIES.modules, "nao.strategies.deleted"))
    with pytest.raises(ModuleNotFoundError, match="nao.strategies.deleted"):
        listed.names()
