"""A new run kind is one module plus its registration: ``tests/toy_kind.py`` registers a kind, and
``nao search toy`` runs it, with its own flag, presets, ``--set``, resume and refusals, without any
table of the library being touched."""

from __future__ import annotations

import json

import pytest

from nao.cli import main
from nao.registry import KINDS, PRESETS


@pytest.fixture
def toy():
    import importlib
    import sys

    _forget()
    # Importing registers the kind and its presets (again, after an earlier test removed them).
    importlib.reload(sys.modules["toy_kind"]) if "toy_kind" in sys.modules else importlib.import_module("toy_kind")
    yield
    _forget()


def _forget():
    KINDS.unregister("toy")
    PRESETS.unregister("toy/default")
    PRESETS.unregister("toy/long")


def test_a_kind_from_outside_runs_through_nao_search(toy, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["search", "toy", "--bonus", "0.5", "--set", "seed=3", "--out", str(out), "-q"]) == 0
    result = json.loads((out / "result.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert result["kind"] == "toy" and result["n_evaluated"] == 5 and result["bonus"] == 0.5
    assert config["seed"] == 3 and config["preset"] == "default"
    # The same resume rules as every kind: the budget may grow, the seed may not change.
    assert main(["search", "--resume", str(out), "--budget", "7", "-q"]) == 0
    assert json.loads((out / "result.json").read_text())["n_evaluated"] == 7
    capsys.readouterr()
    assert main(["search", "--resume", str(out), "--seed", "4", "-q"]) == 2
    assert "seed 4 conflicts with the run's 3" in capsys.readouterr().err


def test_its_presets_and_flags_are_generated(toy, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["search", "toy", "--help"])
    shown = capsys.readouterr().out
    assert "--bonus" in shown and "--preset" in shown and "--dataset" not in shown
    assert main(["search", "toy", "--preset", "long", "--out", str(tmp_path / "r"), "-q"]) == 0
    assert json.loads((tmp_path / "r" / "result.json").read_text())["n_evaluated"] == 12


@pytest.mark.parametrize("argv, fragment", [
    (["--bonus", "-1"], "bonus: expects a value >= 0.0, got -1.0"),
    (["--set", "budget=2.5"], "--set budget=2.5: budget: expects a whole number, got 2.5"),
    (["--set", "bonus=high"], "bonus: expects a number, got 'high'"),
    (["--preset", "huge"], "unknown --preset 'huge' for toy; choose one of: default, long"),
])
def test_its_settings_are_checked_like_any_kind(toy, tmp_path, capsys, argv, fragment):
    assert main(["search", "toy", *argv, "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
