"""``nao search --fidelity`` for trained candidates: end to end, resume, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nao.train.classifier
from nao.cli import main

_CNN = ["search", "cnn", "--evaluator", "training", "--preset", "smoke", "--seed", "1", "-q",
        "--set", "train.epochs=3"]  # rungs of 1 and 3 epochs


def _journal(run) -> list[dict]:
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


def _seen(run) -> list[tuple]:
    return [(r["arch"], r["fidelity"], r["status"], r["metrics"].get("val_acc"), r["cost"]) for r in _journal(run)]


def test_trained_cnn_under_asha_continues_promotions_and_resumes(tmp_path, monkeypatch):
    whole, run = tmp_path / "whole", tmp_path / "run"
    assert main([*_CNN, "--fidelity", "asha", "--budget", "4", "--out", str(whole)]) == 0
    seen = _seen(whole)
    assert [f for _, f, _, _, _ in seen] == [1.0, 1.0, 1.0, 3.0, 1.0]  # three new, the best of them on, a fourth
    promoted = [r for r in _journal(whole) if r["fidelity"] == 3.0]
    assert promoted[0]["info"]["from_epoch"] == 1 and promoted[0]["cost"] == 2 * seen[0][4]  # continued: 2 more epochs
    result = json.loads((whole / "result.json").read_text())
    assert result["stopped_by"] == "budget" and result["cost"] == pytest.approx(sum(r[4] for r in seen))
    # killed right after the promoted candidate's first extra epoch is checkpointed (its 2nd of 3)
    real, calls = nao.train.classifier.save_checkpoint, []

    class Killed(BaseException):
        pass

    def dying(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 4:
            raise Killed()

    with monkeypatch.context() as m:
        m.setattr(nao.train.classifier, "save_checkpoint", dying)
        with pytest.raises(Killed):
            main([*_CNN, "--fidelity", "asha", "--budget", "4", "--out", str(run)])
    assert len(_journal(run)) == 3
    assert main(["search", "--resume", str(run), "-q"]) == 0
    assert _seen(run) == seen  # the rungs and promotions of the uninterrupted run, at its cost
    assert _journal(run)[3]["info"]["from_epoch"] == 2  # the promotion went on from the epoch before the kill


@pytest.mark.parametrize(("args", "names"), [
    (["search", "cnn", "--preset", "smoke", "--fidelity", "asha"], "--fidelity"),  # a supernet search
    ([*_CNN[:-2], "--fidelity", "asha"], "--fidelity"),  # 1-epoch candidates: no ladder
    ([*_CNN, "--fidelity", "asha", "--budget", "2"], "--budget >= 3"),  # a ladder the budget cannot climb
    ([*_CNN, "--fidelity", "asha", "--min-fidelity", "0"], "--min-fidelity"),
    ([*_CNN, "--fidelity", "asha", "--min-fidelity", "3"], "--min-fidelity"),  # the top rung itself
    ([*_CNN, "--fidelity", "asha", "--min-fidelity", "nan"], "--min-fidelity"),
    ([*_CNN, "--fidelity", "asha", "--min-fidelity", "2"], "--min-fidelity"),  # 3/eta < 2: one rung left
    ([*_CNN, "--min-fidelity", "1"], "--min-fidelity"),  # no --fidelity: it would be ignored
])
def test_bad_fidelity_exits_2_without_a_run(tmp_path, capsys, args, names):
    run = tmp_path / "run"
    assert main([*args, "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and names in err[0]
    assert not run.exists()


def test_min_fidelity_is_not_a_flag_of_a_table(tmp_path, capsys):
    # A table's rungs are its columns (12 and 200 epochs): nothing to set.
    with pytest.raises(SystemExit) as e:
        main(["search", "tabular", "--benchmark", "x.csv.gz", "--fidelity", "asha", "--min-fidelity", "12",
              "--out", str(tmp_path / "run")])
    assert e.value.code == 2 and "--min-fidelity" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_unknown_scheduler_is_an_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as e:
        main([*_CNN, "--fidelity", "bohb", "--out", str(tmp_path / "run")])
    assert e.value.code == 2 and not (tmp_path / "run").exists()


def test_tabular_without_a_second_fidelity_is_refused(tmp_path, capsys):
    import gzip

    path = tmp_path / "one.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("arch_str,val_acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10\n")
    run = tmp_path / "run"
    assert main(["search", "tabular", "--benchmark", str(path), "--fidelity", "asha", "--out", str(run)]) == 2
    assert "--fidelity" in capsys.readouterr().err and not run.exists()


def test_trained_rnn_under_asha(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    for split, n in (("train", 150), ("valid", 40), ("test", 40)):
        lines = [" ".join(words[(s + k) % 12] for k in range(5)) for s in rng.integers(12, size=n)]
        (tmp_path / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    small = [f"--set={k}" for k in ("lm.batch_size=4", "lm.bptt=8", "final.batch_size=4", "final.bptt=8",
                                    "lm.eval_batch_size=4", "final.eval_batch_size=4", "lm.eval_every=2")]
    assert main(["search", "ptb", "--evaluator", "training", "--preset", "smoke", "--data-dir", str(tmp_path),
                 *small, "--fidelity", "asha", "--budget", "9", "--out", str(run), "-q"]) == 0
    journal = _journal(run)
    low = [r for r in journal if r["fidelity"] < 1]
    top = [r for r in journal if r["fidelity"] == 1]
    assert len({r["arch"] for r in journal}) == 9 and low and top  # fractions of a pass, then the full pass
    assert {round(r["fidelity"], 3) for r in journal} == {0.111, 0.333, 1.0}  # the default ladder, max / 3**k

    # A lowest rung set by hand: a third of a pass, then the whole pass.
    run = tmp_path / "third"
    assert main(["search", "ptb", "--evaluator", "training", "--preset", "smoke", "--data-dir", str(tmp_path),
                 *small, "--fidelity", "asha", "--min-fidelity", "0.3", "--budget", "6", "--out", str(run),
                 "-q"]) == 0
    journal = _journal(run)
    assert {round(r["fidelity"], 3) for r in journal} == {0.333, 1.0}
    assert json.loads((run / "config.json").read_text())["min_fidelity"] == 0.3
    assert all(r["info"]["from_step"] > 0 for r in top)


def test_tabular_search_under_asha(tmp_path):
    from nao.runs.kinds.tabular import synthetic_table

    table = synthetic_table(tmp_path / "t.csv.gz")
    run = tmp_path / "run"
    assert main(["search", "tabular", "--benchmark", str(table), "--fidelity", "asha", "--budget", "20",
                 "--strategy", "nao", "--out", str(run), "-q"]) == 0
    journal = _journal(run)
    assert len({r["arch"] for r in journal}) == 20 and {r["fidelity"] for r in journal} == {12.0, 200.0}
    best = json.loads((run / "best.json").read_text())
    top = max((r for r in journal if r["fidelity"] == 200.0), key=lambda r: r["metrics"]["val_acc"])
    assert best["metrics"]["val_acc"] == top["metrics"]["val_acc"]
    # The default eta is the rungs' ratio, 200/12: ASHA promotes the top floor(n/eta) of the n candidates seen
    # at 12 epochs, one from the 17th on; each of the 18th-20th that overtakes every candidate before it earns
    # one more, so 20 candidates earn one to four promotions.
    assert 1 <= sum(r["fidelity"] == 200.0 for r in journal) <= 4


def test_tabular_eta_defaults_to_the_rungs_ratio(tmp_path, capsys):
    from nao.runs.kinds.tabular import synthetic_table

    table = synthetic_table(tmp_path / "t.csv.gz")
    run = tmp_path / "run"
    assert main(["search", "tabular", "--benchmark", str(table), "--fidelity", "asha", "--budget", "16",
                 "--out", str(run), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eta 16.6667 needs --budget >= 17" in err[0] and not run.exists()
    assert main(["search", "tabular", "--benchmark", str(table), "--fidelity", "asha", "--eta", "3", "--budget", "16",
                 "--out", str(run), "-q"]) == 0
    journal = _journal(run)
    assert sum(r["fidelity"] == 200.0 for r in journal) >= 16 // 3  # an explicit eta is kept
