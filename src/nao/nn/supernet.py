"""Weight-sharing supernet for the conv cell spaces (NAO-WS, Luo et al. 2018, sec. 3.4).

One network holds the weights of every architecture of a :class:`~nao.spaces.cells.ConvCellSpace`:
for each cell position, node, input id and op there is one candidate module built from the
project's ops table (:data:`nao.nn.ops.OPS`). A forward pass runs exactly the sampled
architecture: node ``i`` computes ``cand[i, input_a, op_a](h[input_a]) + cand[i, input_b, op_b](h[input_b])``
and nothing else is executed, so gradients only reach the candidates that architecture uses.

Choices, and why:

* Candidates are keyed by (node, input, op), not by branch: the two branches of a node are
  interchangeable (the space's ``key`` ignores their order), so two encodings of the same
  network always get the same weights and the same score.
* A cell's output is the concatenation of its ``concat`` ids followed by a 1x1 ReLU-conv-BN
  back to ``C`` channels whose weight is sliced per id (as the official NAO-WS code does with
  ``WSReLUConvBN``); a fixed width is what lets every architecture share the next cell's weights.
* BatchNorm keeps running statistics, but the supernet is always trained with batch statistics
  and the statistics are architecture-specific; scoring therefore uses either batch statistics
  of the fixed validation batches or per-architecture recalibration
  (:func:`recalibrate_batchnorm`); see :mod:`nao.evaluators.supernet`.

>>> import torch
>>> from nao.spaces import get_space
>>> space = get_space("nao-ws")
>>> net = Supernet(space, SupernetConfig(channels=8, layers=1, in_channels=1), image_size=8)
>>> arch = space.sample(__import__("numpy").random.default_rng(0))
>>> net(torch.zeros(2, 1, 8, 8), net.plan(arch)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nao.config import Config
from nao.errors import ConfigError
from nao.nn.ops import OPS, FactorizedReduce, ReLUConvBN, init_weights_, make_op
from nao.nn.skeleton import CellSlot, CellStack
from nao.spaces.base import Architecture
from nao.spaces.cells import ConvCellSpace

#: Reduction cells in the NASNet layout (after stage 1 and stage 2).
NUM_REDUCTIONS = 2


@dataclass(frozen=True)
class SupernetConfig(Config):
    """Shape of a :class:`Supernet`.

    Attributes:
        channels: F, cell width of the first stage (doubled at each reduction). The official
            NAO-WS CIFAR-10 search uses 20 (NAO_pytorch ``train_search.py``, ``--child_channels``).
            On CPU prefer a multiple of 8: with torch 2.13 (oneDNN, AVX2) supernet training at
            F=4 or F=6 corrupted the heap in a stride-2 1x1 conv's weight gradient, single-threaded.
        layers: N, normal cells per stage (3N + 2 cells in all); official search: 3.
        num_classes: classifier outputs.
        in_channels: image channels.
        stem_multiplier: the stem has ``stem_multiplier * channels`` channels (NASNet/NAO: 3).
        affine: learnable BN scale/shift inside candidate ops (the official WS code uses affine BN).
        dropout: dropout before the classifier (official search: keep_prob 1.0, i.e. none).
    """

    channels: int = 20
    layers: int = 3
    num_classes: int = 10
    in_channels: int = 3
    stem_multiplier: int = 3
    affine: bool = True
    dropout: float = 0.0


@dataclass(frozen=True)
class CellPlan:
    """A sampled cell in index form: per node ``(input_a, op_a, input_b, op_b)`` with op indices."""

    nodes: tuple[tuple[int, int, int, int], ...]
    concat: tuple[int, ...]


@dataclass(frozen=True)
class ArchPlan:
    """What one forward pass runs: the normal and the reduction cell."""

    normal: CellPlan
    reduce: CellPlan


def make_plan(space: ConvCellSpace, arch: Architecture) -> ArchPlan:
    """Translate ``arch`` (validated by the space) into op indices the supernet can run."""
    index = {op: k for k, op in enumerate(space.ops)}
    cells = []
    for nodes in space.cells(arch):
        cells.append(
            CellPlan(
                tuple((n.input_a, index[n.op_a], n.input_b, index[n.op_b]) for n in nodes),
                tuple(space.concat(nodes)),
            )
        )
    return ArchPlan(*cells)


def check_image_size(image_size: int, reductions: int = NUM_REDUCTIONS) -> None:
    """Raise :class:`ConfigError` if ``image_size`` cannot be halved ``reductions`` times."""
    need = 2**reductions
    if image_size < need:
        raise ConfigError(
            f"image size {image_size}x{image_size} is too small for a network with {reductions} reduction cells: "
            f"each halves the resolution, so images need at least {need}x{need} pixels"
        )


class SuperCell(nn.Module):
    """All candidate ops of one cell position; ``forward`` runs the ones a :class:`CellPlan` names."""

    def __init__(
        self,
        num_nodes: int,
        ops: Sequence[str],
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        affine: bool,
    ) -> None:
        super().__init__()
        self.num_nodes, self.num_ops, self.c, self.reduction = num_nodes, len(ops), c, reduction
        self.out_channels = c  # the combine conv maps any concat back to C: what lets cells share weights
        if reduction_prev:
            self.pre0: nn.Module = FactorizedReduce(c_pp, c, affine)
        elif c_pp != c:
            self.pre0 = ReLUConvBN(c_pp, c, 1, 1, 0, affine)
        else:
            self.pre0 = nn.Identity()
        self.pre1: nn.Module = ReLUConvBN(c_p, c, 1, 1, 0, affine) if c_p != c else nn.Identity()
        # Flat list indexed by _offsets[node] + input * num_ops + op; node i reads ids 0..i+1.
        self.candidates = nn.ModuleList()
        self._offsets: list[int] = []
        for node in range(num_nodes):
            self._offsets.append(len(self.candidates))
            for inp in range(node + 2):
                stride = 2 if reduction and inp < 2 else 1
                for op in ops:
                    self.candidates.append(make_op(op, c, c, stride, affine))
        # Cell inputs 0/1 concatenated in a reduction cell must be brought to the new size.
        self.concat_reduce = nn.ModuleList([FactorizedReduce(c, c, affine) for _ in range(2)] if reduction else [])
        self.combine_weight = nn.Parameter(torch.empty(c, (num_nodes + 2) * c, 1, 1))
        self.combine_bn = nn.BatchNorm2d(c, affine=affine)

    def candidate(self, node: int, inp: int, op: int) -> nn.Module:
        """The shared module for op ``op`` of node ``node`` reading id ``inp``."""
        return self.candidates[self._offsets[node] + inp * self.num_ops + op]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, plan: CellPlan) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i, (ia, oa, ib, ob) in enumerate(plan.nodes):
            states.append(self.candidate(i, ia, oa)(states[ia]) + self.candidate(i, ib, ob)(states[ib]))
        outs = [self.concat_reduce[j](states[j]) if self.reduction and j < 2 else states[j] for j in plan.concat]
        c = self.c
        # Slice the combine conv's input channels to the concatenated ids: (C, (B+2)*C) -> (C, len(concat)*C).
        w = self.combine_weight.view(c, self.num_nodes + 2, c)[:, list(plan.concat)].reshape(c, -1, 1, 1)
        return self.combine_bn(F.conv2d(F.relu(torch.cat(outs, dim=1)), w))


class Supernet(CellStack):
    """NASNet-layout network (stem, 3 stages of N cells, 2 reduction cells) with shared weights.

    Args:
        space: the cell space (``nao-ws``, ``nao`` or ``darts``); every op must be in ``OPS``.
        config: widths and depth.
        image_size: if given, checked against the reductions (clear error if too small).
        generator: seeds the weight initialisation.
    """

    def __init__(
        self,
        space: ConvCellSpace,
        config: SupernetConfig,
        image_size: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(space, ConvCellSpace):
            raise ConfigError(f"the supernet needs a conv cell space (nao-ws, nao, darts), got {space.name!r}")
        missing = [op for op in space.ops if op not in OPS]
        if missing:
            raise ConfigError(f"space {space.name!r} uses ops without a module in nao.nn.ops.OPS: {missing}")
        if config.channels < 2 or config.layers < 1:
            raise ConfigError(f"supernet needs channels >= 2 and layers >= 1, got {config.channels}, {config.layers}")
        if image_size is not None:
            check_image_size(image_size)
        self.space, self.config = space, config

        def make_cell(slot: CellSlot) -> SuperCell:
            return SuperCell(space.num_nodes, space.ops, slot.c_pp, slot.c_p, slot.c, slot.reduction,
                             slot.reduction_prev, config.affine)

        self._build_body(config.in_channels, config.channels, config.layers, config.stem_multiplier, make_cell)
        self._build_head(config.num_classes, config.dropout)
        self._plans: dict[tuple[int, ...], ArchPlan] = {}
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Kaiming-normal conv/linear weights (as NAO), zero biases, unit BN."""
        init_weights_(self, generator)
        for cell in self.cells:
            nn.init.kaiming_normal_(cell.combine_weight, mode="fan_in", nonlinearity="relu", generator=generator)

    def plan(self, arch: Architecture) -> ArchPlan:
        """The (cached) :class:`ArchPlan` of ``arch``."""
        key = self.space.key(arch)
        if key not in self._plans:
            self._plans[key] = make_plan(self.space, self.space.canonical(arch))
        return self._plans[key]

    def forward(self, x: torch.Tensor, plan: ArchPlan | Architecture) -> torch.Tensor:
        if isinstance(plan, Architecture):
            plan = self.plan(plan)
        out, _ = self.run_cells(x, self.per_cell(plan.normal, plan.reduce))
        return self.classify(out)

    def batchnorms(self) -> list[nn.BatchNorm2d]:
        """Every BatchNorm layer (cached: switching their modes is on the scoring hot path)."""
        if not hasattr(self, "_bn_cache"):
            self._bn_cache = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        return self._bn_cache

    def path_modules(self, plan: ArchPlan) -> list[nn.Module]:
        """The modules a forward pass of ``plan`` runs (stem, cell pre-processing, chosen ops, ...)."""
        out: list[nn.Module] = [self.stem, self.classifier]
        for cell, cp in zip(self.cells, self.per_cell(plan.normal, plan.reduce)):
            out += [cell.pre0, cell.pre1, cell.combine_bn]
            for n, (ia, oa, ib, ob) in enumerate(cp.nodes):
                out += [cell.candidate(n, ia, oa), cell.candidate(n, ib, ob)]
            if cell.reduction:
                out += [cell.concat_reduce[j] for j in cp.concat if j < 2]
        return out


def set_batchnorm_training(bns: Iterable[nn.BatchNorm2d], training: bool) -> None:
    """Flip only the BN layers' mode flags (``Module.train()`` walks the whole supernet tree, slowly)."""
    for bn in bns:
        bn.training = training


@torch.no_grad()
def recalibrate_batchnorm(model: Supernet, plan: ArchPlan, batches: Sequence[torch.Tensor]) -> None:
    """Reset BN running statistics on ``plan``'s path and re-estimate them on ``batches``.

    Running statistics accumulated while training mix every architecture of the pool; this
    replaces them by the exact (cumulative) average over the given, fixed batches for this
    architecture only, so that eval-mode scoring is both architecture-specific and
    independent of how the validation set is chunked. Leaves those BN layers in eval mode
    (using the new statistics); other modules' modes are untouched.
    """
    bns = list({id(m): m for mod in model.path_modules(plan) for m in mod.modules() if isinstance(m, nn.BatchNorm2d)}.values())
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average = plain mean over the batches
    set_batchnorm_training(bns, True)
    try:
        for x in batches:
            model(x, plan)
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
        set_batchnorm_training(bns, False)
