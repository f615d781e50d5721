import gzip

import numpy as np
import pytest

from nao.errors import BenchmarkFileError, NotInTableError
from nao.evaluators.tabular import TabularBenchmark, TabularEvaluator
from nao.spaces import get_space

A = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
B = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def write(path, text, compress=True):
    if compress:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_real_table_matches_data_readme(nb201_table):
    t = nb201_table
    assert len(t) == 15625
    i = int(np.argmax(t.metrics["val_acc"]))
    assert t.metrics["val_acc"][i] == pytest.approx(0.91607, abs=1e-5)  # percent converted to fractions
    assert t.metrics["test_acc"].max() == t.metrics["test_acc"][i]
    assert t.metrics["val_acc"].mean() == pytest.approx(0.8369, abs=1e-4)


def test_evaluator_returns_fractions_and_cost(tmp_path):
    p = write(tmp_path / "t.csv.gz", f"arch_str,val_acc,test_acc,train_time_s\n{A},50.0,51.0,12\n{B},60,61,13\n")
    space = get_space("nb201")
    ev = TabularEvaluator(space, p)
    (r,) = ev.evaluate([space.parse(B)])
    assert r.ok and r.metrics == {"val_acc": 0.6, "test_acc": 0.61} and r.cost_s == 13
    with pytest.raises(NotInTableError, match="is not in benchmark"):
        ev.evaluate([space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")])


@pytest.mark.parametrize(
    "content, compress, fragment",
    [
        ("arch_str,val_acc\n", False, "not a readable gzip"),
        ("", True, "empty file"),
        ("arch,val_acc\nx,1\n", True, "missing column"),
        (f"arch_str,val_acc\n{A},1\n{A},2\n", True, "line 3 duplicates the architecture of line 2"),
        ("arch_str,val_acc\n|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n", True, "line 2: cannot parse"),
        (f"arch_str,val_acc\n{A},abc\n", True, "line 2: column val_acc is not a number"),
        (f"arch_str,val_acc\n{A},1,2\n", True, "line 2 has 3 fields"),
        ("arch_str,val_acc\n", True, "no rows"),
    ],
)
def test_bad_files_are_named(tmp_path, content, compress, fragment):
    p = write(tmp_path / "bad.csv.gz", content, compress)
    with pytest.raises(BenchmarkFileError, match=fragment) as e:
        TabularBenchmark.load(p, get_space("nb201"))
    assert "bad.csv.gz" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(BenchmarkFileError, match="not found"):
        TabularBenchmark.load(tmp_path / "nope.csv.gz", get_space("nb201"))


def test_synthetic_table_is_deterministic_and_structured(synthetic_nb201, tmp_path):
    from fakes import synthetic_val_acc, write_synthetic_nb201

    assert write_synthetic_nb201(tmp_path / "again.csv.gz").read_bytes() == synthetic_nb201.read_bytes()
    space = get_space("nb201")
    t = TabularBenchmark.load(synthetic_nb201, space)
    assert len(t) == 15625 and set(t.metrics) == {"val_acc", "test_acc", "val_acc_12ep", "test_acc_12ep",
                                                  "train_time_s", "params_m"}
    best = t.archs[int(np.argmax(t.metrics["val_acc"]))]
    assert space.format(best) == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    formula = np.array([synthetic_val_acc(space, a) for a in t.archs]) / 100
    assert np.abs(t.metrics["val_acc"] - formula).max() < 0.02  # the noise is small next to the structure
    assert np.corrcoef(t.metrics["val_acc"], t.metrics["test_acc"])[0, 1] > 0.99
