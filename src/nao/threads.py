"""Torch intra-op thread count for a block of code.

>>> import torch
>>> before = torch.get_num_threads()
>>> with torch_threads(1):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count.

    ``None`` or ``n <= 0`` leaves torch's setting alone. Small models (the controller, a
    digits supernet) are fastest on one thread; callers choose.
    """
    if n is None or n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str | None) -> str:
    """``--device``: ``auto`` -> cuda if available else cpu; an absent CUDA device is a ConfigError.

    >>> resolve_device(None)
    'cpu'
    """
    from nao.errors import ConfigError

    name = name or "cpu"
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    return name
