"""``nao report`` and ``nao show``: PNGs and report.md from a run directory; cell diagrams for every space."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from nao.cli import main
from nao.journal import Journal
from nao.results import Result
from nao.rundir import RunDir
from nao.spaces import get_space, space_names
from nao.viz import best_so_far, draw_architecture
from nao.viz.cells import _conv_graph, _layout
from nao.viz.style import op_colors as _op_colors


def _png_ok(path) -> None:
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05  # not blank


def test_report_of_a_search(nb201_path, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--benchmark", str(nb201_path), "--strategy", "random", "--budget", "15",
                 "--out", str(run), "-q"]) == 0
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    assert "report.md" in capsys.readouterr().out
    for name in ("best_so_far.png", "best_cell.png"):
        _png_ok(run / "report" / name)
    md = (run / "report" / "report.md").read_text()
    best = json.loads((run / "best.json").read_text())
    assert best["arch"] in md and f"{100 * best['metrics']['test_acc']:.2f}%" in md
    assert "recorded no predictions" in md


def test_report_with_predictions_and_failures(tmp_path):
    space = get_space("nb201")
    rd = RunDir.create(tmp_path / "run", {"space": "nb201", "strategy": "nao", "seed": 0, "budget": 30})
    rng = np.random.default_rng(0)
    preds = []
    with Journal(rd.journal_path, space) as j:
        for i in range(30):
            arch = space.sample(rng)
            if i % 7 == 3:
                j.append(Result.failed(arch, "RuntimeError: out of memory"))
                continue
            acc = float(rng.uniform(0.6, 0.92))
            j.append(Result(arch, "ok", {"val_acc": acc}, 10.0))
            preds.append({"arch": space.format(arch), "tokens": list(arch.tokens), "predicted": acc + rng.normal(0, .02),
                          "true": acc})
    rd.write_json("predictions.json", {"scale": "x", "predictions": preds})
    assert main(["report", str(tmp_path / "run"), "-q"]) == 0
    out = tmp_path / "run" / "report"
    _png_ok(out / "predicted_vs_true.png")
    md = (out / "report.md").read_text()
    assert "(4 failed)" in md and "predicted_vs_true.png" in md and "test_acc" not in md


def test_report_bad_dir_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert f"nao report {tmp_path}: not a run directory" in capsys.readouterr().err


def test_best_so_far_curve():
    space = get_space("nb201")
    a = [space.make([i, 0, 0, 0, 0, 0]) for i in range(4)]
    results = [Result.failed(a[0], "x"), Result(a[1], "ok", {"val_acc": .5, "test_acc": .4}),
               Result(a[2], "ok", {"val_acc": .3, "test_acc": .9}), Result(a[3], "ok", {"val_acc": .7, "test_acc": .6})]
    best, test = best_so_far(results)
    assert np.isnan(best[0]) and list(best[1:]) == [.5, .5, .7] and list(test[1:]) == [.4, .4, .6]


@pytest.mark.parametrize("name", [n for n in space_names()])
def test_show_every_space(name, tmp_path, capsys):
    space = get_space(name)
    arch = space.sample(np.random.default_rng(1))
    out = tmp_path / f"{name}.png"
    assert main(["show", space.format(arch), "--space", name, "--out", str(out)]) == 0
    _png_ok(out)


def test_show_named_and_bad_input(tmp_path, capsys):
    if "rnn" in space_names():
        assert main(["show", "NAO", "--space", "rnn", "--out", str(tmp_path / "r.png")]) == 0
    assert main(["show", "|bogus~0|", "--space", "nb201", "--out", str(tmp_path / "x.png")]) == 2
    assert "nb201" in capsys.readouterr().err
    assert main(["show", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--out", str(tmp_path / "x.pdf")]) == 2
    assert "--out" in capsys.readouterr().err


def test_layered_layout_routes_every_edge_through_consecutive_layers():
    for name in ("nao-ws", "nao", "darts"):
        if name not in space_names():
            continue
        space = get_space(name)
        rng = np.random.default_rng(0)
        for _ in range(20):
            arch = space.sample(rng)
            for cell in space.cells(arch):
                g = _conv_graph(space, cell, _op_colors(space.ops))
                pos, chains = _layout(g)
                for chain in chains:
                    assert [pos[k][0] for k in chain] == list(range(int(pos[chain[0]][0]), int(pos[chain[-1]][0]) + 1))
                slots = [v for v in pos.values()]
                assert len(set(slots)) == len(slots)  # no two nodes in one place


def test_draw_architecture_nb201(tmp_path):
    space = get_space("nb201")
    path = draw_architecture(space, space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), tmp_path / "c.png")
    _png_ok(path)


def test_report_reads_predictions_from_the_journal_info(tmp_path):
    space = get_space("nb201")
    rd = RunDir.create(tmp_path / "run", {"space": "nb201", "strategy": "nao", "seed": 0, "budget": 8})
    rng = np.random.default_rng(1)
    with Journal(rd.journal_path, space) as j:
        for i in range(8):
            j.append(Result(space.sample(rng), "ok", {"val_acc": 0.5 + i / 20}, info={"predicted": i / 10}))
    assert main(["report", str(tmp_path / "run"), "-q"]) == 0
    assert (tmp_path / "run" / "report" / "predicted_vs_true.png").exists()
    assert "8 architectures proposed" in (tmp_path / "run" / "report" / "report.md").read_text()
