"""Device choices in one place: ``--device`` resolution, bf16 autocast, out-of-memory detection.

Library code never assumes a device; the CUDA fast paths are opt-in and decided here, once.

>>> resolve_device("cpu"), resolve_device(None)
('cpu', 'cpu')
>>> with autocast("cpu", bf16=False):
...     pass
>>> is_oom(MemoryError()), is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")), is_oom(ValueError())
(True, True, False)
"""

from __future__ import annotations

import contextlib

import torch

from nao.errors import ConfigError

#: The exception PyTorch raises when a device runs out of memory.
OutOfMemoryError: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def resolve_device(name: str | None) -> str:
    """``--device``: ``auto`` -> cuda if available else cpu; an absent CUDA device is a :class:`ConfigError`
    (in a worker process too: its torch may see no GPU although the driver's does)."""
    name = name or "cpu"
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (this process's torch sees no GPU)")
    return name


def autocast(device_type: str, bf16: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device_type`` when ``bf16`` is on; otherwise no context at all.

    Not a disabled ``torch.autocast``: with torch 2.13 on CPU, a disabled bf16 autocast context around the
    supernet's backward pass corrupted the heap in single-threaded runs.
    """
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


def is_oom(e: BaseException) -> bool:
    """Whether ``e`` says the device (or the host) ran out of memory."""
    if isinstance(e, MemoryError | OutOfMemoryError):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def short_error(e: BaseException) -> str:
    """The first line of ``e`` (at most 200 characters), or its type's name."""
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


__all__ = ["OutOfMemoryError", "autocast", "is_oom", "resolve_device", "short_error"]
