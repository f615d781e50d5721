"""Compute as a budget: fidelity and cost per evaluation, in the journal, ``--max-cost``, curves against cost."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from nao.cli import main
from nao.evaluators.base import Evaluator
from nao.evaluators.tabular import TabularEvaluator
from nao.journal import Journal, read_journal, record_to_result
from nao.results import Result
from nao.spaces import get_space
from nao.spaces.base import Architecture
from nao.strategies import make_strategy
from nao.study import Study

SPACE = get_space("nb201")


class Priced(Evaluator):
    """Every evaluation costs ``1 + tokens[0]`` units (so costs differ), scored by token sum."""

    cost_unit = "units"

    def __init__(self, space):
        self.space = space
        self.calls = 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[Result]:
        self.calls += len(archs)
        return [Result(a, "ok", {"val_acc": sum(a.tokens) / 24}, fidelity=12.0, cost=1.0 + a.tokens[0]) for a in archs]


def test_journal_keeps_fidelity_and_cost_and_reads_old_records(tmp_path):
    arch = SPACE.make([1, 2, 3, 4, 0, 1])
    path = tmp_path / "j.jsonl"
    with Journal(path, SPACE) as j:
        j.append(Result(arch, "ok", {"val_acc": 0.5}, 3.0, fidelity=12.0, cost=7.5))
    (r,) = read_journal(path, SPACE)
    assert (r.fidelity, r.cost, r.cost_s) == (12.0, 7.5, 3.0)
    old = {"arch": SPACE.format(arch), "status": "ok", "metrics": {"val_acc": 0.5}, "cost_s": 3.0, "error": None, "info": {}}
    r = record_to_result(old, SPACE)  # a journal written before fidelity/cost existed
    assert (r.fidelity, r.cost, r.cost_s) == (None, 0.0, 3.0)


def test_tabular_cost_scales_train_time_by_the_fidelity(synthetic_nb201):
    arch = SPACE.make([3] * 6)
    (full,) = TabularEvaluator(SPACE, synthetic_nb201).evaluate([arch])
    (short,) = TabularEvaluator(SPACE, synthetic_nb201, epochs=12).evaluate([arch])
    assert full.fidelity == 200 and full.cost == pytest.approx(full.cost_s) and full.cost_s > 0
    assert short.fidelity == 12 and short.cost == pytest.approx(full.cost_s * 12 / 200)


def test_max_cost_stops_before_the_next_evaluation():
    ev = Priced(SPACE)
    study = Study(SPACE, make_strategy("random", SPACE, seed=0), ev)
    study.run(budget=100, max_cost=20.0)
    costs = [r.cost for r in study.history]
    # Stops as soon as the spent cost reaches the bound: the last evaluation is the one that crossed it.
    assert sum(costs) >= 20.0 and sum(costs[:-1]) < 20.0 and study.n_evaluated < 100
    assert study.spent_cost == pytest.approx(sum(costs)) and ev.calls == study.n_evaluated


def test_budget_still_bounds_a_run_with_a_large_max_cost():
    study = Study(SPACE, make_strategy("random", SPACE, seed=0), Priced(SPACE))
    study.run(budget=10, max_cost=1e9)
    assert study.n_evaluated == 10


def test_replayed_journal_cost_counts():
    first = Study(SPACE, make_strategy("random", SPACE, seed=1), Priced(SPACE))
    first.run(budget=5)
    spent = first.spent_cost
    ev = Priced(SPACE)
    resumed = Study(SPACE, make_strategy("random", SPACE, seed=1), ev, replay=first.history)
    resumed.run(budget=100, max_cost=spent)  # the journal alone spends the bound: nothing new runs
    assert ev.calls == 0 and resumed.n_evaluated == 5


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_study_refuses_a_max_cost_that_is_not_positive(bad):
    from nao.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-cost"):
        Study(SPACE, make_strategy("random", SPACE), Priced(SPACE)).run(5, max_cost=bad)


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf", "abc"])
def test_cli_max_cost_bad_values_exit_2_without_a_run_directory(synthetic_nb201, tmp_path, capsys, value):
    try:
        rc = main(["search", "--benchmark", str(synthetic_nb201), "--out", str(tmp_path / "r"), "-q",
                   f"--max-cost={value}"])
    except SystemExit as e:  # argparse's own one-line error for a value that is not a number
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and "--max-cost" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cli_max_cost_run_records_unit_and_resumes_with_a_larger_bound(synthetic_nb201, tmp_path):
    out = tmp_path / "r"
    # Synthetic rows cost 900-3000 gpu_s: 10,000 gpu_s is reached after 4-11 queries of 100.
    assert main(["search", "--benchmark", str(synthetic_nb201), "--strategy", "random", "--budget", "100",
                 "--max-cost", "10000", "--out", str(out), "-q"]) == 0
    result = json.loads((out / "result.json").read_text())
    lines = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert result["cost_unit"] == "gpu_s" and result["stopped_by"] == "max_cost" and result["max_cost"] == 10000
    assert result["cost"] == pytest.approx(sum(r["cost"] for r in lines)) and all(r["fidelity"] == 200 for r in lines)
    assert sum(r["cost"] for r in lines[:-1]) < 10000 <= result["cost"] and len(lines) < 100
    assert main(["search", "--resume", str(out), "--max-cost", "20000", "-q"]) == 0
    again = json.loads((out / "result.json").read_text())
    more = (out / "journal.jsonl").read_text().splitlines()
    assert len(more) > len(lines) and 20000 <= again["cost"] and again["cost"] - json.loads(more[-1])["cost"] < 20000


def test_cli_12_epoch_objective_costs_12_of_200_epochs(synthetic_nb201, tmp_path):
    out = tmp_path / "r"
    assert main(["search", "--benchmark", str(synthetic_nb201), "--strategy", "random", "--budget", "5",
                 "--objective", "val_acc_12ep:max", "--out", str(out), "-q"]) == 0
    rec = json.loads((out / "journal.jsonl").read_text().splitlines()[0])
    assert rec["fidelity"] == 12 and rec["cost"] == pytest.approx(rec["cost_s"] * 12 / 200)


def test_bench_reports_compute_and_scores_at_equal_compute(synthetic_nb201, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert main(["bench", "--benchmark", str(synthetic_nb201), "--strategies", "random,local", "--budget", "30",
                 "--seeds", "2", "--workers", "1", "--json", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    text = capsys.readouterr().out
    assert "compute spent on the first N queries" in text and "at equal compute" in text
    for s in ("random", "local"):
        spent = [data[s][n]["cost_mean"] for n in ("25", "30")]
        assert 0 < spent[0] < spent[1]  # cumulative: more queries, more compute
    by_cost = data["_by_cost"]
    assert by_cost["unit"] == "gpu_s" and by_cost["levels"]["30"] > by_cost["levels"]["25"] > 0
    # Within the compute of 30 average queries a run scores at most what its 30 queries found... or all of them.
    assert len(by_cost["random"]["30"]["per_seed"]) == 2 and by_cost["random"]["30"]["val_mean"] <= 100


def test_report_draws_best_so_far_against_compute(synthetic_nb201, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["search", "--benchmark", str(synthetic_nb201), "--strategy", "random", "--budget", "12",
                 "--max-cost", "8000", "--out", str(out), "-q"]) == 0
    assert main(["report", str(out)]) == 0
    md = (out / "report" / "report.md").read_text()
    assert (out / "report" / "best_so_far_cost.png").is_file()
    assert "gpu_s" in md and "max_cost 8,000" in md
    # A run recorded before compute existed (every cost 0) gets no compute curve.
    lines = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    (out / "journal.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k not in ("cost", "fidelity")})
                                               + "\n" for r in lines))
    (out / "report" / "best_so_far_cost.png").unlink()
    assert main(["report", str(out)]) == 0
    assert not (out / "report" / "best_so_far_cost.png").exists()
