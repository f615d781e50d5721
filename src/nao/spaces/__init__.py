"""Search spaces: the grammar of architectures, used by every other layer.

>>> from nao.spaces import get_space, space_names
>>> "nb201" in space_names()
True
>>> get_space("nb201").length
6
"""

from __future__ import annotations

import importlib

from nao.registry import SPACES
from nao.spaces.base import Architecture, SearchSpace

# Modules that register spaces; imported lazily so `import nao` stays cheap.
_SPACE_MODULES = ("nao.spaces.nb201", "nao.spaces.cells", "nao.spaces.rnn")


def _load_all() -> None:
    for mod in _SPACE_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a space module not written yet is simply absent
            if e.name != mod:
                raise


def get_space(name: str) -> SearchSpace:
    """An instance of the registered space ``name`` (raises ConfigError listing valid names)."""
    _load_all()
    return SPACES.get(name)()


def space_names() -> list[str]:
    """Names of all registered spaces."""
    _load_all()
    return SPACES.names()


__all__ = ["Architecture", "SearchSpace", "get_space", "space_names"]
