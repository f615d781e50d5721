"""Multi-fidelity targets, multi-fidelity NAO and the NB201 two-fidelity simulator."""

from __future__ import annotations

import gzip
import math

import pytest

from nao.cli import main
from nao.errors import ConfigError
from nao.evaluators.tabular import TabularBenchmark
from nao.fidelity.bench import run_fidelity_bench
from nao.fidelity.scheduler import ASHA
from nao.fidelity.simulate import StrategyArm, TwoFidelityTable, make_arm, simulate
from nao.fidelity.strategy import MultiFidelityNAO
from nao.fidelity.targets import fidelity_targets
from nao.results import Result
from nao.spaces import get_space
from nao.strategies import make_strategy

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _arch_str(i: int) -> str:
    t = [(i // 5**k) % 5 for k in range(6)]
    e = [f"{OPS[o]}~{s}" for o, s in zip(t, (0, 0, 1, 0, 1, 2))]
    return f"|{e[0]}|+|{e[1]}|{e[2]}|+|{e[3]}|{e[4]}|{e[5]}|"


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """All 15,625 cells: 200-epoch val a function of the ops, 12-epoch val a noisy lower copy."""
    path = tmp_path_factory.mktemp("t") / "two.csv.gz"
    lines = ["arch_str,val_acc,test_acc,val_acc_12ep,train_time_s"]
    for i in range(5**6):
        val = 80 + (i * 37 % 301) / 30
        lines.append(f"{_arch_str(i)},{val},{val + 2},{val - 15 + (i % 7) / 3},{1000 + 10 * (i % 13)}")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return TwoFidelityTable.of(TabularBenchmark.load(path, get_space("nb201"))), path


def test_targets_keep_the_order_within_a_rung_and_interleave_by_the_fitted_line():
    s = {"a": {12: 0.7, 200: 0.9}, "b": {12: 0.6, 200: 0.85}, "c": {12: 0.5, 200: 0.8},
         "d": {12: 0.66}, "e": {12: 0.3}, "f": {12: -math.inf}}
    t = fidelity_targets(s)
    assert "f" not in t  # a failure is no label
    assert t["b"] < t["d"] < t["a"] and t["e"] < t["c"]
    assert fidelity_targets(s, "raw")["d"] == 0.66
    assert sorted(fidelity_targets(s, "top")) == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="unknown mode"):
        fidelity_targets(s, "mean")


def test_multi_fidelity_nao_learns_from_low_rung_labels():
    space = get_space("nb201")
    s = MultiFidelityNAO(space, seed=0, seed_archs=6, max_fidelity=200, fit_steps=5, refit_steps=2)
    archs = s.ask(6)
    s.tell([Result(a, "ok", {"val_acc": 0.5 + 0.01 * i}, fidelity=12) for i, a in enumerate(archs)])
    s.tell([Result(archs[-1], "ok", {"val_acc": 0.9}, fidelity=200)])
    trained_on, values = s._evaluated()
    assert len(trained_on) == 6 and max(values) == 0.9  # every rung-0 label, the top-rung score where known
    assert s.ask(3)  # a round from the mixed labels
    assert s.predicted(archs).shape == (6,)


def test_simulator_charges_promotions_and_never_shows_test(small_table):
    table, _ = small_table
    seen = []

    class Spy(MultiFidelityNAO):
        def tell(self, results):
            seen.extend(results)
            super().tell(results)

    arm = StrategyArm(Spy(table.table.space, seed=0, max_fidelity=200, fit_steps=5, refit_steps=2), table,
                      ASHA(table.epochs))
    trace = simulate(arm, table, workers=3, max_cost_s=20000)
    assert all(set(r.metrics) == {"val_acc"} for r in seen)
    assert {r.fidelity for r in seen} == {12.0, 200.0}
    assert trace.compute_s[-1] >= 20000 and trace.compute_s == sorted(trace.compute_s)
    assert trace.wall_s[-1] < trace.compute_s[-1]  # three workers in parallel
    assert trace.promotions > 0 and trace.rework_s > 0
    arch = table.table.archs[0]
    cont = TwoFidelityTable.of(table.table, "continue")
    t = table.table.metrics["train_time_s"][0]
    assert table.cost_s(arch, 0, None) == pytest.approx(t * 12 / 200)
    assert table.cost_s(arch, 1, 0) == pytest.approx(t) and cont.cost_s(arch, 1, 0) == pytest.approx(t * 188 / 200)


def test_one_worker_full_fidelity_is_the_plain_strategy(small_table):
    table, _ = small_table
    trace = simulate(make_arm("random", table, seed=3), table, workers=1, max_cost_s=5000)
    plain = make_strategy("random", table.table.space, seed=3).ask(len(trace.test))
    scores = [100 * table.score(a, 1) for a in plain]
    assert trace.val == [max(scores[: i + 1]) for i in range(len(scores))]
    assert trace.wall_s == trace.compute_s  # one worker: wall time is compute


@pytest.mark.parametrize("arm", ["nao-mf", "nao-mf-blend", "random-mf", "optuna-tpe-hyperband", "optuna-tpe"])
def test_every_arm_runs_under_every_scheduler(small_table, arm):
    table, _ = small_table
    for sched in ("asha", "sh", "hyperband"):
        fast = {"fit_steps": 5, "refit_steps": 2}  # only nao-mf reads it
        trace = simulate(make_arm(arm, table, 0, sched, nao_options=fast), table, workers=2, max_cost_s=8000)
        assert trace.test and trace.compute_s[-1] >= 8000


@pytest.mark.parametrize("arm", ["nao-mf", "random-mf", "optuna-tpe-hyperband"])
def test_an_arm_is_reproducible_from_its_seed(small_table, arm):
    # Optuna's HyperbandPruner hashes the study name into brackets: the arm must name its study by seed.
    table, _ = small_table
    fast = {"fit_steps": 5, "refit_steps": 2}
    a, b = (simulate(make_arm(arm, table, 3, "hyperband", nao_options=fast), table, workers=2, max_cost_s=20000)
            for _ in range(2))
    assert a.test == b.test and a.compute_s == b.compute_s


def test_table_without_a_second_fidelity_is_refused(tmp_path, capsys):
    path = tmp_path / "one.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("arch_str,val_acc,train_time_s\n" + "".join(f"{_arch_str(i)},{80 + i / 10},100\n" for i in range(30)))
    with pytest.raises(ConfigError, match="--fidelity.*val_acc_12ep"):
        run_fidelity_bench(path, ["random-mf"], seeds=1, workers=1)
    assert main(["bench", "--benchmark", str(path), "--fidelity", "asha", "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fidelity" in err[0]


def test_bench_summary_and_cli(small_table, tmp_path, capsys):
    _, path = small_table
    out = tmp_path / "s.json"
    assert main(["bench", "--benchmark", str(path), "--fidelity", "asha", "--seeds", "2", "--workers", "1",
                 "--strategies", "random-mf,random", "--max-gpu-hours", "3", "--targets", "80,99", "-q",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "random-mf" in text and "GPUh to 99.00" in text
    import json

    s = json.loads(out.read_text())
    assert s["random"]["gpu_hours_to"]["99.00"] is None  # never reached within the budget
    assert s["random-mf"]["gpu_hours_to"]["80.00"] is not None
    # The picture beside the JSON: accuracy against compute and against wall time, one line per arm.
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot: {png}" in text
    from nao.viz.fidelityplot import fidelity_figure

    fig = fidelity_figure(s)
    assert [len(ax.get_lines()) for ax in fig.axes] == [2 + 2, 2 + 2]  # two arms, two target lines
    assert main(["bench", "--benchmark", str(path), "--fidelity", "asha", "--max-gpu-hours", "0"]) == 2
    assert main(["bench", "--benchmark", str(path), "--fidelity", "asha", "--plot", str(tmp_path / "f.txt")]) == 2


def test_the_simulators_eta_defaults_to_the_rungs_ratio(small_table):
    table, path = small_table
    assert make_arm("random-mf", table, seed=0).scheduler.eta == pytest.approx(200 / 12)
    assert make_arm("random-mf", table, seed=0, eta=3).scheduler.eta == 3
    s = run_fidelity_bench(path, ["random-mf"], seeds=1, max_gpu_hours=1, workers=1)
    assert s["_settings"]["eta"] == pytest.approx(200 / 12)


def test_a_table_search_under_asha(small_table):
    from nao.fidelity.simulate import TableAtFidelity
    from nao.fidelity.study import FidelityStudy

    table, _ = small_table
    space = table.table.space
    study = FidelityStudy(space, make_strategy("random", space, seed=0), TableAtFidelity(table), ASHA(table.epochs))
    best = study.run(budget=30)
    top = [r for r in study.history if r.fidelity == 200.0]
    # 30 at 12 epochs; at least the final top third at 200 (ASHA also promoted some early leaders)
    assert study.n_candidates == 30 and len(study.history) == 30 + len(top) and 10 <= len(top) < 20
    assert best.fidelity == 200.0 and best.metrics["val_acc"] == max(r.metrics["val_acc"] for r in top)
