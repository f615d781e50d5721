"""One registry of presets: search kinds, supernets, training recipes, language models.

Every preset is a configuration (a :class:`nao.config.Config` dataclass) made by a zero-argument
factory registered under ``family/name`` in :data:`nao.registry.PRESETS`; :func:`preset` returns it
with overrides applied. Overrides are dotted keys into the nested dataclass (``supernet_train.lr``),
checked by the one reader (:meth:`nao.config.Config.override`): an unknown key, a wrong type or a
value out of range is a :class:`ConfigError` naming it. :func:`load_config_file` (``--config FILE``)
and :func:`parse_set` (``--set key=value``) read the other layers of a resolved run config
(:func:`nao.runs.resolve`).

Families: each run kind (``tabular``, ``supernet-cnn``, ``supernet-rnn``, ``trained-cnn``, ``trained-rnn``,
and any kind a plug-in registers), ``train`` (image training recipes), ``lm`` (language-model recipes),
``rnn-supernet``.

>>> cfg = preset("lm/small", **{"model.hidden_size": 64, "model.emb_size": 64})
>>> cfg.model.hidden_size, preset("lm/small").model.hidden_size != 64
(64, True)
>>> "digits" in preset_names("supernet-cnn")
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from nao.errors import ConfigError
from nao.registry import PRESETS


def register_preset(family: str, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Decorator: register a zero-argument factory as preset ``family/name``."""
    return PRESETS.register(f"{family}/{name}")


def preset_names(family: str) -> list[str]:
    """The presets of ``family``, in registration order."""
    return [key.partition("/")[2] for key, _ in PRESETS.items() if key.partition("/")[0] == family]


def preset(name: str, **overrides: Any) -> Any:
    """Preset ``family/name`` with ``overrides`` (dotted keys allowed; ``None`` values ignored)."""
    family, _, short = name.partition("/")
    if name not in PRESETS:
        names = preset_names(family)
        if not names:
            families = sorted({key.partition("/")[0] for key, _ in PRESETS.items()})
            raise ConfigError(f"unknown preset family {family!r}; choose one of: {', '.join(families)}")
        raise ConfigError(f"unknown --preset {short!r} for {family}; choose one of: {', '.join(names)}")
    cfg = PRESETS.get(name)()
    return cfg.override({k: v for k, v in overrides.items() if v is not None})


def setting_layers(config_file: str | Path | None = None, flags: Mapping[str, Any] | None = None,
                   settings: Iterable[str] | Mapping[str, Any] = ()) -> list[tuple[str, Mapping[str, Any]]]:
    """The layers above a preset, in order, each named for messages: the ``--config`` file, the flags
    (dotted overrides), then each ``--set key=value`` (or a mapping of dotted keys); see
    :func:`nao.config.apply_layers`."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if config_file is not None:
        layers.append((f"--config {config_file}", load_config_file(config_file)))
    if flags:
        layers.append(("flags", dict(flags)))
    items = settings.items() if isinstance(settings, Mapping) else [kv for s in settings for kv in parse_set([s]).items()]
    layers += [(f"--set {key}={value}", {key: value}) for key, value in items]
    return layers


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
