"""The Study with executors and journals: honest budget counting, replay, warm start."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import FailsDegenerate
from nao.executors import ProcessExecutor
from nao.journal import Journal, read_journal
from nao.results import Objective
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

SPACE = get_space("nb201")


class Spy:
    """Wraps a strategy to record what it is told (test metrics must never arrive)."""

    def __init__(self, inner):
        self.inner, self.told = inner, []
        self.objective = inner.objective

    def ask(self, n):
        return self.inner.ask(n)

    def tell(self, results):
        self.told.extend(results)
        self.inner.tell(results)


def _nao_options() -> dict:
    """The nao strategy with small settings: two fit rounds in a 34-query run, in a second or two."""
    return {"seed_archs": 12, "per_round": 10, "fit_steps": 60, "refit_steps": 20, "candidates": 30,
            "controller": {"pretrain_steps": 0}}


@pytest.mark.parametrize("strategy, cuts", [("random", (0, 1, 17, 34)), ("rea", (5, 20)), ("local", (9, 33)),
                                            ("nao", (25,))])
def test_replay_of_a_prefix_is_exact(tmp_path, strategy, cuts):
    """What `nao search --resume` relies on: a run replayed from any journal prefix ends identically."""
    def make():
        return make_strategy(strategy, SPACE, seed=2, **(_nao_options() if strategy == "nao" else {}))

    ev = FailsDegenerate(SPACE)
    with Journal(tmp_path / "full.jsonl", SPACE) as j:
        Study(SPACE, make(), ev, journal=j).run(34)
    full = read_journal(tmp_path / "full.jsonl", SPACE)
    for cut in cuts:
        ev2 = FailsDegenerate(SPACE)
        path = tmp_path / f"cut{cut}.jsonl"
        with Journal(path, SPACE) as j:
            for r in full[:cut]:
                j.append(r)
            Study(SPACE, make(), ev2, journal=j, replay=full[:cut]).run(34)
        assert path.read_bytes() == (tmp_path / "full.jsonl").read_bytes()
        assert ev2.calls == 34 - cut  # replayed architectures are not evaluated again


def test_strategies_never_see_test_metrics():
    spy = Spy(make_strategy("rea", SPACE, seed=0))
    study = Study(SPACE, spy, FailsDegenerate(SPACE))
    study.run(30)
    assert spy.told and all("test_acc" not in r.metrics for r in spy.told)
    assert all("test_acc" in r.metrics for r in study.history if r.ok)


def test_warm_start_with_a_parallel_executor_counts_the_journal(tmp_path):
    ev = FailsDegenerate(SPACE)
    first = Study(SPACE, make_strategy("rea", SPACE, seed=0), ev)
    first.run(10)
    previous = first.history
    with ProcessExecutor(workers=2) as ex, Journal(tmp_path / "j.jsonl", SPACE) as j:
        study = Study(SPACE, make_strategy("rea", SPACE, seed=0), ev, executor=ex, journal=j, replay=previous)
        study.tell(previous)  # what `nao search --resume` does for parallel runs
        study.run(25)
    keys = [SPACE.key(r.arch) for r in study.history]
    assert len(keys) == 25 == len(set(keys))
    journaled = read_journal(tmp_path / "j.jsonl", SPACE)
    assert len(journaled) == 15  # only the new evaluations; the replayed 10 are already in the journal
    assert not {SPACE.key(r.arch) for r in journaled} & {SPACE.key(r.arch) for r in previous}


def test_failed_results_count_toward_the_budget():
    space_archs = [SPACE.make([k] * 6) for k in range(5)]  # all degenerate: every one fails

    class Fixed:
        objective = Objective()

        def __init__(self):
            self.queue = list(space_archs)

        def ask(self, n):
            out, self.queue = self.queue[:n], self.queue[n:]
            return out

        def tell(self, results):
            pass

    study = Study(SPACE, Fixed(), FailsDegenerate(SPACE))
    assert study.run(5) is None
    assert study.n_evaluated == 5 and all(not r.ok for r in study.history)


def test_parallel_study_evaluates_each_architecture_once():
    rng = np.random.default_rng(0)
    ev = FailsDegenerate(SPACE)
    with ProcessExecutor(workers=2) as ex:
        study = Study(SPACE, make_strategy("random", SPACE, seed=int(rng.integers(100))), ev, executor=ex)
        study.run(30)
    keys = [SPACE.key(r.arch) for r in study.history]
    assert len(keys) == 30 == len(set(keys))


def test_the_strategy_is_built_with_the_objective_and_the_study_checks_it():
    # Bug 5 of issue 14: the objective was set in three places. A minimised metric ranks lowest first everywhere.
    from nao.evaluators.base import Evaluator
    from nao.results import Objective, Result
    from nao.spaces import get_space
    from nao.strategies import make_strategy
    from nao.study import Study

    class Ppl(Evaluator):
        def __init__(self, space):
            self.space = space

        def evaluate(self, archs):
            return [Result(a, "ok", {"val_ppl": 100.0 + sum(a.tokens)}) for a in archs]

    space = get_space("nb201")
    strategy = make_strategy("local", space, seed=0, objective="val_ppl")
    assert strategy.objective == Objective("val_ppl", "min")
    with pytest.raises(ValueError, match="study optimises val_acc:max but the strategy ranks by val_ppl:min"):
        Study(space, strategy, Ppl(space), objective="val_acc")
    study = Study(space, strategy, Ppl(space), objective="val_ppl")
    best = study.run(budget=30)
    assert best.metrics["val_ppl"] == min(r.metrics["val_ppl"] for r in study.history)
    assert strategy.score(best) == -best.metrics["val_ppl"]
