"""Optuna's samplers as strategies: repeats answered free, fallbacks, failures, resume, options, the CLI."""

from __future__ import annotations

import json

import pytest

from fakes import ConvCount
from nao.cli import main
from nao.evaluators.base import Evaluator
from nao.journal import Journal, read_journal
from nao.results import Result
from nao.spaces import get_space
from nao.strategies import make_strategy
from nao.study import Study

optuna = pytest.importorskip("optuna")  # the [optuna] extra; [dev] installs it, so CI runs these

SPACE = get_space("nb201")
NAMES = ("optuna-tpe", "optuna-gp")


class FailsOnNone(Evaluator):
    """Token-sum score; a cell whose first edge is ``none`` fails (a fifth of the space)."""

    def __init__(self, space):
        self.space, self.calls = space, 0

    def evaluate(self, archs):
        self.calls += len(archs)
        return [Result.failed(a, "first edge is none") if a.tokens[0] == 0 else
                Result(a, "ok", {"val_acc": sum(a.tokens) / 24, "test_acc": 0.5}) for a in archs]


@pytest.mark.parametrize("name", NAMES)
def test_uses_optunas_own_sampler_with_its_defaults(name):
    s = make_strategy(name, SPACE, seed=0)
    sampler = s.study.sampler
    assert type(sampler) is (optuna.samplers.TPESampler if name == "optuna-tpe" else optuna.samplers.GPSampler)
    assert sampler._n_startup_trials == 10
    # One categorical per token position, choices = the space's allowed tokens.
    assert [list(d.choices) for d in s._dists.values()] == [list(SPACE.allowed_tokens(i)) for i in range(SPACE.length)]


def test_repeats_are_told_to_optuna_without_spending_budget():
    ev = ConvCount(SPACE)
    s = make_strategy("optuna-tpe", SPACE, seed=0)
    study = Study(SPACE, s, ev)
    study.run(60)
    trials = s.study.get_trials(deepcopy=False)
    assert len(ev.calls) == 60 and s.n_repeats > 0  # TPE re-proposes good cells once it has a model
    assert len(trials) == 60 + s.n_repeats and all(t.state.name == "COMPLETE" for t in trials)
    # A repeat is told the value of the network actually evaluated.
    by_params = {}
    for t in trials:
        by_params.setdefault(SPACE.key(SPACE.prune(SPACE.make(list(t.params.values())))), set()).add(t.value)
    assert all(len(v) == 1 for v in by_params.values())


def test_falls_back_to_an_unseen_random_architecture_and_tells_optuna():
    ev = ConvCount(SPACE)
    s = make_strategy("optuna-tpe", SPACE, seed=1, max_repeats=0)
    study = Study(SPACE, s, ev)
    study.run(80)
    networks = {SPACE.key(SPACE.prune(a)) for a in ev.calls}
    assert s.n_fallbacks > 0 and len(networks) == 80
    done = [t for t in s.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    evaluated = {SPACE.key(a) for a in ev.calls}
    assert evaluated <= {SPACE.key(SPACE.make(list(t.params.values()))) for t in done}  # fallbacks are trials too


@pytest.mark.parametrize("name", NAMES)
def test_failed_evaluations_are_failed_trials_and_replay_is_exact(tmp_path, name):
    ev = FailsOnNone(SPACE)
    strategy = make_strategy(name, SPACE, seed=2)
    with Journal(tmp_path / "full.jsonl", SPACE) as j:
        Study(SPACE, strategy, ev, journal=j).run(30)
    full = read_journal(tmp_path / "full.jsonl", SPACE)
    assert any(not r.ok for r in full) and any(r.ok for r in full)
    states = [t.state.name for t in strategy.study.get_trials(deepcopy=False)]
    assert states.count("FAIL") >= sum(not r.ok for r in full) and "RUNNING" not in states
    # A failed cell that comes back is not answered max_repeats times (the samplers ignore failed trials, GP
    # re-proposes it deterministically): the second failed repeat falls back to a random cell.
    assert len(states) < 4 * 30, (len(states), strategy.n_repeats, strategy.n_fallbacks)
    for cut in (0, 13):
        ev2 = FailsOnNone(SPACE)
        path = tmp_path / f"cut{cut}.jsonl"
        with Journal(path, SPACE) as j:
            for r in full[:cut]:
                j.append(r)
            Study(SPACE, make_strategy(name, SPACE, seed=2), ev2, journal=j, replay=full[:cut]).run(30)
        assert path.read_bytes() == (tmp_path / "full.jsonl").read_bytes()
        assert ev2.calls == 30 - cut


def test_results_it_never_asked_for_become_trials():
    first = Study(SPACE, make_strategy("random", SPACE, seed=0), ConvCount(SPACE))
    first.run(12)
    s = make_strategy("optuna-tpe", SPACE, seed=0)
    study = Study(SPACE, s, ConvCount(SPACE), replay=first.history)
    study.tell(first.history)  # a resumed parallel run hands its journal over up front
    study.run(20)
    assert len(s.study.get_trials(deepcopy=False)) >= 20 and study.n_evaluated == 20


def test_bad_option_is_one_line(synthetic_nb201, tmp_path, capsys):
    rc = main(["search", "--benchmark", str(synthetic_nb201), "--strategy", "optuna-gp", "--out", str(tmp_path / "r"),
               "-q", "--set", "strategy_options.n_ei_candidates=5"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown option 'n_ei_candidates' of strategy 'optuna-gp'" in err and not (tmp_path / "r").exists()


def test_cli_search_with_an_option(synthetic_nb201, tmp_path):
    out = tmp_path / "r"
    assert main(["search", "--benchmark", str(synthetic_nb201), "--strategy", "optuna-tpe", "--budget", "15",
                 "--set", "strategy_options.n_startup_trials=5", "--out", str(out), "-q"]) == 0
    assert len((out / "journal.jsonl").read_text().splitlines()) == 15
    assert json.loads((out / "config.json").read_text())["strategy_options"] == {"n_startup_trials": 5}
