"""A run's config, resolved in one call: preset -> ``--config`` file -> flags -> ``--set``, typed and checked.

:func:`resolve` is the one path from a user's settings to a :class:`~nao.runs.skeleton.RunKind`:
``nao search`` calls it once with what was on its command line, and :func:`nao.runs.run` /
:func:`nao.runs.resume` call it too. Each layer is applied to the plain form of the config and
read back by :meth:`nao.config.Config.from_dict` at once, so an unknown key, a wrong type, a section
given as a plain value or a value out of range is a :class:`~nao.errors.ConfigError` naming the
layer it came from and the key. A flag the kind does not declare is refused, naming the kinds
where it applies. Resuming starts from the run's ``config.json`` instead of the preset and applies
the rules of :mod:`nao.runs.resume_policy`.

``strategy_options`` mean the same in every kind: keyword arguments of the strategy, checked
against it. A preset's options belong to the preset's strategy: another ``--strategy`` starts
without them unless options are given too.

>>> kind = resolve("tabular", flags={"benchmark": "t.csv.gz", "budget": 20}, settings=["seed=3"])
>>> kind.name, kind.config.budget, kind.config.seed
('tabular', 20, 3)
>>> resolve("tabular", settings=["budget=2.5"])
Traceback (most recent call last):
...
nao.errors.ConfigError: --set budget=2.5: budget: expects a whole number, got 2.5
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nao.config import apply_layers, set_dotted
from nao.errors import ConfigError
from nao.runs import resume_policy as policy
from nao.runs.skeleton import RunKind


def kind_class(name: str) -> type[RunKind]:
    """The registered :class:`RunKind` called ``name``."""
    from nao.registry import KINDS

    return KINDS.get(name)


def resolve(kind: str, *, preset: str | None = None, config_file: str | Path | None = None,
            flags: Mapping[str, Any] | None = None, settings: Sequence[str] | Mapping[str, Any] = (),
            resume: str | Path | None = None, out: str | Path | None = None) -> RunKind:
    """The ``kind`` run, its config resolved from its layers (module docstring).

    Args:
        kind: run kind name (``tabular``, ``trained-cnn``...).
        preset: preset name (default: the kind's :meth:`~RunKind.default_preset`).
        config_file: a YAML/JSON file of settings (``--config``).
        flags: the flags given, by argparse name (``{"budget": 30, "data_dir": "d"}``); ``None`` values are absent.
        settings: ``--set`` items (``"key=value"``) or a mapping of dotted keys to values.
        resume: the run directory being resumed: its ``config.json`` is the base, the resume rules apply.
        out: the run directory asked for (a resume refuses another one).
    """
    from nao.presets import preset as make_preset
    from nao.presets import setting_layers
    from nao.rundir import RunDir

    cls = kind_class(kind)
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    flag_layer = flag_overrides(cls, given)
    saved: dict[str, Any] | None = None
    if resume is not None:
        saved = RunDir.open(resume).config()
        policy.check_request(resume, saved, kind=kind, preset=preset, out=out)
        plain = copy.deepcopy(cls.upgrade({k: v for k, v in saved.items() if k != "kind"}))  # saved stays as read
        _read(cls, plain, f"{resume}/config.json")
    else:
        plain = make_preset(f"{kind}/{preset or cls.default_preset(given)}").to_dict()
    base_strategy = plain.get("strategy")
    layers = setting_layers(config_file, flag_layer, settings)
    touched = {k for _, layer in layers for key, value in layer.items() for k in _keys(key, value)}
    apply_layers(cls.config_class, plain, layers)
    if saved is None and plain.get("strategy") != base_strategy and "strategy_options" in plain:
        # The preset's options were its own strategy's: keep only those given for the new one.
        plain["strategy_options"] = {}
        for _, layer in layers:
            for key, value in layer.items():
                if key.split(".")[0] == "strategy_options":
                    set_dotted(plain, key, value, cls.config_class)
    if saved is not None:
        policy.reset_executor(plain, saved, touched)
    config = _read(cls, plain, "the resolved settings")
    if saved is not None:
        policy.refuse_changes(resume, cls.upgrade({k: v for k, v in saved.items() if k != "kind"}),
                              config.to_dict(), policy.may_change(cls.resumable_changes))
    return cls(config)


def flag_overrides(cls: type[RunKind], given: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted overrides of the flags ``given`` (by argparse name); a flag ``cls`` does not declare is
    refused, naming the kinds that take it."""
    flags = {f.dest: f for f in cls.all_flags()}
    out: dict[str, Any] = {}
    for dest, value in given.items():
        f = flags.get(dest)
        if f is None:
            raise ConfigError(_not_here(cls, dest))
        # Paths are stored resolved, so a run resumes from any directory (and compares equal).
        for key in f.keys:
            out[key] = str(Path(value).resolve()) if f.path else value
    return out


def _not_here(cls: type[RunKind], dest: str) -> str:
    from nao.registry import KINDS

    name = "--" + dest.replace("_", "-")
    takers = [k for _, k in KINDS.items() if any(f.dest == dest for f in k.all_flags())]
    same_task = [k.evaluator for k in takers if k.task == cls.task]
    why = f" ({cls.no_executor})" if cls.no_executor and dest.startswith(("executor", "workers", "address",
                                                                           "cpus_per", "gpus_per", "max_retries")) else ""
    if same_task:
        return f"{name} applies to --evaluator {' or '.join(same_task)}, not {cls.evaluator}{why}"
    where = ", ".join(k.name for k in takers) or "no run kind"
    return f"{name} does not apply to a {cls.name} search (it applies to: {where}){why}"


def _read(cls: type[RunKind], plain: dict[str, Any], source: str) -> Any:
    try:
        return cls.config_class.from_dict(plain)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _keys(key: str, value: Any) -> set[str]:
    """Every dotted key a layer entry sets (a section given whole sets each of its keys)."""
    if isinstance(value, Mapping) and value:
        return {key} | {k for sub, v in value.items() for k in _keys(f"{key}.{sub}", v)}
    return {key}
