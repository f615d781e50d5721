"""Dataclass configs from their JSON form (``dataclasses.asdict`` written to ``config.json``).

>>> import json
>>> from dataclasses import asdict
>>> from nao.evaluators.rnn_supernet import RNNSupernetConfig, supernet_preset
>>> cfg = supernet_preset("tiny")  # nested: RNNSupernetConfig -> LMConfig -> ModelConfig
>>> dataclass_from_plain(RNNSupernetConfig, json.loads(json.dumps(asdict(cfg)))) == cfg
True
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from nao.errors import ConfigError


def dataclass_from_plain(cls: type, d: Mapping[str, Any]) -> Any:
    """``cls(**d)`` with nested dataclasses and tuples rebuilt from their JSON forms.

    Raises :class:`ConfigError` for a value that is not an object or a setting ``cls`` lacks;
    missing settings take ``cls``'s defaults.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown setting(s) {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _from_plain(hints[name], value) for name, value in d.items()})


def _from_plain(hint: Any, value: Any) -> Any:
    for t in (hint, *typing.get_args(hint)):  # `X | None` tries X too
        if is_dataclass(t) and isinstance(value, Mapping):
            return dataclass_from_plain(t, value)
        if typing.get_origin(t) is tuple and isinstance(value, list):
            return tuple(value)
    return value
