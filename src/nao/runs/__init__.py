"""Search runs: one skeleton (:mod:`nao.runs.skeleton`), one kind per way of scoring candidates
(:mod:`nao.runs.kinds`: tabular, supernet-cnn, supernet-rnn, trained-cnn, trained-rnn, and any a
plug-in registers), one resolution of a run's settings (:func:`resolve`) and one set of resume
rules (:mod:`nao.runs.resume_policy`).

A run's ``config.json`` is its kind's resolved config plus ``kind``; :func:`make_kind` rebuilds the
kind from it (so ``--resume`` needs nothing else).

>>> import tempfile
>>> from nao.runs.kinds.tabular import synthetic_table
>>> table = str(synthetic_table(tempfile.mkdtemp() + "/t.csv.gz"))
>>> out = run({"kind": "tabular", "benchmark": table, "strategy": "random", "budget": 10},
...           tempfile.mkdtemp() + "/run", say=lambda line: None)
>>> out["n_evaluated"]
10
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nao.errors import ConfigError
from nao.runs.resolve import kind_class, resolve
from nao.runs.skeleton import RunKind, execute


def make_kind(config: Mapping[str, Any] | Any) -> RunKind:
    """The kind of a config: a ``config.json`` mapping (with ``kind``) or a kind's config dataclass."""
    from nao.registry import KINDS

    if isinstance(config, Mapping):
        if "kind" not in config:
            raise ConfigError(f"config has no 'kind' ({', '.join(KINDS.names())})")
        cls = kind_class(config["kind"])
        return cls(cls.config_class.from_dict(cls.upgrade({k: v for k, v in config.items() if k != "kind"})))
    for _, cls in KINDS.items():
        if type(config) is cls.config_class:
            return cls(config)
    raise ConfigError(f"no run kind takes a {type(config).__name__}")


def run(config: Mapping[str, Any] | Any, out: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Run a search of ``config`` (a kind's config dataclass or a ``config.json`` mapping) into ``out``.

    Keyword arguments go to :func:`execute` (``say``, ``quiet``, ``tensorboard``, ``progress``).
    """
    return execute(make_kind(config), out, **kwargs)


def resume(out: str | Path, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Continue the interrupted run in ``out``; returns ``result.json``.

    ``changes``: dotted settings to change (``{"budget": 200}``), under the same rules as
    ``nao search --resume`` (:mod:`nao.runs.resume_policy`). Keyword arguments go to :func:`execute`.
    """
    from nao.rundir import RunDir

    saved = RunDir.open(out).config()
    if "kind" not in saved:
        raise ConfigError(f"--resume {out}: config.json names no run kind (a run of an older nao, or not a "
                          f"nao search run)")
    kind = resolve(saved["kind"], resume=out, settings=dict(changes or {}))
    return execute(kind, out, resume=True, **kwargs)


__all__ = ["RunKind", "execute", "kind_class", "make_kind", "resolve", "resume", "run"]
