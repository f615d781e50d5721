"""The NASNet network skeleton shared by :class:`~nao.nn.network.CellNetwork` and :class:`~nao.nn.supernet.Supernet`.

Layout (NAO, ENAS and DARTS all use it): a 3x3 conv + BN stem with ``stem_multiplier * F``
channels, then three stages of ``N`` cells separated by two reduction cells (``3N + 2`` cells;
the cell width doubles at each reduction), global average pooling, dropout and a linear
classifier. Each cell reads the outputs of the two previous cells.

What differs between the two networks is only the cell module (a fixed cell, or every
candidate op of a cell position) and what each cell is told per forward pass (a drop-path
probability, or the sampled architecture's cell plan); the subclass supplies both. Building
happens in two calls, :meth:`CellStack._build_body` then :meth:`CellStack._build_head`, so a
subclass can register modules in between (the auxiliary head): registration order fixes both
the parameter order and the order in which seeded initialisation draws, so it must not change.

>>> from torch import nn
>>> class Plain(nn.Module):
...     def __init__(self, slot: CellSlot) -> None:
...         super().__init__()
...         self.out_channels = slot.c
...         self.conv = nn.Conv2d(slot.c_p, slot.c, 1, stride=2 if slot.reduction else 1)
...     def forward(self, s0, s1, arg):
...         return self.conv(s1)
>>> class Net(CellStack):
...     def __init__(self) -> None:
...         super().__init__()
...         self._build_body(in_channels=3, channels=4, layers=1, stem_multiplier=2, make_cell=Plain)
...         self._build_head(num_classes=10, dropout=0.0)
>>> net = Net()
>>> [c.out_channels for c in net.cells], net.reduction_ids
([4, 8, 8, 16, 16], (1, 3))
>>> net.classify(net.run_cells(torch.zeros(2, 3, 8, 8), [None] * 5)[0]).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class CellSlot:
    """One cell's place in the stack: its index and the widths it connects.

    Attributes:
        index: position among the ``3N + 2`` cells.
        c_pp, c_p: channels of the outputs of the cell two back and one back (inputs 0 and 1).
        c: this cell's width ``C`` (``F``, ``2F`` or ``4F`` by stage).
        reduction: this cell halves the resolution.
        reduction_prev: the previous cell halved it (input 0 needs a factorized reduction).
    """

    index: int
    c_pp: int
    c_p: int
    c: int
    reduction: bool
    reduction_prev: bool


class CellStack(nn.Module):
    """Stem, ``3N + 2`` cells and a pooled linear head; subclasses choose the cells (module docstring).

    A cell module must have an ``out_channels`` attribute and be called as
    ``cell(s0, s1, arg)`` with the outputs of the two previous cells and its per-pass argument.
    """

    stem: nn.Sequential
    cells: nn.ModuleList
    reduction_ids: tuple[int, int]
    pool: nn.AdaptiveAvgPool2d
    dropout: nn.Dropout
    classifier: nn.Linear

    def _build_body(
        self,
        in_channels: int,
        channels: int,
        layers: int,
        stem_multiplier: int,
        make_cell: Callable[[CellSlot], nn.Module],
    ) -> None:
        """Register the stem and the cells (``make_cell`` builds the cell of each slot)."""
        c = channels
        c_stem = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        self.reduction_ids = (layers, 2 * layers + 1)
        self.cells = nn.ModuleList()
        c_pp, c_p, reduction_prev = c_stem, c_stem, False
        for i in range(3 * layers + 2):
            reduction = i in self.reduction_ids
            if reduction:
                c *= 2
            cell = make_cell(CellSlot(i, c_pp, c_p, c, reduction, reduction_prev))
            self.cells.append(cell)
            c_pp, c_p, reduction_prev = c_p, int(cell.out_channels), reduction

    def _build_head(self, num_classes: int, dropout: float) -> None:
        """Register global pooling, dropout and the classifier on the last cell's output."""
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.cell_channels(len(self.cells) - 1), num_classes)

    def cell_channels(self, index: int) -> int:
        """Channels of cell ``index``'s output."""
        return int(self.cells[index].out_channels)

    def per_cell(self, normal: T, reduce: T) -> list[T]:
        """``reduce`` for each reduction cell and ``normal`` for the others, in cell order."""
        return [reduce if i in self.reduction_ids else normal for i in range(len(self.cells))]

    def run_cells(
        self, x: torch.Tensor, cell_args: Sequence[Any], tap: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stem and cells on ``x``, cell ``i`` given ``cell_args[i]``.

        Returns the last cell's output and, if ``tap`` is given, cell ``tap``'s output (else None).
        """
        tapped = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, cell_args[i])
            if i == tap:
                tapped = s1
        return s1, tapped

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from the last cell's output: pool, dropout, linear."""
        return self.classifier(self.dropout(self.pool(features).flatten(1)))  # (B,C,1,1) -> (B,C)
