"""The one configuration base (:mod:`nao.config`) and the one resolution (:func:`nao.runs.resolve`): every
preset round-trips through its plain and JSON forms; every value from a file, ``--set`` or a flag is checked
against its field's type and range, in one line naming the key and what it expects."""

from __future__ import annotations

import dataclasses

import pytest

from nao.cli import main
from nao.config import Config
from nao.errors import ConfigError
from nao.presets import preset
from nao.registry import PRESETS
from nao.runs import resolve


@pytest.mark.parametrize("name", [n for n in PRESETS.names() if not n.startswith("toy/")])
def test_every_preset_round_trips(name):
    cfg = preset(name)
    assert isinstance(cfg, Config) and dataclasses.is_dataclass(cfg)
    assert type(cfg).from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    assert type(cfg).from_json(cfg.to_json()).to_json() == cfg.to_json()


@pytest.mark.parametrize("settings, fragment", [
    (["budget=2.5"], "--set budget=2.5: budget: expects a whole number, got 2.5"),
    (["budget=ten"], "budget: expects a whole number, got 'ten'"),
    (["budget=-3"], "--budget must be at least 1, got -3"),
    (["executor=3"], "executor: expects a section of settings (name, workers, address"),
    (["executor.workers=0"], "executor.workers: expects a value >= 1, got 0"),
    (["strategy_options=[1, 2]"], "strategy_options: expects a mapping of options, got [1, 2]"),
    (["constraint=5"], "constraint: expects a string or null, got 5"),
    (["executor.nme=ray"], "unknown setting 'executor.nme'; valid here: address, cpus_per_eval"),
    (["seed=true"], "seed: expects a whole number, got true"),
])
def test_tabular_settings_are_typed(synthetic_nb201, tmp_path, capsys, settings, fragment):
    argv = ["search", "tabular", "--benchmark", str(synthetic_nb201), "--out", str(tmp_path / "r"), "-q"]
    assert main([*argv, *(a for s in settings for a in ("--set", s))]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()  # nothing written for a refused run: a corrected retry is not blocked


@pytest.mark.parametrize("text, fragment", [
    ("supernet_train: 5\n", "supernet_train: expects a section of settings"),
    ("supernet_train:\n  epochs_per_round: 1.5\n", "supernet_train.epochs_per_round: expects a whole number, got 1.5"),
    ("final_train:\n  augment:\n    flip: maybe\n", "final_train.augment.flip: expects true or false, got 'maybe'"),
    ("digits_fractions: [0.5, 0.5]\n", "digits_fractions: expects a list of 3 values"),
    ("top_k: 0\n", "top_k must be at least 1"),
])
def test_a_config_file_is_checked_before_anything_runs(tmp_path, capsys, text, fragment):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    assert main(["search", "cnn", "--preset", "smoke", "--config", str(f), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_strategy_options_mean_the_same_in_every_kind():
    # A preset's options are its strategy's: another --strategy starts without them...
    assert resolve("trained-cnn", preset="smoke", flags={"strategy": "random"}).config.strategy_options == {}
    assert resolve("supernet-cnn", preset="smoke", flags={"strategy": "rea"}).config.strategy_options == {}
    # ... and options given for a strategy that does not take them are refused by name, in every kind.
    for kind in ("tabular", "trained-cnn", "supernet-cnn", "supernet-rnn", "trained-rnn"):
        k = resolve(kind, flags={"strategy": "local"}, settings={"strategy_options.seed_archs": 3})
        with pytest.raises(ConfigError, match="unknown option 'seed_archs' of strategy 'local'"):
            from nao.strategies import check_strategy_options

            check_strategy_options(k.config.strategy, k.config.strategy_options)


def test_old_nao_options_config_still_reads():
    from nao.runs import make_kind

    cfg = preset("supernet-cnn/smoke").to_dict()
    cfg["nao_options"] = cfg.pop("strategy_options")
    kind = make_kind({**cfg, "kind": "supernet-cnn"})
    assert kind.config.strategy_options == preset("supernet-cnn/smoke").strategy_options


def test_every_kind_declares_flags_that_reach_its_config():
    # Contract over every registered kind: each declared flag names settings its config has, and each
    # of its presets resolves.
    from nao.config import set_dotted
    from nao.presets import preset_names
    from nao.registry import KINDS

    for name, cls in KINDS.items():
        plain = preset(f"{name}/{cls.default_preset({})}").to_dict()
        for f in cls.all_flags():
            for key in f.keys:
                set_dotted(plain, key, None, cls.config_class)  # raises for a key the config lacks
        for p in preset_names(name):
            assert resolve(name, preset=p).config.preset == p, (name, p)
