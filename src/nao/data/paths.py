"""Where datasets live: ``$NAO_DATA`` if set, else ``../shared/data`` beside the checkout.

>>> import os
>>> os.environ["NAO_DATA"] = "/tmp/somewhere"
>>> str(data_root())
'/tmp/somewhere'
>>> del os.environ["NAO_DATA"]
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """The data directory: ``$NAO_DATA``, else ``<repo>/../shared/data``, else ``./data``."""
    env = os.environ.get("NAO_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]  # src/nao/data/paths.py -> repo root
    shared = repo.parent / "shared" / "data"
    return shared if shared.exists() else Path("data")
