"""Every documented short form of ``nao``, with the global flags before the subcommand (``nao -q search ...``)
as well as after it. Before: the short forms only worked when ``search`` was the first word."""

from __future__ import annotations

import json

import pytest

from nao import __version__
from nao.cli import build_parser, expand_short_forms, main


def _parsed(argv):
    return build_parser().parse_args(expand_short_forms(argv))


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"nao {__version__}"


@pytest.mark.parametrize("argv, task, quiet, verbose", [
    ([], "cnn", False, False),                                   # nao
    (["-q"], "cnn", True, False),                                # nao -q
    (["search"], "cnn", False, False),                           # nao search
    (["-q", "search"], "cnn", True, False),
    (["search", "--benchmark", "t.csv.gz"], "tabular", False, False),
    (["-q", "search", "--benchmark", "t.csv.gz"], "tabular", True, False),
    (["--quiet", "search", "--benchmark", "t.csv.gz"], "tabular", True, False),
    (["search", "-q", "--benchmark", "t.csv.gz"], "tabular", True, False),
    (["-v", "search", "--task", "ptb"], "ptb", False, True),
    (["--verbose", "search", "--task", "cnn", "--evaluator", "training"], "cnn", False, True),
    (["search", "--task", "ptb", "-v"], "ptb", False, True),
])
def test_short_forms_with_global_flags_anywhere(argv, task, quiet, verbose):
    args = _parsed(argv)
    assert (args.command, args.task, args.quiet, args.verbose) == ("search", task, quiet, verbose)


def test_quiet_tabular_short_form_runs(synthetic_nb201, tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["-q", "search", "--benchmark", str(synthetic_nb201), "--strategy", "random", "--budget", "5",
               "--out", str(out)])
    assert rc == 0 and json.loads((out / "result.json").read_text())["n_evaluated"] == 5
    capsys.readouterr()
    # ... and the resume short form, also behind a global flag: the run's own task is used.
    assert _parsed(["-q", "search", "--resume", str(out)]).task == "tabular"
    rc = main(["-v", "search", "--resume", str(out), "--budget", "7"])
    assert rc == 0 and json.loads((out / "result.json").read_text())["n_evaluated"] == 7


def test_bad_task_behind_a_global_flag_is_one_line(capsys):
    assert main(["-q", "search", "--task", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--task: choose cnn or ptb" in err and len(err.strip().splitlines()) == 1
