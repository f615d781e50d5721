"""``nao bench`` reports the search's own objective (best validation accuracy) beside the test figure."""

import json

import numpy as np

from nao.bench import best_test_at, best_val_at, format_table, run_bench
from nao.cli import main
from nao.results import Result
from nao.spaces import get_space

NB201 = get_space("nb201")


def _r(i, val, test, ok=True):
    arch = NB201.make([i % 5, i // 5 % 5, 0, 0, 0, 0])
    return Result(arch, "ok", {"val_acc": val, "test_acc": test}) if ok else Result.failed(arch, "x")


def test_best_val_and_test_of_best_val():
    hist = [_r(0, 0.80, 0.90), _r(1, 0.85, 0.70), _r(2, 0.99, 0.10, ok=False), _r(3, 0.84, 0.95)]
    assert best_val_at(hist, 1) == 80.0 and best_val_at(hist, 4) == 85.0
    assert best_test_at(hist, 4) == 70.0  # the test accuracy of the best-validation one, not the best test
    assert np.isnan(best_val_at(hist[2:3], 1))


def test_summary_keeps_test_keys_and_adds_val(nb201_path, nb201_table):
    out = run_bench("nb201", nb201_path, ["random", "rea"], budget=30, seeds=3, workers=1)
    for s in ("random", "rea"):
        assert set(out[s]) == {"25", "30"}
        cell = out[s]["30"]
        assert set(cell) == {"mean", "sem", "per_seed", "val_mean", "val_sem", "val_per_seed",
                             "cost_mean", "cost_sem", "cost_per_seed"}
        assert len(cell["val_per_seed"]) == 3 and np.isclose(cell["val_mean"], np.mean(cell["val_per_seed"]))
        # Best validation so far never decreases, and each seed's test figure is its best-val row's test.
        assert all(a <= b for a, b in zip(out[s]["25"]["val_per_seed"], cell["val_per_seed"]))
        val, test = nb201_table.metrics["val_acc"] * 100, nb201_table.metrics["test_acc"] * 100
        for v, t in zip(cell["val_per_seed"], cell["per_seed"]):
            assert np.isclose(test[np.isclose(val, v)], t).any()  # (a few rows share a val_acc)
    text = format_table(out)
    assert "best validation accuracy" in text and "test accuracy" in text
    # Per query (test, val), then compute: spent, and test / val at equal compute.
    assert sum(line.startswith("strategy") for line in text.splitlines()) == 5
    assert "_time_s" not in text


def test_cli_json_has_val_figures(nb201_path, tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "--benchmark", str(nb201_path), "--strategies", "local", "--budget", "25", "--seeds", "2",
               "--workers", "1", "--json", str(out), "-q"])
    assert rc == 0
    cell = json.loads(out.read_text())["local"]["25"]
    assert {"mean", "sem", "per_seed", "val_mean", "val_sem", "val_per_seed", "cost_mean", "cost_sem", "cost_per_seed"} == set(cell)
    assert "best validation accuracy (%)" in capsys.readouterr().out
