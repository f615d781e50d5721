"""Every rule of resuming a run, in one place: what ``nao search --resume DIR`` and
:func:`nao.runs.resume` may change, and what conflicts with a resume.

A resumed run keeps its settings (``config.json``): only how far it goes and where it runs may
change, i.e. :data:`RUNTIME_KEYS`, ``max_cost`` and what the kind lists in ``resumable_changes``
(``budget`` for most kinds; not for a supernet, whose learning-rate schedule is laid out for its
budget). ``--out`` other than the run directory, another ``--preset`` or another kind conflict.
Changing the executor drops the old executor's options (they belong to it).

>>> check_request("runs/a", {"kind": "tabular", "preset": "default"}, kind="tabular")
>>> check_request("runs/a", {"kind": "tabular", "preset": "default"}, kind="trained-cnn")
Traceback (most recent call last):
...
nao.errors.ConfigError: --resume runs/a: the run is a tabular search, not trained-cnn
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nao.config import flatten
from nao.errors import ConfigError

#: Settings every resumed run may change: where it runs and what bounds its compute.
RUNTIME_KEYS = ("executor", "device", "data_dir", "max_cost")


def check_request(where: str | Path, saved: Mapping[str, Any], kind: str | None = None, preset: str | None = None,
                  out: str | Path | None = None) -> None:
    """Refuse a resume of the run in ``where`` (its ``config.json`` is ``saved``) that names another
    ``kind``, another ``preset`` or another run directory ``out``."""
    if out is not None and Path(out).resolve() != Path(where).resolve():
        raise ConfigError(f"--resume {where}: --out {out} conflicts; a resumed run continues in its own directory")
    if kind is not None and kind != saved.get("kind"):
        raise ConfigError(f"--resume {where}: the run is a {saved.get('kind')} search, not {kind}")
    if preset is not None and preset != saved.get("preset"):
        raise ConfigError(f"--resume {where}: --preset {preset} conflicts with the run's {saved.get('preset')}")


def may_change(resumable: tuple[str, ...]) -> tuple[str, ...]:
    """The top-level settings a resume of a kind with ``resumable_changes`` may change."""
    return (*RUNTIME_KEYS, *resumable)


def reset_executor(plain: dict[str, Any], saved: Mapping[str, Any], given: set[str]) -> None:
    """Another executor than the run's: the old one's options do not apply (those ``given`` now stay)."""
    new, old = plain.get("executor"), saved.get("executor")
    if not isinstance(new, dict) or not isinstance(old, Mapping) or new.get("name") == old.get("name"):
        return
    for key in list(new):
        if key != "name" and f"executor.{key}" not in given:
            new[key] = None


def refuse_changes(where: str | Path, saved: Mapping[str, Any], resolved: Mapping[str, Any],
                   allowed: tuple[str, ...] = RUNTIME_KEYS) -> None:
    """Every setting of ``resolved`` outside ``allowed`` must equal ``saved``'s; raises
    :class:`ConfigError` naming the first dotted setting that differs."""
    # Compared in their JSON form (tuples and lists alike), as config.json holds them.
    old, new = flatten(json.loads(json.dumps(saved))), flatten(json.loads(json.dumps(resolved)))
    for key in sorted(set(old) | set(new)):
        if key == "kind" or key.split(".")[0] in allowed:
            continue
        if old.get(key) != new.get(key):
            raise ConfigError(f"--resume {where}: {key} {_shown(new.get(key))} conflicts with the run's "
                              f"{_shown(old.get(key))} (a resumed run keeps its settings)")


def refuse_extending_finished(where: str | Path, saved: Mapping[str, Any], resolved: Mapping[str, Any]) -> None:
    """A finished run (its final training done) cannot go further: a resume that raises ``budget`` or
    ``max_cost`` would need a new search and a new final training, so it is refused instead of ignored."""
    for key in ("budget", "max_cost"):
        old, new = saved.get(key), resolved.get(key)
        if old is not None and new is not None and new > old:
            raise ConfigError(f"--resume {where}: the run is finished (final training done); {key} {new} would need "
                              f"a new search and final training: start a new run with --out")


def _shown(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)
