"""``nao dashboard``: the journal mirrored into Optuna's journal storage, served by optuna-dashboard for real.

The trials are read back through optuna-dashboard's own HTTP API (``/api/studies``, ``/api/studies/<id>``,
routes of optuna_dashboard/_app.py) and compared with the journal record by record.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")  # the [dashboard] extra ([dev] includes it, so CI runs these)
pytest.importorskip("optuna_dashboard")

from nao.cli import main  # noqa: E402
from nao.dashboard import Dashboard, export_storage, param_names  # noqa: E402
from nao.journal import Journal, read_journal  # noqa: E402
from nao.results import Result  # noqa: E402
from nao.rundir import RunDir  # noqa: E402
from nao.spaces import get_space  # noqa: E402


def _get(url: str, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run of 12 evaluations, two of them failed, with test metrics and a cost column."""
    space = get_space("nb201")
    rd = RunDir.create(tmp_path / "my-run", {"space": "nb201", "kind": "tabular", "strategy": "rea", "seed": 3,
                                             "objective": "val_acc"})
    rng = np.random.default_rng(0)
    with Journal(rd.journal_path, space) as j:
        for i in range(12):
            arch = space.sample(rng)
            if i in (2, 7):
                j.append(Result.failed(arch, "RuntimeError: CUDA out of memory", cost_s=3.0))
            else:
                j.append(Result(arch, "ok", {"val_acc": float(rng.uniform(.5, .9)), "test_acc": float(rng.uniform(.5, .9)),
                                             "params_m": float(rng.uniform(.1, 1.5))}, cost_s=10.0 + i))
    return rd.path


def _check_against_journal(detail: dict, run: Path) -> None:
    """Every trial served equals its journal record: state, value, parameters, attributes."""
    space = get_space("nb201")
    results = read_journal(run / "journal.jsonl", space)
    names = param_names(space)
    trials = sorted(detail["trials"], key=lambda t: t["number"])
    assert len(trials) == len(results)
    for t, r in zip(trials, results):
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        assert attrs["arch"] == space.format(r.arch)
        assert {p["name"]: p["param_external_value"] for p in t["params"]} == \
            {n: space.token_name(tok) for n, tok in zip(names, r.arch.tokens)}
        for p in t["params"]:  # one categorical per position over the tokens allowed there
            assert [c["value"] for c in p["distribution"]["choices"]] == list(space.ops)
        if r.ok:
            assert t["state"] == "Complete" and t["values"] == [pytest.approx(r.metrics["val_acc"])]
            assert float(attrs["test_acc"]) == pytest.approx(r.metrics["test_acc"])
            assert float(attrs["params_m"]) == pytest.approx(r.metrics["params_m"])
        else:
            assert t["state"] == "Fail" and "values" not in t and attrs["error"] == r.error
    best = max((r for r in results if r.ok), key=lambda r: r.metrics["val_acc"])
    assert [b["values"] for b in detail["best_trials"]] == [[pytest.approx(best.metrics["val_acc"])]]


def test_dashboard_serves_the_journal(run_dir):
    with Dashboard(run_dir, port=0, follow_s=0.2) as dash:  # port 0: a free port chosen by the OS
        base = dash.url.removesuffix("/dashboard/")
        studies = _get(base + "/api/studies")["study_summaries"]
        assert [(s["study_name"], s["directions"]) for s in studies] == [("my-run", ["maximize"])]
        _check_against_journal(_get(f"{base}/api/studies/{studies[0]['study_id']}"), run_dir)
        with urllib.request.urlopen(dash.url, timeout=10) as r:  # the web page itself
            assert r.status == 200 and b"<html" in r.read().lower()
        # A search still running: a new record shows up while the dashboard serves.
        space = get_space("nb201")
        with Journal(run_dir / "journal.jsonl", space) as j:
            j.append(Result(space.make([3] * 6), "ok", {"val_acc": 0.95, "test_acc": 0.9, "params_m": 1.0}))
        deadline = time.monotonic() + 10
        while len(_get(f"{base}/api/studies/0")["trials"]) < 13 and time.monotonic() < deadline:
            time.sleep(0.1)
        _check_against_journal(_get(f"{base}/api/studies/0"), run_dir)
        tmp = Path(dash._tmp.name)
    assert not tmp.exists()  # the temporary mirror is gone after close


def test_export_only_loads_in_optuna(run_dir, tmp_path, capsys):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    out = tmp_path / "mirror.log"
    assert main(["dashboard", str(run_dir), "--export-only", str(out)]) == 0
    assert "12 trials" in capsys.readouterr().out
    study = optuna.load_study(study_name="my-run", storage=JournalStorage(JournalFileBackend(str(out))))
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE and study.metric_names == ["val_acc"]
    assert [t.state.name for t in study.trials].count("FAIL") == 2
    assert study.user_attrs["strategy"] == "rea" and study.user_attrs["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror.log", "my-run"]  # no temporary or lock left


def test_min_objective_is_minimised(tmp_path):
    space = get_space("nb201")
    rd = RunDir.create(tmp_path / "lm", {"space": "nb201", "objective": "val_ppl"})
    with Journal(rd.journal_path, space) as j:
        j.append(Result(space.make([1] * 6), "ok", {"val_ppl": 90.0}))
        j.append(Result(space.make([2] * 6), "ok", {"val_ppl": float("nan")}))  # a NaN is no value: FAIL
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    assert export_storage(rd.path, tmp_path / "lm.log") == 2
    study = optuna.load_study(study_name="lm", storage=JournalStorage(JournalFileBackend(str(tmp_path / "lm.log"))))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"] and study.best_value == 90.0


def test_port_in_use_exit_2_nothing_left(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["dashboard", str(run_dir), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nao dashboard: error: --port {port}: cannot listen") and err.count("\n") == 1
    assert not list((tmp_path / "tmp").iterdir())


def test_not_a_run_and_bad_export_exit_2(tmp_path, run_dir, capsys):
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["dashboard", str(run_dir), "--export-only", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["dashboard", str(run_dir), "--export-only", str(tmp_path / "no" / "x.log")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["optuna", "optuna_dashboard"])
def test_missing_extra_names_the_pip_command(run_dir, tmp_path, monkeypatch, capsys, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import now raises ImportError
    argv = ["dashboard", str(run_dir), "--port", "0"]
    if missing == "optuna":
        argv += ["--export-only", str(tmp_path / "x.log")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{missing.replace('_', '-')} is not installed" in err and 'pip install "nao[dashboard]"' in err
    assert not (tmp_path / "x.log").exists()


def test_cli_serves_until_terminated(run_dir):
    """The real command in a subprocess: it serves the trials, and SIGTERM stops it cleanly (exit 0)."""
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "nao", "dashboard", str(run_dir), "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        detail = None
        while detail is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                detail = _get(f"http://127.0.0.1:{port}/api/studies/0", timeout=2)
            except OSError:
                time.sleep(0.2)
        assert detail is not None, proc.stderr.read() if proc.poll() is not None else "no answer in 60 s"
        _check_against_journal(detail, run_dir)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
        assert f"12 trials of {run_dir} at http://127.0.0.1:{port}/dashboard/" in err and "stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
