"""Shared look of the plots: the Agg backend, colours, saving.

>>> from nao.viz.style import op_colors
>>> len(op_colors(["conv", "pool"]))
2
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt  # noqa: E402

DPI = 130
INPUT_COLOR = "#cfe2f3"
NODE_COLOR = "#fff2cc"
OUTPUT_COLOR = "#d9ead3"
EDGE_COLOR = "#555555"


def op_colors(ops: Sequence[str]) -> dict[str, Any]:
    """A stable pastel colour per op name (by its index in the space's op list)."""
    cmap = plt.get_cmap("Pastel1" if len(ops) <= 9 else "Set3")
    return {op: cmap(i % cmap.N) for i, op in enumerate(ops)}


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (making the folder) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path
