import gzip
import itertools
import json

import pytest

from nao.cli import main


def test_search_writes_run_directory(nb201_path, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["search", "--space", "nb201", "--benchmark", str(nb201_path), "--strategy", "local",
               "--budget", "20", "--seed", "0", "--out", str(out), "-q"])
    assert rc == 0
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 20
    rec = json.loads(lines[0])
    assert {"arch", "status", "metrics"} <= set(rec) and rec["arch"].startswith("|")
    best = json.loads((out / "best.json").read_text())
    vals = [json.loads(x)["metrics"]["val_acc"] for x in lines]
    assert best["metrics"]["val_acc"] == max(vals)
    assert json.loads((out / "config.json").read_text())["budget"] == 20


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--budget", "99999"], "exceeds the 15625"),
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--space", "nope"], "unknown space 'nope'"),
        (["--budget", "0"], "--budget must be at least 1"),
    ],
)
def test_search_bad_flags_exit_2(nb201_path, tmp_path, capsys, argv, fragment):
    rc = main(["search", "--benchmark", str(nb201_path), "--out", str(tmp_path / "r"), "-q", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_search_corrupt_benchmark_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    rc = main(["search", "--benchmark", str(bad), "--out", str(tmp_path / "r"), "-q"])
    assert rc == 2 and "bad.csv.gz" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written for a run that never started


def test_bench_json(tmp_path, capsys):
    rows = ["arch_str,val_acc,test_acc"]
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    for i, t in enumerate(itertools.product(range(5), repeat=6)):  # a full synthetic table
        o = [ops[k] for k in t]
        arch = f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"
        rows.append(f"{arch},{50 + sum(t) + (i % 7) / 10},{40 + i % 11}")
    p = tmp_path / "t.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    out = tmp_path / "b.json"
    rc = main(["bench", "--space", "nb201", "--benchmark", str(p), "--strategies", "random,local",
               "--budget", "30", "--seeds", "3", "--workers", "1", "--json", str(out), "-q"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert set(data["random"]) == {"25", "30"}
    assert len(data["local"]["30"]["per_seed"]) == 3
    assert "mean" in data["random"]["25"] and "sem" in data["random"]["25"]
    assert "@25" in capsys.readouterr().out


def test_search_task_ptb_dispatches_to_lm(monkeypatch):
    import nao.cli.lm as lm

    seen = {}
    monkeypatch.setattr(lm, "run_lm_search", lambda args: seen.setdefault("task", args.task) and 0)
    assert main(["search", "--task", "ptb", "--preset", "tiny", "-q"]) == 0
    assert seen["task"] == "ptb"
