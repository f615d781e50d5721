"""``nao report`` and ``nao show``: PNGs and report.md from a run directory of every kind (old formats too);
cell diagrams for every space."""

from __future__ import annotations

import json
from pathlib import Path

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


# -- fake run directories of every kind --------------------------------------------------------

_SPACES = {"tabular": "nb201", "supernet-cnn": "nao-ws", "supernet-rnn": "rnn", "trained-cnn": "nao-ws",
           "trained-rnn": "rnn"}


def _history(epochs: int, rnn: bool, offset: float = 0.0) -> list[dict]:
    """Rows like nao.train's metrics.json: train metrics per epoch, val every epoch, test on the last."""
    rows = []
    for e in range(1, epochs + 1):
        if rnn:
            row = {"epoch": e, "lr": 20.0, "train_loss": 6 - e / 3 + offset, "train_ppl": 400 / e + 50 * offset,
                   "val_ppl": 450 / e + 60 * offset}
            if e == epochs:
                row["test_ppl"] = 440 / e + 60 * offset
        else:
            row = {"epoch": e, "lr": 0.1, "train_loss": 2 - e / 5 + offset, "train_acc": 0.3 + e / 20 - offset / 5,
                   "val_acc": 0.28 + e / 21 - offset / 4}
            if e == epochs:
                row["test_acc"] = 0.27 + e / 21 - offset / 4
        rows.append(row)
    return rows


def _fake_run(root: Path, kind: str, n: int = 24, rounds: int = 4) -> tuple[RunDir, list[Result]]:
    """A finished run of ``kind`` in the current run-directory contract, with every file the kind writes."""
    rnn = kind.endswith("rnn")
    space = get_space(_SPACES[kind])
    objective = {"metric": "val_ppl", "mode": "min"} if rnn else {"metric": "val_acc", "mode": "max"}
    rd = RunDir.create(root, {"kind": kind, "space": space.name, "strategy": "nao", "seed": 0, "budget": n,
                              "objective": objective})
    rng = np.random.default_rng(0)
    results, preds = [], []
    with Journal(rd.journal_path, space) as j:
        for i in range(n):
            arch, rnd = space.sample(rng), i * rounds // n
            value = float(rng.uniform(80, 300)) if rnn else float(rng.uniform(0.5, 0.9))
            metrics = {objective["metric"]: value}
            r = Result(arch, "ok", metrics, 5.0, info={"round": rnd} if kind.startswith("supernet") else {})
            j.append(r)
            results.append(r)
            preds.append({"arch": space.format(arch), "tokens": list(arch.tokens), "predicted": -value if rnn else value,
                          "true": value, "round": rnd})
    top = (min if rnn else max)(results, key=lambda r: r.metrics[objective["metric"]])
    rd.write_json("predictions.json", {"scale": "x", "predictions": preds})
    rd.write_best(top, space, n)
    scores_from = {"tabular": "table", "supernet": "supernet", "trained": "training"}[kind.split("-")[0]]
    result = {"kind": kind, "objective": objective, "scores_from": scores_from, "n_evaluated": n,
              "best": {"arch": space.format(top.arch), "metrics": top.metrics}, "winner": space.format(top.arch),
              "search_s": 100.0, "total_s": 160.0}
    if kind != "tabular":
        test = "test_ppl" if rnn else "test_acc"
        ranked = sorted(results, key=lambda r: r.metrics[objective["metric"]], reverse=not rnn)[:3]
        result["rerank"] = [{"arch": space.format(r.arch), "search_score": r.metrics[objective["metric"]], "status": "ok",
                             "metrics": {objective["metric"]: r.metrics[objective["metric"]]}, "seconds": 20.0,
                             "error": None} for r in ranked]
        result["final"] = {"arch": space.format(top.arch), "status": "ok", "metrics": {test: 95.5 if rnn else 0.9123},
                           "epochs": 6, "seconds": 50.0, "error": None}
        (rd.path / "final").mkdir()
        (rd.path / "final" / "metrics.json").write_text(json.dumps(
            {"status": "ok", "error": None, "history": _history(6, rnn), "meta": {"arch": space.format(top.arch)}}))
    if kind.startswith("supernet"):
        stats = ({"train_ppl": 300.0, "best_val_ppl": 100.0, "median_val_ppl": 180.0} if rnn
                 else {"train_acc": 0.5, "best": 0.85, "median": 0.7})
        rows = [{"round": k, "new": n // rounds, "pool": (k + 1) * n // rounds, "seconds": 10.0,
                 **{key: v * (1 - 0.05 * k if rnn else 1 + 0.03 * k) for key, v in stats.items()}} for k in range(rounds)]
        rd.write_json("supernet.json", {"history": rows, "ranking": []})
    if kind.startswith("trained"):
        for i, r in enumerate(results[:7]):
            (rd.path / "candidates" / f"{i:04d}").mkdir(parents=True)
            (rd.path / "candidates" / f"{i:04d}" / "metrics.json").write_text(json.dumps(
                {"status": "ok", "history": _history(3 + i % 3, rnn, offset=i / 10), "meta": {"arch": space.format(r.arch)}}))
    rd.write_json("result.json", result)
    return rd, results


# Report sections and files each kind must produce.
_EXPECTED = {
    "tabular": (["## Progress", "## Objective per round", "## Controller predictions", "## Best architecture"],
                ["best_so_far.png", "by_round.png", "predicted_vs_true.png", "best_cell.png"]),
    "supernet-cnn": (["## Supernet", "## Rerank", "## Final training", "## Winner", "weights keep training between rounds"],
                     ["best_so_far.png", "by_round.png", "supernet.png", "final_training.png", "best_cell.png"]),
    "trained-cnn": (["## Rerank", "## Final training", "## Trained candidates", "## Winner"],
                    ["best_so_far.png", "by_round.png", "final_training.png", "candidates.png", "best_cell.png"]),
}
_EXPECTED["supernet-rnn"] = _EXPECTED["supernet-cnn"]
_EXPECTED["trained-rnn"] = _EXPECTED["trained-cnn"]


@pytest.mark.parametrize("kind", list(_SPACES))
def test_report_of_every_kind(kind, tmp_path, capsys):
    rd, results = _fake_run(tmp_path / kind, kind)
    assert main(["report", str(rd.path)]) == 0
    out = rd.path / "report"
    md = (out / "report.md").read_text()
    sections, files = _EXPECTED[kind]
    for heading in sections:
        assert heading in md, heading
    for name in files:
        _png_ok(out / name)
        assert f"({name})" in md
    result = json.loads((rd.path / "result.json").read_text())
    metric, mode = result["objective"]["metric"], result["objective"]["mode"]
    assert f"| kind | {kind} |" in md and f"| objective | {metric} ({mode}imise) |" in md
    assert f"| scores from | {result['scores_from']} |" in md
    assert result["winner"] in md
    if kind != "tabular":  # the final test metric and every reranked architecture are reported
        test = "test_ppl" if kind.endswith("rnn") else "test_acc"
        shown = "95.5" if test == "test_ppl" else "91.23%"
        assert f"| final {test} | {shown} |" in md and f"{test} **{shown}**" in md
        assert all(f"`{r['arch']}`" in md for r in result["rerank"]) and md.count(" ★ |") == 1
    if kind.startswith("trained"):
        assert "7 candidates trained; the best 5" in md
    if kind.startswith("supernet"):
        assert "## Trained candidates" not in md and "## Supernet" in md


def test_report_ranks_by_a_min_objective(tmp_path):
    """Bug 3 of issue 14: the report ranked every run by val_acc; a val_ppl run's best is its lowest."""
    rd, results = _fake_run(tmp_path / "ppl", "supernet-rnn")
    lowest = min(results, key=lambda r: r.metrics["val_ppl"])
    highest = max(results, key=lambda r: r.metrics["val_ppl"])
    space = get_space("rnn")
    assert main(["report", str(rd.path), "-q"]) == 0
    md = (rd.path / "report" / "report.md").read_text()
    assert f"| best val_ppl | {lowest.metrics['val_ppl']:.4g} (query {results.index(lowest) + 1}) |" in md
    best_block = md.split("Best by val_ppl (min):")[1].split("```")[1]
    assert space.format(lowest.arch) in best_block and space.format(highest.arch) not in best_block
    # the best-so-far curve follows the minimum too
    best, test = best_so_far(results, "val_ppl:min")
    assert best[-1] == lowest.metrics["val_ppl"] and np.all(np.diff(best) <= 0) and test is None


def test_report_of_an_old_nao_ws_run(tmp_path):
    """An NAO-WS run from before the run contract: no kind/objective, old result.json, rerank.json, per-epoch supernet rows."""
    space = get_space("nao-ws")
    rd = RunDir.create(tmp_path / "old", {"space": "nao-ws", "strategy": "nao", "seed": 1, "budget": 12,
                                          "supernet": {"channels": 8}, "supernet_train": {"score": "acc"}})
    rng = np.random.default_rng(2)
    results = [Result(space.sample(rng), "ok", {"val_acc": float(rng.uniform(0.3, 0.6))}, 1.0, info={"round": i // 4})
               for i in range(12)]
    with Journal(rd.journal_path, space) as j:
        for r in results:
            j.append(r)
    top = max(results, key=lambda r: r.metrics["val_acc"])
    winner = space.format(results[3].arch)
    rd.write_json("rerank.json", [
        {"arch": space.format(results[3].arch), "supernet_val_acc": 0.55, "status": "ok", "metrics": {"val_acc": 0.61},
         "seconds": 12.0, "error": None},
        {"arch": space.format(top.arch), "supernet_val_acc": 0.6, "status": "failed", "metrics": {}, "seconds": 3.0,
         "error": "diverged"}])
    rd.write_json("result.json", {"winner": winner, "rerank_val_acc": 0.61, "supernet_val_acc": 0.55, "n_scored": 12,
                                  "final": {"test_acc": 0.6789, "status": "ok", "seconds": 30.0, "error": None},
                                  "search_s": 50.0, "total_s": 95.0})
    rd.write_json("supernet.json", {"history": [{"epoch": e, "round": e // 2, "train_acc": 0.2 + e / 20, "train_loss": 2.0}
                                                for e in range(1, 7)], "ranking": []})
    assert main(["report", str(rd.path), "-q"]) == 0
    out = rd.path / "report"
    md = (out / "report.md").read_text()
    assert "| kind | supernet-cnn |" in md and "| objective | val_acc (maximise) |" in md
    assert "| scores from | supernet |" in md and "| final test_acc | 67.89% |" in md
    assert f"| 1 ★ | `{winner}` | 55.00% | ok | 61.00% |" in md and "failed: diverged" in md
    assert f"| best val_acc | {100 * top.metrics['val_acc']:.2f}% |" in md.replace(f" (query {results.index(top) + 1})", "")
    for name in ("best_so_far.png", "by_round.png", "supernet.png", "best_cell.png"):
        _png_ok(out / name)
    assert "final_training.png" not in md  # no final/metrics.json in this run: the section says only what it has


def test_report_of_an_old_ptb_run_infers_the_ppl_objective(tmp_path):
    """Older PTB runs: no kind/objective (journal has val_acc too), ``rounds`` in supernet.json, ``best_arch`` in result.json."""
    space = get_space("rnn")
    rd = RunDir.create(tmp_path / "ptb", {"space": "rnn", "strategy": "nao", "seed": 0, "budget": 9, "task": "ptb",
                                          "supernet": {"emsize": 16}})
    rng = np.random.default_rng(3)
    results = []
    with Journal(rd.journal_path, space) as j:
        for i in range(9):
            ppl = float(rng.uniform(100, 900))
            # token accuracy deliberately ranks opposite to perplexity here: the report must use perplexity
            results.append(Result(space.sample(rng), "ok", {"val_ppl": ppl, "val_score": -np.log(ppl), "val_acc": ppl / 1e4},
                                  1.0, info={"round": i // 3}))
            j.append(results[-1])
    lowest = min(results, key=lambda r: r.metrics["val_ppl"])
    rd.write_json("supernet.json", {"rounds": [{"round": k, "new": 3, "pool": 3 * (k + 1), "train_ppl": 500.0 - 50 * k,
                                                "best_val_ppl": 200.0 - 10 * k, "median_val_ppl": 400.0 - 20 * k}
                                               for k in range(3)], "final_pool_ranking": []})
    rd.write_json("result.json", {"best_arch": space.format(lowest.arch), "best_metrics": lowest.metrics, "n_evaluated": 9})
    assert main(["report", str(rd.path), "-q"]) == 0
    md = (rd.path / "report" / "report.md").read_text()
    assert "| kind | supernet-rnn |" in md and "| objective | val_ppl (minimise) |" in md
    assert f"| best val_ppl | {lowest.metrics['val_ppl']:.4g}" in md and "## Rerank" not in md
    _png_ok(rd.path / "report" / "supernet.png")
    _png_ok(rd.path / "report" / "best_cell.png")


def test_report_reads_rerank_rows_and_a_flat_final_in_result_json(tmp_path):
    """result.json as the supernet-cnn kind writes it now: rerank rows copied from rerank.json, final metrics flat."""
    rd, results = _fake_run(tmp_path / "cnn", "supernet-cnn")
    result = json.loads((rd.path / "result.json").read_text())
    result["rerank"] = [{"arch": r["arch"], "tokens": [], "supernet_val_acc": r["search_score"], "status": r["status"],
                         "metrics": r["metrics"], "seconds": r["seconds"], "error": None} for r in result["rerank"]]
    result["final"] = {"test_acc": 0.8765, "arch": result["winner"], "status": "ok", "seconds": 5.0, "error": None,
                       "epochs": 6}
    rd.write_json("result.json", result)
    assert main(["report", str(rd.path), "-q"]) == 0
    md = (rd.path / "report" / "report.md").read_text()
    first = result["rerank"][0]
    assert f"| 1 ★ | `{first['arch']}` | {100 * first['supernet_val_acc']:.2f}% | ok |" in md
    assert "| final test_acc | 87.65% |" in md and "test_acc **87.65%**, 6 epochs" in md
