"""One registry of presets: search kinds, supernets, training recipes, language models.

Every preset is a configuration dataclass made by a zero-argument factory registered under
``family/name``; :func:`preset` returns it with overrides applied. Overrides are dotted keys into
the nested dataclass (``supernet_train.lr``), checked by the one dataclass reader
(:func:`nao.dataclass_json.dataclass_from_plain`): an unknown key is a :class:`ConfigError`
naming it. The same path reads a YAML file (``--config FILE``) and ``--set key=value`` flags.

Families: ``tabular``, ``supernet-cnn``, ``supernet-rnn``, ``trained-cnn``, ``trained-rnn`` (search
kinds), ``train`` (image training recipes), ``lm`` (language-model recipes), ``rnn-supernet``.

>>> cfg = preset("lm/small", **{"model.hidden_size": 64, "model.emb_size": 64})
>>> cfg.model.hidden_size, preset("lm/small").model.hidden_size != 64
(64, True)
>>> "digits" in preset_names("supernet-cnn")
True
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from nao.dataclass_json import dataclass_from_plain
from nao.errors import ConfigError

#: Modules whose import registers each family's presets (imported on first use).
_FAMILY_MODULES: dict[str, str] = {
    "tabular": "nao.runs.tabular",
    "supernet-cnn": "nao.runs.supernet_cnn",
    "supernet-rnn": "nao.runs.supernet_rnn",
    "trained-cnn": "nao.runs.trained",
    "trained-rnn": "nao.runs.trained",
    "train": "nao.train.presets",
    "lm": "nao.train.lm",
    "rnn-supernet": "nao.evaluators.rnn_supernet",
}

_REGISTRY: dict[str, dict[str, Callable[[], Any]]] = {}


def register_preset(family: str, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Decorator: register a zero-argument factory as preset ``family/name``."""
    if family not in _FAMILY_MODULES:
        raise ValueError(f"unknown preset family {family!r}")

    def deco(factory: Callable[[], Any]) -> Callable[[], Any]:
        _REGISTRY.setdefault(family, {})[name] = factory
        return factory

    return deco


def _family(family: str) -> dict[str, Callable[[], Any]]:
    if family not in _FAMILY_MODULES:
        raise ConfigError(f"unknown preset family {family!r}; choose one of: {', '.join(_FAMILY_MODULES)}")
    importlib.import_module(_FAMILY_MODULES[family])
    return _REGISTRY.get(family, {})


def preset_names(family: str) -> list[str]:
    """The presets of ``family``, in registration order."""
    return list(_family(family))


def preset(name: str, **overrides: Any) -> Any:
    """Preset ``family/name`` with ``overrides`` (dotted keys allowed; ``None`` values ignored)."""
    family, _, short = name.partition("/")
    presets = _family(family)
    if short not in presets:
        raise ConfigError(f"unknown --preset {short!r} for {family}; choose one of: {', '.join(presets)}")
    return with_overrides(presets[short](), {k: v for k, v in overrides.items() if v is not None})


def with_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """``cfg`` (a dataclass) with dotted-key ``overrides`` applied and the result re-read strictly."""
    if not overrides:
        return cfg
    plain = asdict(cfg)
    for key, value in overrides.items():
        _set_dotted(plain, key, value, type(cfg))
    return dataclass_from_plain(type(cfg), plain)


def _set_dotted(plain: dict[str, Any], key: str, value: Any, cls: type) -> None:
    """Set ``key`` (dotted) in ``plain``, the ``asdict`` of a ``cls``; dataclass sections accept only their
    fields, free-form mapping fields (``strategy_options``, ``nao_options``) any key."""
    node, hint = plain, cls
    parts = key.split(".")
    for i, part in enumerate(parts):
        free = _is_mapping(hint)
        if not isinstance(node, dict) or (part not in node and not free):
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "(not a section)"
            raise ConfigError(f"unknown setting {'.'.join(parts[: i + 1])!r} in {cls.__name__}; known here: {known}")
        hint = _field_hint(hint, part)
        if i == len(parts) - 1:
            old = node.get(part)
            # A section given whole (YAML) merges into the existing one, so a file can set one key of it.
            node[part] = _merge(old, value) if isinstance(old, dict) and isinstance(value, Mapping) else _plain(value)
        else:
            node = node.setdefault(part, {}) if free else node[part]


def _is_mapping(hint: Any) -> bool:
    return typing.get_origin(hint) in (dict, Mapping) or hint in (dict, Any)


def _field_hint(hint: Any, name: str) -> Any:
    """The declared type of field ``name`` of dataclass ``hint`` (``Any`` inside a free-form mapping)."""
    if is_dataclass(hint):
        return typing.get_type_hints(hint).get(name, Any)
    return Any


def _merge(old: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for k, v in new.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, Mapping) else _plain(v)
    return out


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping: ``{"a": {"b": 1}} -> {"a.b": 1}`` (dict-valued leaves kept
    for settings whose value is a free-form dict, e.g. strategy options, only when empty)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``--set key=value`` flags as overrides (values read as YAML: numbers, booleans, lists)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set supernet_train.lr=0.05")
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({str(e).splitlines()[0]})") from None
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) file of settings as dotted overrides; ConfigError naming the file if unreadable."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"--config {path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"--config {path}: expected a mapping of settings, got {type(data).__name__}")
    return dict(data)
