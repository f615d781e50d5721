"""``nao bench --plot`` / ``--json``: best-so-far per query for every strategy, validation and test panels."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from nao.bench import best_so_far_curves, run_bench, summarize_curves
from nao.cli import main
from nao.results import Result
from nao.spaces import get_space
from nao.viz.benchplot import bench_figure


@pytest.fixture(scope="module")
def small_bench(nb201_path, tmp_path_factory):
    """2 strategies x 2 seeds x 20 queries on the real NB201 table, through the CLI."""
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", "--benchmark", str(nb201_path), "--strategies", "random,rea", "--budget", "20", "--seeds", "2",
            "--workers", "1", "--json", str(out / "bench.json"), "--plot", str(out / "plot.png"), "-q"]
    assert main(argv) == 0
    return out


def test_bench_plot_has_two_panels_of_both_strategies(small_bench):
    summary = json.loads((small_bench / "bench.json").read_text())
    fig = bench_figure(summary)
    assert len(fig.axes) == 2
    for ax, opt in zip(fig.axes, (summary["_optimum"]["best_val"], summary["_optimum"]["test_of_best_val"])):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(lab.startswith("random (") for lab in labels) and any(lab.startswith("rea (") for lab in labels)
        assert any(lab.startswith("table optimum") for lab in labels)
        assert len(ax.collections) == 2  # one ± s.e. band per strategy
        hlines = [line for line in ax.get_lines() if len(set(line.get_ydata())) == 1 and line.get_linestyle() == "--"]
        assert [line.get_ydata()[0] for line in hlines] == [pytest.approx(opt)]
    # Both PNGs (--plot and the one beside --json) are real two-panel pictures: wide, not blank.
    for name in ("plot.png", "bench.png"):
        img = mpimg.imread(small_bench / name)
        assert img.shape[1] > 1.8 * img.shape[0] and img.shape[0] > 400 and img[..., :3].std() > 0.05


def test_bench_curves_agree_with_the_checkpoints(small_bench):
    summary = json.loads((small_bench / "bench.json").read_text())
    for strategy in ("random", "rea"):
        curve = summary["_curves"][strategy]
        assert len(curve["val_mean"]) == 20 and len(curve["test_sem"]) == 20
        for point in ("20",):  # the summary's checkpoint is the curve at that query
            assert curve["test_mean"][int(point) - 1] == pytest.approx(summary[strategy][point]["mean"])
            assert curve["val_mean"][int(point) - 1] == pytest.approx(summary[strategy][point]["val_mean"])
            assert curve["val_sem"][int(point) - 1] == pytest.approx(summary[strategy][point]["val_sem"])
        vals = np.array(curve["val_mean"], dtype=float)
        assert np.all(np.diff(vals[np.isfinite(vals)]) >= -1e-9)  # best so far never drops
        assert vals[-1] <= summary["_optimum"]["best_val"] + 1e-9


def test_best_so_far_curves_by_hand():
    space = get_space("nb201")
    a = space.make([0] * 6)
    history = [Result.failed(a, "x"), Result(a, "ok", {"val_acc": 0.5, "test_acc": 0.6}),
               Result(a, "ok", {"val_acc": 0.4, "test_acc": 0.9}), Result(a, "ok", {"val_acc": 0.7, "test_acc": 0.65})]
    tests, vals = best_so_far_curves(history, 5)
    assert np.isnan(tests[0]) and tests[1:] == pytest.approx([60, 60, 65, 65])
    assert vals[1:] == pytest.approx([50, 50, 70, 70])
    s = summarize_curves([[np.nan, 1.0, 3.0], [np.nan, np.nan, 5.0]])
    assert s["mean"] == [None, 1.0, 4.0] and s["sem"] == [None, 0.0, pytest.approx(1.0)]


def test_bench_plot_under_a_constraint_draws_the_feasible_optimum(nb201_path):
    summary = run_bench("nb201", nb201_path, ["random"], 10, 2, workers=1, constraint="params_m<=0.5")
    assert summary["_optimum"] == summary["_constraint"] and summary["_optimum"]["feasible_rows"] < 15625
    ax = bench_figure(summary).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lab.startswith("feasible optimum under params_m<=0.5") for lab in labels)


@pytest.mark.parametrize("flag", [["--plot", "out.pdf"], ["--plot", "."], ["--json", "."]])
def test_bench_bad_plot_path_exit_2_before_running(synthetic_nb201, tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(tmp_path)
    ran = []
    monkeypatch.setattr("nao.cli.bench.run_bench", lambda *a, **k: ran.append(1))
    assert main(["bench", "--benchmark", str(synthetic_nb201), "--strategies", "random", "--budget", "10",
                 "--seeds", "1", *flag]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nao bench: error: {flag[0]}") and err.count("\n") == 1
    assert not ran and not list(tmp_path.glob("*.png"))
