"""Search spaces: the grammar of architectures, used by every other layer.

>>> from nao.spaces import get_space, space_names
>>> "nb201" in space_names()
True
>>> get_space("nb201").length
6
"""

from __future__ import annotations

from nao.registry import SPACES
from nao.spaces.base import Architecture, SearchSpace
from nao.spaces.resolve import resolve_arch


def get_space(name: str) -> SearchSpace:
    """An instance of the registered space ``name`` (raises ConfigError listing valid names)."""
    return SPACES.get(name)()  # the registry imports the space modules on first use


def space_names() -> list[str]:
    """Names of all registered spaces."""
    return SPACES.names()


__all__ = ["Architecture", "SearchSpace", "get_space", "resolve_arch", "space_names"]
