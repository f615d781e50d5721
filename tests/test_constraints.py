"""Constrained search: parsing, no infeasible architecture ever evaluated, budget counting, bench output."""

import json

import numpy as np
import pytest

from nao.bench import feasible_optimum, run_bench
from nao.cli import main
from nao.constraints import ConstrainedStrategy, Constraint, constrain, table_feasibility
from nao.errors import ConfigError
from nao.evaluators.tabular import TabularEvaluator
from nao.results import Objective
from nao.spaces import get_space
from nao.strategies import make_strategy, strategy_names
from nao.study import Study

NB201 = get_space("nb201")
BOUND = "params_m<=0.3443"  # the table's median params_m: about half the rows are feasible


@pytest.mark.parametrize("text, parsed", [
    ("params_m<=0.5", ("params_m", "<=", 0.5)),
    (" train_time_s > 1e3 ", ("train_time_s", ">", 1000.0)),
    ("params_m<.25", ("params_m", "<", 0.25)),
    ("params_m>=-1", ("params_m", ">=", -1.0)),
])
def test_parse(text, parsed):
    c = Constraint.parse(text)
    assert (c.metric, c.op, c.bound) == parsed


@pytest.mark.parametrize("text, fragment", [
    ("params_m=0.5", "expected METRIC<=NUMBER"),
    ("params_m<=", "expected METRIC<=NUMBER"),
    ("<=0.5", "expected METRIC<=NUMBER"),
    ("params_m<=0.5x", "expected METRIC<=NUMBER"),
    ("params_m<=nan", "expected METRIC<=NUMBER"),
    ("params_m=<0.5", "expected METRIC<=NUMBER"),
    ("flops<=3", "unknown metric 'flops'"),
])
def test_parse_errors_are_one_line_naming_the_text(text, fragment):
    with pytest.raises(ConfigError) as e:
        Constraint.parse(text, ["params_m", "train_time_s"])
    msg = str(e.value)
    assert fragment in msg and repr(text) in msg and "\n" not in msg


def test_holds():
    assert Constraint.parse("a<1").holds(0.5) and not Constraint.parse("a<1").holds(1.0)
    assert Constraint.parse("a>=1").holds(1.0) and not Constraint.parse("a>1").holds(1.0)
    assert not Constraint.parse("a<=1").holds(float("nan"))


def test_accuracy_is_not_a_cost_column(nb201_table):
    with pytest.raises(ConfigError, match="unknown metric 'val_acc'.*params_m"):
        table_feasibility("val_acc>=0.9", nb201_table)


class Recording(TabularEvaluator):
    def __init__(self, space, table):
        super().__init__(space, table)
        self.calls = []

    def evaluate(self, archs):
        self.calls.extend(archs)
        return super().evaluate(archs)


@pytest.mark.parametrize("name", strategy_names())
def test_no_infeasible_architecture_is_evaluated_nor_counted(nb201_table, name):
    from nao.proxies.source import FunctionZeroCost
    from nao.registry import STRATEGIES

    ev = Recording(NB201, nb201_table)
    # Strategies that need proxies get a stand-in (live edges): their pools are drawn from the feasible cells too.
    zero_cost = (FunctionZeroCost(NB201, ("live",), lambda a: ([float(sum(t != 0 for t in a.tokens))], 0.0))
                 if STRATEGIES.get(name).needs_zero_cost else None)
    strategy = constrain(name, NB201, BOUND, nb201_table, seed=0, zero_cost=zero_cost)
    study = Study(NB201, strategy, ev)
    study.run(30)
    params = nb201_table.metrics["params_m"]
    assert len(ev.calls) == study.n_evaluated == 30  # the budget counts feasible evaluations only
    assert all(params[nb201_table.row(a)] <= 0.3443 for a in ev.calls)
    assert strategy.n_proposed >= 30 + strategy.n_infeasible and 0.0 <= strategy.infeasible_fraction < 1.0


def test_random_rejections_are_counted_and_cost_nothing(nb201_table):
    ev = Recording(NB201, nb201_table)
    strategy = constrain("random", NB201, BOUND, nb201_table, seed=1)
    Study(NB201, strategy, ev).run(60)
    # Random never repeats a network, so every proposal is either evaluated or rejected.
    assert strategy.n_proposed == 60 + strategy.n_infeasible
    share = 1 - np.mean(nb201_table.metrics["params_m"] <= 0.3443)
    assert strategy.n_infeasible > 10 and abs(strategy.infeasible_fraction - share) < 0.2


@pytest.mark.parametrize("name", ["nao", "seminas"])
def test_nao_generates_only_feasible_candidates(nb201_table, name):
    # The controller's decoded candidates and its random seed pool are filtered as they are made, so
    # nothing is refused afterwards (a refusal would make NAO refit and redo a round).
    strategy = constrain(name, NB201, BOUND, nb201_table, seed=0)
    study = Study(NB201, strategy, TabularEvaluator(NB201, nb201_table))
    study.run(40)
    assert strategy.inner.feasible is not None and strategy.inner.rounds >= 2
    assert strategy.n_infeasible == 0 and strategy.n_proposed == 40


def test_wrapper_ranks_by_the_inner_objective_and_passes_attributes_on(nb201_table):
    wrapped = constrain("bananas", NB201, BOUND, nb201_table, seed=0, objective="val_acc_12ep:max")
    assert wrapped.objective == wrapped.inner.objective == Objective("val_acc_12ep", "max")
    assert wrapped.inner.feasible == wrapped.feasibility.accepts  # given when built, not set afterwards
    Study(NB201, wrapped, TabularEvaluator(NB201, nb201_table), objective="val_acc_12ep:max")
    assert wrapped.rounds == 0 and isinstance(wrapped, ConstrainedStrategy)


def test_wrapper_refuses_an_inner_strategy_built_without_the_filter(nb201_table):
    feasibility = table_feasibility(BOUND, nb201_table)
    with pytest.raises(ValueError, match="feasible=feasibility.accepts"):
        ConstrainedStrategy(make_strategy("nao", NB201, seed=0), feasibility)


def test_feasible_optimum(nb201_table):
    free, tight = feasible_optimum(nb201_table), feasible_optimum(nb201_table, Constraint.parse(BOUND))
    assert free["feasible_rows"] == 15625 and round(free["best_val"], 3) == 91.607
    assert round(free["test_of_best_val"], 3) == round(free["best_test"], 3) == 94.373  # data README
    assert tight["feasible_rows"] == int(np.sum(nb201_table.metrics["params_m"] <= 0.3443))
    assert tight["best_val"] < free["best_val"] and tight["best_test"] <= free["best_test"]


def test_bench_constrained_scores_are_feasible(nb201_path, nb201_table):
    out = run_bench("nb201", nb201_path, ["random", "local"], budget=25, seeds=2, workers=1, constraint=BOUND)
    opt = out["_constraint"]
    assert opt["constraint"] == "params_m<=0.3443"
    for s in ("random", "local"):
        assert 0 < out["_infeasible_fraction"][s]["mean"] < 1
        assert max(out[s]["25"]["val_per_seed"]) <= opt["best_val"] + 1e-9
        assert max(out[s]["25"]["per_seed"]) <= opt["best_test"] + 1e-9


def test_bench_constraint_with_fewer_feasible_rows_than_budget(nb201_path):
    with pytest.raises(ConfigError, match="no architecture in .* satisfies it"):
        run_bench("nb201", nb201_path, ["random"], budget=25, seeds=1, workers=1, constraint="params_m<0.01")


@pytest.mark.parametrize("text, fragment", [("params_m=0.5", "'params_m=0.5'"), ("val_acc>=0.9", "unknown metric")])
def test_cli_bench_bad_constraint_exits_2(nb201_path, capsys, text, fragment):
    rc = main(["bench", "--benchmark", str(nb201_path), "--strategies", "random", "--budget", "25",
               "--seeds", "1", "--workers", "1", "--constraint", text, "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_cli_bench_constraint_prints_optimum_and_infeasible_share(nb201_path, tmp_path, capsys):
    out = tmp_path / "c.json"
    rc = main(["bench", "--benchmark", str(nb201_path), "--strategies", "random", "--budget", "25",
               "--seeds", "2", "--workers", "1", "--constraint", BOUND, "--json", str(out), "-q"])
    text = capsys.readouterr().out
    assert rc == 0 and "feasible optimum under params_m<=0.3443" in text and "infeasible" in text
    data = json.loads(out.read_text())
    assert {"_constraint", "_infeasible_fraction", "random"} <= set(data)
