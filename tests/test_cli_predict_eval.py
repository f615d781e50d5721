"""``nao predict-eval`` on the synthetic NB201 table (it must learn it), and its one-line errors (exit 2)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from nao.cli import main
from nao.spaces import get_space


@pytest.fixture()
def tiny_table(tmp_path):
    """60 distinct NB201 cells whose val_acc grows with the number of 3x3 convs."""
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    seen, lines = set(), ["arch_str,val_acc,test_acc"]
    while len(seen) < 60:
        arch = space.sample(rng)
        if arch.tokens in seen:
            continue
        seen.add(arch.tokens)
        val = 50 + 5 * sum(t == 3 for t in arch.tokens) + rng.random()
        lines.append(f"{space.format(arch)},{val:.3f},{val + 1:.3f}")
    path = tmp_path / "tiny.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def fast_config(tmp_path):
    path = tmp_path / "ctrl.yaml"
    path.write_text("embedding_size: 16\nhidden_size: 32\nmlp_layers: 1\nmlp_hidden_size: 32\n"
                    "pretrain_archs: 0\npretrain_steps: 0\n")
    return path


def test_predict_eval_learns_the_synthetic_table(synthetic_nb201, fast_config, tmp_path, capsys):
    out = tmp_path / "pe.json"
    code = main(["-q", "predict-eval", "--benchmark", str(synthetic_nb201), "--train-sizes", "20,50",
                 "--test-size", "100", "--seeds", "2", "--config", str(fast_config), "--json", str(out),
                 "--epochs", "100", "--ensemble", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert "Kendall tau" in text and "recon exact" in text
    data = json.loads(out.read_text())
    assert set(data) == {"20", "50"}
    for row in data.values():
        for metric in ("kendall_tau", "pairwise_acc", "recon_acc", "recon_token_acc"):
            assert set(row[metric]) == {"mean", "sem"}
            assert np.isfinite(row[metric]["mean"])
        # The table's accuracy is a sum of per-edge op gains: a predictor that learns anything ranks it
        # well (tau about 0.6-0.7 with these settings; 0 is chance).
        assert row["kendall_tau"]["mean"] > 0.3, row
        assert row["pairwise_acc"]["mean"] > 0.65, row


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--train-sizes", "40", "--test-size", "30"], "exceeds the 60 architectures"),
        (["--train-sizes", "10,x"], "--train-sizes"),
        (["--train-sizes", "10", "--seeds", "0"], "--seeds"),
        (["--train-sizes", "10", "--epochs", "0"], "--epochs"),
    ],
)
def test_bad_input_is_one_line_exit_2(tiny_table, capsys, flags, message):
    code = main(["predict-eval", "--benchmark", str(tiny_table), *flags])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_benchmark_file_is_exit_2(tmp_path, capsys):
    code = main(["predict-eval", "--benchmark", str(tmp_path / "nope.csv.gz")])
    assert code == 2
    assert "not found" in capsys.readouterr().err
