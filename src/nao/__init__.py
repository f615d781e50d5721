"""nao: Neural Architecture Optimization (Luo, Tian, Qin, Chen, Liu; NeurIPS 2018).

``nao.load(path)`` returns the model a search or training found (:func:`nao.deploy.inference.load`); it is
imported on first use, so ``import nao`` stays light (no torch).

>>> import nao
>>> nao.__version__
'0.1.0'
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    # Lazy: nao.deploy imports torch, which `import nao` (and the CLI's startup) must not pay for.
    if name == "load":
        from nao.deploy import load

        return load
    raise AttributeError(f"module 'nao' has no attribute {name!r}")
