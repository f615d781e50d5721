"""Run directories are owned: one live writer at a time (``--resume`` of a running run included), journal
records written whole whatever the crash point, nothing written before every check has passed, values for
third-party code (a Ray address) and unmeetable constraints refused before a search starts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from nao.cli import main
from nao.errors import ConfigError
from nao.journal import Journal, read_journal, result_to_record
from nao.results import Result
from nao.rundir import RunDir
from nao.spaces import get_space

SPACE = get_space("nb201")


def _search(table, out, *extra):
    return main(["search", "tabular", "--benchmark", str(table), "--strategy", "random", "--budget", "6",
                 "--out", str(out), "-q", *extra])


# -- one writer ------------------------------------------------------------------------------------
def test_a_live_writer_refuses_a_second_one(synthetic_nb201, tmp_path, capsys):
    out = tmp_path / "run"
    assert _search(synthetic_nb201, out) == 0
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from nao.rundir import RunDir
        RunDir.open({str(out)!r}).lock()
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (out / "journal.jsonl").read_bytes(), (out / "config.json").read_bytes()
        capsys.readouterr()
        assert main(["search", "--resume", str(out), "--budget", "8", "-q"]) == 2
        err = capsys.readouterr().err
        assert f"{out} is in use by a running process (pid {holder.pid})" in err and len(err.splitlines()) == 1
        assert ((out / "journal.jsonl").read_bytes(), (out / "config.json").read_bytes()) == before
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's lock: the resume goes ahead.
    assert main(["search", "--resume", str(out), "--budget", "8", "-q"]) == 0
    assert json.loads((out / "result.json").read_text())["n_evaluated"] == 8


def test_the_lock_is_held_for_the_run_and_released_after(tmp_path):
    rd = RunDir.create(tmp_path / "r", {"seed": 0})
    with pytest.raises(ConfigError, match="in use by a running process"):
        RunDir.open(tmp_path / "r").lock()
    rd.unlock()
    RunDir.open(tmp_path / "r").lock().unlock()


# -- whole records -----------------------------------------------------------------------------------
def _result(i: int) -> Result:
    return Result(SPACE.make([i % 5, 1, 2, 3, 4, 0]), "ok", {"val_acc": i / 10})


@pytest.mark.parametrize("cut", [1, 17, -2])  # a few bytes, most of a record, all but its newline+brace
def test_a_torn_record_is_never_glued_to_the_next(tmp_path, cut):
    path = tmp_path / "journal.jsonl"
    with Journal(path, SPACE) as j:
        j.append(_result(1))
    torn = (json.dumps(result_to_record(_result(2), SPACE), sort_keys=True) + "\n").encode()[:cut]
    with open(path, "ab") as fh:  # a crash in the middle of the second record's write
        fh.write(torn)
    with pytest.warns(UserWarning, match="cutting a torn last record"):
        journal = Journal(path, SPACE)
    with journal as j:
        j.append(_result(3))
    assert [r.metrics["val_acc"] for r in read_journal(path, SPACE)] == [0.1, 0.3]


def test_a_whole_record_missing_only_its_newline_is_kept(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps(result_to_record(_result(1), SPACE), sort_keys=True))  # no trailing newline
    with Journal(path, SPACE) as j:
        j.append(_result(2))
    assert [r.metrics["val_acc"] for r in read_journal(path, SPACE)] == [0.1, 0.2]


def test_each_record_is_one_write(tmp_path, monkeypatch):
    import os

    writes = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(bytes(data)) or real(fd, data))
    with Journal(tmp_path / "j.jsonl", SPACE) as j:
        j.append(_result(1))
        j.append(_result(2))
    assert len(writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)


# -- nothing written before the checks; third-party values; unmeetable constraints --------------------
@pytest.mark.parametrize("extra, fragment", [
    (["--executor", "ray", "--address", "10.0.0.5"], "--address '10.0.0.5': expected auto, host:port"),
    (["--executor", "ray", "--address", "host:99999"], "--address 'host:99999'"),
    (["--constraint", "params_m<=0.0001"], "no architecture in"),
    (["--workers", "2"], "--workers applies to --executor processes, not sequential"),
    (["--executor", "processes", "--workers", "0"], "executor.workers: expects a value >= 1, got 0"),
])
def test_refused_before_anything_is_written(synthetic_nb201, tmp_path, capsys, extra, fragment):
    out = tmp_path / "run"
    assert _search(synthetic_nb201, out, *extra) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    assert _search(synthetic_nb201, out) == 0  # the corrected retry is not blocked by a half-created run
