"""``nao search`` / ``nao bench`` on tabular benchmarks: the synthetic table (no data needed), and the real one."""

import json

import pytest

from nao.cli import main

SYNTHETIC_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("table", ["synthetic_nb201", "nb201_path"])  # the real table too: data-required
def test_search_writes_run_directory(table, tmp_path, capsys, request):
    out = tmp_path / "run"
    rc = main(["search", "--space", "nb201", "--benchmark", str(request.getfixturevalue(table)), "--strategy",
               "local", "--budget", "20", "--seed", "0", "--out", str(out), "-q"])
    assert rc == 0
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert len(lines) == 20
    rec = json.loads(lines[0])
    assert {"arch", "status", "metrics"} <= set(rec) and rec["arch"].startswith("|")
    best = json.loads((out / "best.json").read_text())
    vals = [json.loads(x)["metrics"]["val_acc"] for x in lines]
    assert best["metrics"]["val_acc"] == max(vals)
    assert json.loads((out / "config.json").read_text())["budget"] == 20


@pytest.mark.parametrize("strategy, floor", [("local", 0.888), ("rea", 0.865)])
def test_search_learns_the_synthetic_table(synthetic_nb201, tmp_path, strategy, floor):
    # 100 of 15,625 cells: random search's best is about 0.84 (its 99th percentile); a strategy that
    # exploits structure gets into the top few dozen, and local search climbs to the optimum.
    out = tmp_path / "run"
    assert main(["search", "--benchmark", str(synthetic_nb201), "--strategy", strategy, "--budget", "100",
                 "--seed", "0", "--out", str(out), "-q"]) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["metrics"]["val_acc"] >= floor, best
    if strategy == "local":
        assert best["arch"] == SYNTHETIC_BEST


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--budget", "99999"], "exceeds the 15625"),
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--space", "nope"], "unknown space 'nope'"),
        (["--budget", "0"], "--budget must be at least 1"),
        (["--set", "strategy_options.topk=3"], "unknown option 'topk' of strategy 'nao'"),
        (["--strategy", "local", "--set", "strategy_options.seed_archs=3"], "unknown option 'seed_archs' of strategy 'local'"),
        # Bad values too, before a run directory exists (the constructor's own check).
        (["--set", "strategy_options.per_round=0"], "nao strategy option per_round must be >= 1, got 0"),
        (["--set", "strategy_options.acquisition=ucb"], "acquisition must be one of mean, ei, got 'ucb'"),
        (["--set", "strategy_options.top_k=ten"], "strategy 'nao': bad option value (invalid literal"),
    ],
)
def test_search_bad_flags_exit_2(synthetic_nb201, tmp_path, capsys, argv, fragment):
    rc = main(["search", "--benchmark", str(synthetic_nb201), "--out", str(tmp_path / "r"), "-q", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_search_corrupt_benchmark_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    rc = main(["search", "--benchmark", str(bad), "--out", str(tmp_path / "r"), "-q"])
    assert rc == 2 and "bad.csv.gz" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written for a run that never started


def test_bench_json(synthetic_nb201, tmp_path, capsys):
    p = synthetic_nb201
    out = tmp_path / "b.json"
    rc = main(["bench", "--space", "nb201", "--benchmark", str(p), "--strategies", "random,local",
               "--budget", "30", "--seeds", "3", "--workers", "1", "--json", str(out), "-q"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert set(data["random"]) == {"25", "30"}
    assert len(data["local"]["30"]["per_seed"]) == 3
    assert "mean" in data["random"]["25"] and "sem" in data["random"]["25"]
    assert "@25" in capsys.readouterr().out


@pytest.mark.parametrize("argv, task", [
    ([], "cnn"), (["--task", "ptb", "--preset", "tiny"], "ptb"), (["--benchmark", "t.csv.gz"], "tabular"),
    (["--task", "cnn", "--evaluator", "training"], "cnn"), (["ptb"], "ptb"),
])
def test_search_short_forms_name_their_task(argv, task):
    from nao.cli.search import normalise_argv

    out = normalise_argv(["search", *argv])
    assert out[1] == task and "--task" not in out


@pytest.mark.parametrize("argv, fragment", [
    (["cnn", "--evaluator", "training", "--supernet-score", "acc"], "--supernet-score applies to --evaluator supernet"),
    (["cnn", "--executor", "processes"], "--executor applies to --evaluator training, not supernet"),
    (["ptb", "--image-size", "8"], "unrecognized arguments: --image-size"),
    (["tabular", "--benchmark", "x.csv.gz", "--preset", "paper"], "unrecognized arguments: --preset"),
    (["cnn", "--set", "nope=1"], "unknown setting 'nope'"),
    (["cnn", "--set", "supernet_train.lr"], "expected key=value"),
])
def test_search_flags_that_do_not_apply_exit_2(tmp_path, capsys, argv, fragment):
    # Before: --threads/--seed-pool were ignored on the image path, --preset/--dataset on the tabular one.
    try:
        rc = main(["search", *argv, "--out", str(tmp_path / "r"), "-q"])
    except SystemExit as e:  # argparse's own errors exit from parse_args (the console script's code is the same)
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_search_out_is_a_file_exits_2(synthetic_nb201, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["search", "--benchmark", str(synthetic_nb201), "--out", str(f), "-q"]) == 2
    err = capsys.readouterr().err
    assert "exists and is not a directory" in err and "Traceback" not in err


def test_search_config_file_and_set(tmp_path, synthetic_nb201):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("strategy: random\nbudget: 7\n")
    out = tmp_path / "r"
    assert main(["search", "tabular", "--benchmark", str(synthetic_nb201), "--config", str(cfg),
                 "--set", "seed=3", "--out", str(out), "-q"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["strategy"], saved["budget"], saved["seed"], saved["kind"]) == ("random", 7, 3, "tabular")
    assert len((out / "journal.jsonl").read_text().splitlines()) == 7


def test_search_set_reaches_a_free_form_strategy_option(tmp_path, synthetic_nb201):
    # strategy_options is a mapping of the strategy's own options: --set may add keys the preset did not name.
    out = tmp_path / "r"
    assert main(["search", "tabular", "--benchmark", str(synthetic_nb201), "--budget", "12",
                 "--set", "strategy_options.neighbour_share=0", "--set", "strategy_options.seed_archs=6",
                 "--out", str(out), "-q"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["strategy_options"] == {"neighbour_share": 0, "seed_archs": 6}


def test_search_constraint_never_evaluates_an_infeasible_cell(synthetic_nb201, tmp_path):
    out = tmp_path / "r"
    assert main(["search", "tabular", "--benchmark", str(synthetic_nb201), "--strategy", "random",
                 "--constraint", "params_m<=0.4", "--budget", "25", "--out", str(out), "-q"]) == 0
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert len(journal) == 25 and all(r["metrics"]["params_m"] <= 0.4 for r in journal)
    result = json.loads((out / "result.json").read_text())
    assert result["constraint"]["infeasible"] > 0 and result["constraint"]["text"] == "params_m<=0.4"
