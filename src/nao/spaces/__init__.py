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
from nao.spaces.resolve import resolve_arch

# Modules that register spaces; imported lazily so `import nao` stays cheap.
_SPACE_MODULES = ("nao.spaces.nb201", "nao.spaces.cells", "nao.spaces.rnn")


def _load_all() -> None:
    for mod in _SPACE_MODULES:
        importlib.import_module(mod)  # a listed module that is missing is an error, not an absence


def get_space(name: str) -> SearchSpace:
    """An instance of the registered space ``name`` (raises ConfigError listing valid names)."""
    _load_all()
    return SPACES.get(name)()


def space_names() -> list[str]:
    """Names of all registered spaces."""
    _load_all()
    return SPACES.names()


__all__ = ["Architecture", "SearchSpace", "get_space", "resolve_arch", "space_names"]
