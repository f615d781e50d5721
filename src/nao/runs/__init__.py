"""Search runs: one skeleton (:mod:`nao.runs.skeleton`), one kind per way of scoring candidates.

=============  ==========================================================  ===============
kind           what scores a candidate                                     module
=============  ==========================================================  ===============
tabular        a benchmark table (NAS-Bench-201...)                        tabular
supernet-cnn   a weight-sharing supernet of image cells (NAO-WS)           supernet_cnn
supernet-rnn   a weight-sharing supernet of recurrent cells (NAO-WS PTB)   supernet_rnn
trained-cnn    training each image cell from scratch (NAO)                 trained
trained-rnn    training each recurrent cell briefly on a corpus (NAO)      trained
=============  ==========================================================  ===============

A run's ``config.json`` is its kind's resolved config plus ``kind``; :func:`make_kind` rebuilds the
kind from it (so ``--resume`` needs nothing else).

>>> sorted(KIND_MODULES)
['supernet-cnn', 'supernet-rnn', 'tabular', 'trained-cnn', 'trained-rnn']
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from nao.dataclass_json import dataclass_from_plain
from nao.errors import ConfigError
from nao.runs.skeleton import RunKind, execute

#: Kind name -> module defining it (imported when used: supernet and training kinds pull in torch models).
KIND_MODULES: dict[str, str] = {
    "tabular": "nao.runs.tabular",
    "supernet-cnn": "nao.runs.supernet_cnn",
    "supernet-rnn": "nao.runs.supernet_rnn",
    "trained-cnn": "nao.runs.trained",
    "trained-rnn": "nao.runs.trained",
}


def kind_class(name: str) -> type[RunKind]:
    """The :class:`RunKind` subclass called ``name``."""
    if name not in KIND_MODULES:
        raise ConfigError(f"unknown run kind {name!r}; choose one of: {', '.join(KIND_MODULES)}")
    module = importlib.import_module(KIND_MODULES[name])
    return module.KINDS[name]


def make_kind(config: Mapping[str, Any] | Any) -> RunKind:
    """The kind of a config: a ``config.json`` mapping (with ``kind``) or a kind's config dataclass."""
    if isinstance(config, Mapping):
        if "kind" not in config:
            raise ConfigError("config has no 'kind' (tabular, supernet-cnn, supernet-rnn, trained-cnn, trained-rnn)")
        cls = kind_class(config["kind"])
        body = {k: v for k, v in config.items() if k != "kind"}
        return cls(dataclass_from_plain(cls.config_class, body))
    for name in KIND_MODULES:
        cls = kind_class(name)
        if isinstance(config, cls.config_class):
            return cls(config)
    raise ConfigError(f"no run kind takes a {type(config).__name__}")





def run(config: Mapping[str, Any] | Any, out: Any, **kwargs: Any) -> dict[str, Any]:
    """Run a search of ``config`` (a kind's config dataclass or a ``config.json`` mapping) into ``out``.

    Keyword arguments go to :func:`execute` (``say``, ``quiet``, ``tensorboard``, ``progress``).
    """
    return execute(make_kind(config), out, **kwargs)


def resume(out: Any, **kwargs: Any) -> dict[str, Any]:
    """Continue the interrupted run in ``out`` with its own ``config.json``; returns ``result.json``."""
    from nao.rundir import RunDir

    return execute(make_kind(RunDir.open(out).config()), out, resume=True, **kwargs)
__all__ = ["KIND_MODULES", "RunKind", "execute", "kind_class", "make_kind", "resume", "run"]
