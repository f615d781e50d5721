"""The zero-cost rung of the NB201 fidelity simulator: its compute, its labels, MF-NAS's pools, bad input.

Runs on the synthetic NB201 table (``synthetic_nb201``) and a synthetic proxy file written here for its 9,445
pruned cells (values: conv counts plus seeded noise; seconds vary per cell), so no data file is needed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nao.cli import main
from nao.errors import BenchmarkFileError, ConfigError
from nao.evaluators.tabular import TabularBenchmark
from nao.fidelity.bench import run_fidelity_bench
from nao.fidelity.scheduler import ASHA, Job, Record
from nao.fidelity.simulate import (
    PROXY_RUNG,
    SCREENED,
    ProxyScreen,
    ScreenedStrategyArm,
    TwoFidelityTable,
    ZeroCostRung,
    make_arm,
    simulate,
)
from nao.fidelity.strategy import MultiFidelityNAO
from nao.proxies.source import TableZeroCost
from nao.proxies.table import ProxyTable, distinct_cells, write_proxy_file
from nao.spaces import get_space

NAMES = ("flops", "synflow", "naswot", "jacov", "zico")
FAST = {"fit_steps": 5, "refit_steps": 2, "candidates": 20}  # NAO's controller kept cheap


def _write_proxies(path, space, archs, skip: int = 0):
    rng = np.random.default_rng(7)
    rows = []
    for i, cell in enumerate(distinct_cells(space, archs)[skip:]):
        convs = sum(t in (2, 3) for t in cell.tokens)
        values = {n: convs + float(rng.normal(0, 0.5)) for n in NAMES}
        rows.append((cell, values, 0.5 + 0.25 * (i % 4)))
    write_proxy_file(path, space, rows, NAMES)
    return path


@pytest.fixture(scope="module")
def zc(synthetic_nb201, tmp_path_factory):
    space = get_space("nb201")
    table = TwoFidelityTable.of(TabularBenchmark.load(synthetic_nb201, space))
    path = _write_proxies(tmp_path_factory.mktemp("zc") / "zc.csv.gz", space, table.table.archs)
    return table, ProxyTable.load(path, space), synthetic_nb201, path


def _tasks(arm):
    """Record every task the arm hands out (the simulator's view)."""
    seen, propose = [], arm.propose

    def spy():
        task = propose()
        if task is not None:
            seen.append(task)
        return task

    arm.propose = spy
    return seen


@pytest.mark.parametrize("name", ["random-mf-zc", "mf-nas", "nao-zc"])
def test_every_proxy_second_is_compute(zc, monkeypatch, name):
    table, proxies, _, _ = zc
    paid: dict = {}
    real = TableZeroCost._score

    def recording(self, arch):
        values, seconds = real(self, arch)
        paid[table.table.space.key(arch)] = seconds
        return values, seconds

    monkeypatch.setattr(TableZeroCost, "_score", recording)
    arm = make_arm(name, table, 0, proxies=proxies, nao_options=FAST)
    tasks = _tasks(arm)
    trace = simulate(arm, table, workers=3, max_cost_s=6000)
    trained = [t for t in tasks if t.rung != PROXY_RUNG]
    assert len(paid) >= (1000 if name == "nao-zc" else 256)  # NAO's seed pool / the reference sample
    assert trace.proxy_s == pytest.approx(sum(paid.values()))  # each network paid once, all of them counted
    floor = sum(table.cost_s(t.arch, t.rung, None) for t in trained if t.rung == 0)
    assert trace.compute_s[-1] >= sum(paid.values()) + floor
    assert trace.compute_s == sorted(trace.compute_s) and trace.compute_s[-1] >= 6000
    assert (trace.proxy_tasks > 0) == (name != "nao-zc")  # rung-0 tasks occupy workers; NAO's pool does not


def test_no_rung0_score_is_told_as_a_label(zc):
    table, proxies, _, _ = zc
    told = []

    class Spy(MultiFidelityNAO):
        def tell(self, results):
            told.extend(results)
            super().tell(results)

    rung = ZeroCostRung(proxies, seed=1)
    strategy = Spy(table.table.space, seed=1, max_fidelity=200, zero_cost=rung.source, **FAST)
    arm = ScreenedStrategyArm(strategy, table, ProxyScreen(ASHA(table.epochs, 4.0), eta=8.0), rung)
    trace = simulate(arm, table, workers=2, max_cost_s=4000)
    labels = [r for r in told if r.ok]
    released = [r for r in told if not r.ok]
    assert labels and {r.fidelity for r in labels} <= {12.0, 200.0} and trace.promotions > 0
    assert released and all(r.fidelity == 0.0 and r.error == SCREENED and not r.metrics for r in released)
    assert len(released) >= trace.queries[-1]  # the screen let fewer through than it held back
    # the strategy's training targets hold no fidelity-0 value
    assert all(not math.isfinite(v) for by in strategy._scores.values() for f, v in by.items() if f == 0.0)
    archs, _ = strategy._evaluated()
    assert {table.table.space.key(a) for a in archs} == {table.table.space.key(r.arch) for r in labels}


def test_the_screen_is_asha_on_its_own_rung():
    screen = ProxyScreen(ASHA((12, 200), eta=2.0), eta=4.0)
    for i, score in enumerate([0.1, 0.9, 0.3, 0.5, 0.2, 0.7, 0.4]):
        assert screen.next_job() == Job(0)
        screen.start(f"c{i}", 0)
        screen.report(Record(f"c{i}", 0, score))
        if i == 3:  # four scored: the best one (c1) goes on to 12 epochs
            assert screen.next_job() == Job(1, "c1")
            screen.start("c1", 1)
    assert screen.next_job() == Job(0)  # seven scored, one passed on: floor(7/4) = 1
    assert screen.next_job(beyond_quota=True) == Job(1, "c5")  # the space used up: the next best
    screen.report(Record("c1", 1, 0.8))
    screen.start("c5", 1)
    screen.report(Record("c5", 1, 0.6))
    assert screen.next_job() == Job(2, "c1")  # the trained rungs keep their own eta (2)


def test_rung0_score_is_the_aggregate_against_a_fixed_reference(zc):
    _, proxies, _, _ = zc
    rung = ZeroCostRung(proxies, seed=3)
    space = proxies.space
    cells = proxies.archs[:50]
    before = [rung.score(a) for a in cells]
    plain = TableZeroCost(proxies)
    plain.set_reference(rung.reference)
    assert before == pytest.approx(plain.aggregate_vs_reference(cells).tolist())
    rung.source.set_reference(proxies.archs[100:1100])  # a strategy moving the shared source's reference
    assert [rung.score(a) for a in cells] == before
    assert rung.source.scored == len({space.key(space.prune(a)) for a in [*rung.reference, *cells, *proxies.archs[100:1100]]})


def test_mf_nas_trains_only_the_best_of_its_screened_pools(zc):
    table, proxies, _, _ = zc
    arm = make_arm("mf-nas", table, 2, proxies=proxies)
    tasks = _tasks(arm)
    simulate(arm, table, workers=4, max_cost_s=14000)
    assert len(arm.pools) >= 2 and all(len(p) == 2000 for p in arm.pools)
    assert not set(arm.pools[0]) & set(arm.pools[1])  # fresh pools
    key = table.table.space.key
    kept = [k for ks in arm.kept for k in ks]
    for pool, best in zip(arm.pools, arm.kept):
        ranked = sorted(pool, key=lambda k: -arm.scores[k])
        assert best == ranked[:32]
    at12 = [key(t.arch) for t in tasks if t.rung == 0]
    assert at12 and set(at12) <= set(kept)
    at200 = [key(t.arch) for t in tasks if t.rung == 1]
    assert at200 and len(at200) <= 2 * len(arm.kept) and set(at200) <= set(at12)
    # stage 1's barrier: a pool's first 12-epoch task comes after every one of its cells was scored
    first12 = next(i for i, t in enumerate(tasks) if t.rung == 0)
    scored_before = {key(t.arch) for t in tasks[:first12] if t.rung == PROXY_RUNG}
    assert set(arm.pools[0]) <= scored_before  # (cells paid earlier, e.g. the reference's, are answered free)


@pytest.mark.parametrize("scheduler", ["sh", "hyperband"])
def test_the_zero_cost_rung_feeds_the_synchronous_schedulers(zc, scheduler):
    table, proxies, _, _ = zc
    arm = make_arm("random-mf-zc", table, 0, scheduler, proxies=proxies, zc_eta=4.0)
    tasks = _tasks(arm)
    trace = simulate(arm, table, workers=2, max_cost_s=8000)
    assert trace.compute_s[-1] >= 8000 and trace.proxy_tasks > 0
    scored = {table.table.space.key(t.arch) for t in tasks if t.rung == PROXY_RUNG}
    assert {table.table.space.key(t.arch) for t in tasks if t.rung >= 0} <= scored  # every trained cell screened


@pytest.mark.parametrize("name", ["nao-mf-zc", "mf-nas"])
def test_a_zero_cost_arm_is_reproducible_from_its_seed(zc, name):
    table, proxies, _, _ = zc
    # (a mild screen: NAO fits a round per few screened proposals, so a 1/62.5 screen makes many small rounds)
    a, b = (simulate(make_arm(name, table, 5, "asha", proxies=proxies, nao_options=FAST, zc_eta=4.0), table, 2, 3000)
            for _ in range(2))
    assert a.test == b.test and a.compute_s == b.compute_s and a.proxy_s == b.proxy_s


def test_zero_cost_arms_need_proxies(zc, capsys, tmp_path):
    table, _, path, _ = zc
    with pytest.raises(ConfigError, match="--proxies"):
        make_arm("mf-nas", table, 0)
    with pytest.raises(ConfigError, match="--proxies"):
        run_fidelity_bench(path, ["random-mf", "nao-mf-zc"], seeds=1, workers=1)
    assert main(["bench", "--benchmark", str(path), "--fidelity", "asha", "--strategies", "random-mf-zc",
                 "--seeds", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--proxies" in err[0]
    partial = _write_proxies(tmp_path / "partial.csv.gz", table.table.space, table.table.archs, skip=5)
    with pytest.raises(BenchmarkFileError, match="no proxy"):
        run_fidelity_bench(path, ["mf-nas"], seeds=1, workers=1, proxies=partial)


def test_cli_runs_the_zero_cost_arms(zc, capsys):
    _, _, path, zc_path = zc
    assert main(["bench", "--benchmark", str(path), "--fidelity", "asha", "--proxies", str(zc_path),
                 "--strategies", "random-mf-zc,mf-nas,random-mf", "--seeds", "1", "--workers", "1",
                 "--max-gpu-hours", "1", "--zc-eta", "20", "-q"]) == 0
    out = capsys.readouterr().out
    assert "zero-cost rung (eta 20)" in out and "proxy h" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0] in
            ("random-mf-zc", "mf-nas", "random-mf")}
    assert set(rows) == {"random-mf-zc", "mf-nas", "random-mf"}
    assert float(rows["random-mf"][-1]) == 0.0 and float(rows["mf-nas"][-1]) > 0.0
