"""One configuration base: every settings dataclass of the library derives from :class:`Config`.

A config is a (usually frozen) dataclass with a comment per field. :class:`Config` gives each one the
same plain form and the same strict reader:

- :meth:`Config.to_dict` / :meth:`Config.from_dict`: nested plain dicts (what ``config.json`` holds);
  the reader checks every value against its field's type (and range, where the field declares one
  with :func:`setting`): a wrong type, a section given as a plain value, a fractional count, a
  setting the class lacks -> :class:`~nao.errors.ConfigError` naming the dotted key and what it expects;
- :meth:`Config.override`: dotted overrides (``supernet_train.lr=0.05``), read back strictly;
- :meth:`Config.to_json` / :meth:`Config.from_json`: the JSON round trip.

Presets are the other half (:mod:`nao.presets`): ``preset(name, **overrides)``.

>>> from nao.train.classifier import TrainConfig  # a Config with a nested section (augment)
>>> TrainConfig().override({"augment.cutout": 0, "epochs": 3.0}).augment.cutout
0
>>> TrainConfig.from_json(TrainConfig(epochs=3).to_json()) == TrainConfig(epochs=3)
True
>>> TrainConfig.from_dict({"epochs": 2.5})
Traceback (most recent call last):
...
nao.errors.ConfigError: epochs: expects a whole number, got 2.5
>>> TrainConfig.from_dict({"augment": 3})
Traceback (most recent call last):
...
nao.errors.ConfigError: augment: expects a section of settings (crop_padding, flip, cutout), got 3
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from nao.errors import ConfigError

C = TypeVar("C", bound="Config")


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            min: float | None = None, max: float | None = None) -> Any:  # noqa: A002 - the natural names
    """A dataclass field with a range the reader checks (``min``/``max`` inclusive)."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"min": min, "max": max})


class Config:
    """Base of every configuration dataclass (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        """The plain nested form (``dataclasses.asdict``)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: Any, where: str = "") -> C:
        """``cls`` from its plain form, every value checked; missing settings take the defaults.

        ``where`` is the dotted path of this section inside its parent (for messages).
        """
        return _section(cls, data, where)

    def override(self: C, overrides: Mapping[str, Any] | None = None, **dotted: Any) -> C:
        """A copy with dotted-key ``overrides`` (and keyword ones) applied, read back strictly."""
        changes = {**(overrides or {}), **dotted}
        if not changes:
            return self
        plain = self.to_dict()
        for key, value in changes.items():
            set_dotted(plain, key, value, type(self))
        return type(self).from_dict(plain)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{cls.__name__}: not valid JSON ({e})") from None
        return cls.from_dict(data)


def set_dotted(plain: dict[str, Any], key: str, value: Any, cls: type) -> None:
    """Set ``key`` (dotted) in ``plain``, the plain form of ``cls``: a section accepts only its fields
    (:class:`ConfigError` naming the key and the valid ones), a free-form mapping field any key; a
    section given whole merges into the existing one (so a file can set one key of it)."""
    node: Any = plain
    hint: Any = cls
    parts = key.split(".")
    for i, part in enumerate(parts):
        free = _is_mapping(hint)
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parts[:i])}: not a section, so it has no setting {part!r}")
        if not free and part not in _field_names(hint):
            shown = ".".join(parts[: i + 1])
            raise ConfigError(f"unknown setting {shown!r}; valid here: {', '.join(sorted(_field_names(hint)))}")
        hint = _field_hint(hint, part)
        if i == len(parts) - 1:
            old = node.get(part)
            node[part] = _merge(old, value) if isinstance(old, dict) and isinstance(value, Mapping) else _plain(value)
        else:
            if not isinstance(node.get(part), dict):
                node[part] = {} if free or node.get(part) is None else node[part]
            node = node[part]


def apply_layers(cls: type[C], plain: dict[str, Any], layers: Sequence[tuple[str, Mapping[str, Any]]]) -> C:
    """``cls`` from ``plain`` with each ``(source, dotted overrides)`` layer applied in order, read back
    after every layer so an error names the layer it came from (``--set budget=2.5: budget: expects ...``)."""
    config = _read(cls, plain, "the settings")
    for source, layer in layers:
        for key, value in layer.items():
            try:
                set_dotted(plain, key, value, cls)
            except ConfigError as e:
                raise ConfigError(f"{source}: {e}") from None
        config = _read(cls, plain, source)
    return config


def _read(cls: type[C], plain: Mapping[str, Any], source: str) -> C:
    try:
        return cls.from_dict(plain)  # type: ignore[attr-defined]
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping: ``{"a": {"b": 1}} -> {"a.b": 1}`` (empty sections kept as ``{}``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# -- the strict reader --------------------------------------------------------------------------------
def _section(cls: type, data: Any, where: str) -> Any:
    names = _field_names(cls)
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expects a section of settings ({', '.join(names)}), "
                          f"got {_shown(data)}")
    unknown = sorted(set(data) - set(names))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown setting {key!r}; valid here: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            key = f"{where}.{f.name}" if where else f.name
            values[f.name] = _value(hints[f.name], data[f.name], key)
            _check_range(f, values[f.name], key)
    try:
        return cls(**values)
    except ConfigError as e:  # the class's own cross-field checks (__post_init__)
        raise ConfigError(f"{where}: {e}" if where else str(e)) from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def _value(hint: Any, value: Any, key: str) -> Any:
    """``value`` checked (and converted: lists to tuples, whole floats to ints) against ``hint``."""
    if hint is Any or hint is object:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for a in options:
            try:
                return _value(a, value, key)
            except ConfigError as e:
                errors.append(str(e).split(": expects ", 1)[-1].split(", got ")[0])
        raise ConfigError(f"{key}: expects {' or '.join(errors)}{' or null' if type(None) in args else ''}, "
                          f"got {_shown(value)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expects one of {', '.join(map(repr, args))}, got {_shown(value)}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _section(hint, value, key)
    if origin is tuple or hint is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expects a list, got {_shown(value)}")
        if args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expects a list of {len(args)} values, got {_shown(value)}")
            return tuple(_value(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        return tuple(_value(args[0], v, f"{key}[{i}]") if args else v for i, v in enumerate(value))
    if origin in (list,) or hint is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expects a list, got {_shown(value)}")
        return [_value(args[0], v, f"{key}[{i}]") if args else v for i, v in enumerate(value)]
    if _is_mapping(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expects a mapping of options, got {_shown(value)}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expects true or false, got {_shown(value)}")
        return value
    if hint is int:
        if isinstance(value, float) and not isinstance(value, bool) and math.isfinite(value) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key}: expects a whole number, got {_shown(value)}")
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{key}: expects a number, got {_shown(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expects a string, got {_shown(value)}")
        return value
    return value  # a type this reader does not know: the class checks it


def _check_range(f: dataclasses.Field, value: Any, key: str) -> None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: expects a value >= {lo}, got {_shown(value)}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: expects a value <= {hi}, got {_shown(value)}")


def _field_names(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def _is_mapping(hint: Any) -> bool:
    return typing.get_origin(hint) in (dict, Mapping) or hint is dict


def _field_hint(hint: Any, name: str) -> Any:
    """The declared type of field ``name`` of dataclass ``hint`` (``Any`` inside a free-form mapping);
    ``X | None`` reads as ``X``, so a section that is ``None`` by default still takes dotted keys."""
    if not dataclasses.is_dataclass(hint):
        return Any
    h = typing.get_type_hints(hint).get(name, Any)
    if typing.get_origin(h) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(h) if a is not type(None)]
        h = options[0] if len(options) == 1 else h
    return h


def _merge(old: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for k, v in new.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, Mapping) else _plain(v)
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return copy.deepcopy(value)  # the layer it came from stays as it was


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a section"
    return repr(value) if isinstance(value, str) else json.dumps(value) if isinstance(value, bool | None) else str(value)


__all__ = ["Config", "apply_layers", "flatten", "set_dotted", "setting"]
