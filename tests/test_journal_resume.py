"""Journal durability and ``nao search --resume``: a run killed at any moment and resumed ends with
the same journal and best.json as an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from nao.cli import build_parser, main
from nao.errors import NaoError
from nao.journal import Journal, read_journal
from nao.results import Result
from nao.spaces import get_space

SPACE = get_space("nb201")


def search(table, out, strategy="rea", budget=40, *extra):
    argv = ["search", "--benchmark", str(table), "--strategy", strategy, "--budget", str(budget),
            "--seed", "0", "--out", str(out), "-q", *extra]
    return main(argv)


def run_files(run):
    return (run / "journal.jsonl").read_bytes(), json.loads((run / "best.json").read_text())


# -- the journal -------------------------------------------------------------------------------


def _result(i: int) -> Result:
    return Result(SPACE.make([i % 5, 1, 2, 3, 4, 0]), "ok", {"val_acc": i / 10})


def test_torn_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "j.jsonl"
    with Journal(path, SPACE) as j:
        for i in range(3):
            j.append(_result(i))
    with open(path, "ab") as fh:
        fh.write(b'{"arch": "|none~0|+|no')  # the process died mid-write
    with pytest.warns(UserWarning, match="torn last line 4"):
        assert len(read_journal(path, SPACE)) == 3
    with pytest.warns(UserWarning):
        read_journal(path, SPACE, repair=True)
    assert path.read_bytes().endswith(b"}\n") and len(read_journal(path, SPACE)) == 3


def test_corrupt_middle_line_names_the_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"bad": 1\n' + json.dumps({"tokens": [0] * 6, "status": "ok"}) + "\n")
    with pytest.raises(NaoError, match="j.jsonl: line 1 is not a valid journal record"):
        read_journal(path, SPACE)


def test_fsync_policy(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    with Journal(tmp_path / "a.jsonl", SPACE, fsync_every_s=0) as j:
        for i in range(5):
            j.append(_result(i))
    assert len(calls) == 5  # every record
    calls.clear()
    with Journal(tmp_path / "b.jsonl", SPACE, fsync_every_s=3600) as j:
        for i in range(5):
            j.append(_result(i))
        # flushed, so another reader (a resumed process) sees every record before any fsync
        assert len(read_journal(tmp_path / "b.jsonl", SPACE)) == 5
    assert len(calls) == 1  # once, on close


# -- resume ------------------------------------------------------------------------------------


def test_search_flags_default_to_none():
    # --resume tells a flag given from one left out by None: a non-None default would read as a conflict.
    args = build_parser().parse_args(["search", "tabular"])
    assert "benchmark" in args.flag_dests and "executor" in args.flag_dests
    assert all(getattr(args, k) is None for k in args.flag_dests)


# The child process SIGKILLs itself right after its `KILL_AT`-th journal record: a real kill -9 of a running
# search, at a moment fixed by the test (not by the scheduler), so a failure reproduces.
_KILL_AFTER_N_RECORDS = """
import os, signal, sys
from nao.cli import main
from nao.journal import Journal

kill_at, append, count = int(sys.argv[1]), Journal.append, [0]

def append_then_die(self, result):
    append(self, result)
    count[0] += 1
    if count[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

Journal.append = append_then_die
sys.exit(main(sys.argv[2:]))
"""


def test_sigkill_midway_then_resume_matches_uninterrupted(synthetic_nb201, tmp_path):
    budget = 40
    kill_at = int(np.random.default_rng(14).integers(3, budget - 3))  # seeded: the same moment on every run
    killed = tmp_path / "killed"
    argv = ["search", "--benchmark", str(synthetic_nb201), "--strategy", "rea", "--budget", str(budget),
            "--seed", "0", "--out", str(killed), "-q"]
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_N_RECORDS, str(kill_at), *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert (killed / "journal.jsonl").read_bytes().count(b"\n") == kill_at
    assert not (killed / "best.json").exists()  # it really died before the end

    assert main(["search", "--resume", str(killed), "-q"]) == 0
    assert search(synthetic_nb201, tmp_path / "ref", "rea", budget) == 0
    assert run_files(killed) == run_files(tmp_path / "ref")
    assert "resumed" in (killed / "search.log").read_text()
    assert len(json.loads((killed / "manifest.json").read_text())["resumes"]) == 1


@pytest.mark.parametrize("strategy", ["random", "rea", "local"])  # nao: tests/test_study.py (cheaper settings)
def test_resume_from_any_cut_matches_uninterrupted(synthetic_nb201, tmp_path, strategy, caplog):
    """A kill leaves a journal prefix, maybe with a torn line: cut one at random and resume."""
    budget = 30
    ref = tmp_path / "ref"
    assert search(synthetic_nb201, ref, strategy, budget) == 0
    lines = (ref / "journal.jsonl").read_bytes().splitlines(keepends=True)
    rng = np.random.default_rng(list(strategy.encode()))
    cut = int(rng.integers(1, budget))
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "manifest.json"):  # the run as it was when killed after `cut` records
        (run / name).write_bytes((ref / name).read_bytes())
    torn = lines[cut][: int(rng.integers(1, len(lines[cut]) - 1))]
    (run / "journal.jsonl").write_bytes(b"".join(lines[:cut]) + torn)
    assert main(["search", "--resume", str(run), "-q"]) == 0
    assert "dropping torn last line" in caplog.text  # reported, and cut from the file
    assert "dropping torn last line" in (run / "search.log").read_text()  # the run's own log says so too
    assert run_files(run) == run_files(ref)


def test_resume_extends_the_budget(nb201_path, tmp_path):  # the real table (data-required)
    assert search(nb201_path, tmp_path / "a", "local", 20) == 0
    assert main(["search", "--resume", str(tmp_path / "a"), "--budget", "35", "-q"]) == 0
    assert search(nb201_path, tmp_path / "b", "local", 35) == 0
    assert run_files(tmp_path / "a") == run_files(tmp_path / "b")
    assert json.loads((tmp_path / "a" / "config.json").read_text())["budget"] == 35


def test_resume_with_processes_keeps_the_budget_honest(synthetic_nb201, tmp_path):
    run = tmp_path / "run"
    assert search(synthetic_nb201, run, "rea", 20) == 0
    lines = (run / "journal.jsonl").read_bytes().splitlines(keepends=True)
    (run / "journal.jsonl").write_bytes(b"".join(lines[:12]))
    assert main(["search", "--resume", str(run), "--executor", "processes", "--workers", "2", "-q"]) == 0
    records = [json.loads(x) for x in (run / "journal.jsonl").read_text().splitlines()]
    assert len(records) == 20 and len({tuple(r["tokens"]) for r in records}) == 20
    assert (run / "journal.jsonl").read_bytes().startswith(b"".join(lines[:12]))


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--seed", "3"], "--resume {run}: seed 3 conflicts with the run's 0"),
        (["--strategy", "random"], "strategy 'random' conflicts with the run's 'rea'"),
        (["--space", "darts"], "space 'darts' conflicts with the run's 'nb201'"),
        (["--out", "elsewhere"], "--out elsewhere conflicts"),
        (["--budget", "5"], "--budget 5 is below the 10 evaluations already in"),
        (["--workers", "2"], "--workers applies to --executor processes, not sequential"),
    ],
)
def test_resume_refuses_conflicting_flags(synthetic_nb201, tmp_path, capsys, extra, fragment):
    run = tmp_path / "run"
    assert search(synthetic_nb201, run, "rea", 10) == 0
    before = run_files(run)
    capsys.readouterr()
    assert main(["search", "--resume", str(run), "-q", *extra]) == 2
    err = capsys.readouterr().err
    assert fragment.format(run=run) in err and len(err.strip().splitlines()) == 1
    assert run_files(run) == before


def test_resume_same_flags_are_fine(synthetic_nb201, tmp_path):
    run = tmp_path / "run"
    assert search(synthetic_nb201, run, "rea", 10) == 0
    assert main(["search", "--resume", str(run), "--seed", "0", "--strategy", "rea",
                 "--benchmark", os.path.relpath(synthetic_nb201), "-q"]) == 0


def test_resume_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["search", "--resume", str(tmp_path), "-q"]) == 2
    assert f"--resume {tmp_path}: not a run directory (no config.json)" in capsys.readouterr().err
    (tmp_path / "config.json").write_text('{"preset": "digits", "supernet": {}}')  # an older nao's run
    assert main(["search", "--resume", str(tmp_path), "-q"]) == 2
    assert "config.json names no run kind" in capsys.readouterr().err
    (tmp_path / "config.json").write_text('{"kind": "supernet-rnn", "supernet": {"share": "bogus"}}')
    assert main(["search", "--task", "ptb", "--resume", str(tmp_path), "-q"]) == 2  # not silently ignored
    assert "share must be one of" in capsys.readouterr().err
    assert main(["search", "--task", "cnn", "--resume", str(tmp_path), "-q"]) == 2
    assert "--task cnn: the run in" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("[1, 2")
    assert main(["search", "--resume", str(tmp_path), "-q"]) == 2
    assert "config.json: not valid JSON" in capsys.readouterr().err


def test_search_log_and_tensorboard(synthetic_nb201, tmp_path):
    run = tmp_path / "run"
    assert search(synthetic_nb201, run, "random", 5, "--tensorboard") == 0  # tensorboard is in [dev]
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    log = (run / "search.log").read_text().splitlines()
    assert "started" in log[0] and "search done" in log[-1] and "5 evaluated" in log[-1]
    assert sum(": #" in line and " val_acc=" in line for line in log) == 5


def test_tensorboard_missing_is_refused_before_the_run(synthetic_nb201, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what an install without it sees
    run = tmp_path / "run"
    assert search(synthetic_nb201, run, "random", 5, "--tensorboard") == 2
    assert "--tensorboard needs the tensorboard package" in capsys.readouterr().err
    assert not run.exists()
