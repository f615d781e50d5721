"""NASNet-style CIFAR networks built from a normal and a reduction cell.

Layout (the one NAO, ENAS and DARTS all use, shared with the supernet in
:mod:`nao.nn.skeleton`): a 3x3 conv stem with ``3F`` channels, then three stages of ``N``
normal cells separated by two reduction cells (so ``3N + 2`` cells; channels double and
resolution halves at each reduction), an optional auxiliary head after the second reduction
cell, global average pooling, dropout and a linear classifier.

A cell takes the outputs of the two previous cells (ids 0 and 1). They are first
calibrated to the cell's ``C`` channels: a factorized reduction for input 0 when the
previous cell halved the resolution, otherwise a 1x1 ReLU-conv-BN when the channel count
differs. Node ``i`` (ids 2, 3, ...) is ``op_a(h[input_a]) + op_b(h[input_b])``; in a
reduction cell, ops reading ids 0/1 use stride 2. The cell's output is the concatenation
of the ``concat`` ids along channels (an id 0/1 in a reduction cell's concat is reduced
first). Drop path (scheduled, as in NAO) zeroes whole branches per example during training.

>>> import torch
>>> from nao.nn.network import CellSpec, NetworkConfig, CellNetwork
>>> cell = CellSpec.from_pairs([("sep_conv_3x3", 0), ("skip_connect", 1)] * 2, concat=[2, 3])
>>> net = CellNetwork(cell, cell, NetworkConfig(channels=8, layers=1, auxiliary=False))
>>> net.eval()(torch.zeros(2, 3, 32, 32))[0].shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from nao.config import Config
from nao.nn.ops import FactorizedReduce, ReLUConvBN, init_weights_, make_op
from nao.nn.skeleton import CellSlot, CellStack


class NodeLike(Protocol):
    """Anything with the four fields of a cell node (``nao.spaces.cells.Node`` has them)."""

    input_a: int
    op_a: str
    input_b: int
    op_b: str


@dataclass(frozen=True)
class SimpleNode:
    """A plain cell node: ``op_a(h[input_a]) + op_b(h[input_b])``."""

    input_a: int
    op_a: str
    input_b: int
    op_b: str


@dataclass(frozen=True)
class CellSpec:
    """One cell: its nodes and the ids concatenated as its output."""

    nodes: tuple[SimpleNode, ...]
    concat: tuple[int, ...]

    @classmethod
    def from_nodes(cls, nodes: Sequence[NodeLike], concat: Sequence[int]) -> CellSpec:
        """Copy duck-typed nodes (e.g. from a ``ConvCellSpace``) into a spec, validating ids."""
        spec = cls(
            tuple(SimpleNode(int(n.input_a), str(n.op_a), int(n.input_b), str(n.op_b)) for n in nodes),
            tuple(int(i) for i in concat),
        )
        spec.check()
        return spec

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, int]], concat: Sequence[int]) -> CellSpec:
        """From a DARTS genotype list ``[(op, input), ...]`` (two entries per node)."""
        if len(pairs) % 2:
            raise ValueError(f"a genotype cell needs two (op, input) pairs per node, got {len(pairs)}")
        nodes = [
            SimpleNode(int(pairs[i][1]), pairs[i][0], int(pairs[i + 1][1]), pairs[i + 1][0])
            for i in range(0, len(pairs), 2)
        ]
        return cls.from_nodes(nodes, concat)

    def check(self) -> None:
        """Internal consistency: every input names an earlier id; concat ids exist."""
        if not self.nodes:
            raise ValueError("a cell needs at least one node")
        for i, n in enumerate(self.nodes):
            for which in (n.input_a, n.input_b):
                if not 0 <= which < i + 2:
                    raise ValueError(f"node {i + 2} reads id {which}, but only ids 0..{i + 1} exist")
        if not self.concat or any(not 0 <= c < len(self.nodes) + 2 for c in self.concat):
            raise ValueError(f"concat {list(self.concat)} must name ids 0..{len(self.nodes) + 1}")


@dataclass(frozen=True)
class NetworkConfig(Config):
    """Shape and regularisation of a :class:`CellNetwork`.

    Attributes:
        channels: F, the cell width of the first stage (doubled at each reduction).
        layers: N, normal cells per stage (3N + 2 cells in all).
        num_classes: classifier outputs.
        stem_multiplier: the stem has ``stem_multiplier * channels`` channels.
        auxiliary: attach the auxiliary head after the second reduction cell.
        dropout: dropout probability before the classifier (NAO: 1 - keep_prob).
        drop_path: final drop-path probability of the last cell (scheduled, see
            :meth:`CellNetwork.set_drop_path`).
        in_channels: image channels.
        extra_input_conv: add a 1x1 ReLU-conv-BN on every cell's input 1 after the
            calibration, as the TensorFlow NAO-WS/ENAS child network does ("layer_base");
            only needed to reproduce that code's parameter count.
    """

    channels: int = 36
    layers: int = 6
    num_classes: int = 10
    stem_multiplier: int = 3
    auxiliary: bool = True
    dropout: float = 0.0
    drop_path: float = 0.0
    in_channels: int = 3
    extra_input_conv: bool = False


def drop_path(x: torch.Tensor, drop_prob: torch.Tensor) -> torch.Tensor:
    """Zero whole examples of ``x`` with probability ``drop_prob``, rescaling the rest."""
    keep = 1.0 - drop_prob
    mask = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < keep).to(x.dtype)
    return x * mask / keep


class Cell(nn.Module):
    """One normal or reduction cell (see the module docstring for the wiring)."""

    def __init__(
        self,
        spec: CellSpec,
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        extra_input_conv: bool = False,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.reduction = reduction
        if reduction_prev:
            self.pre0: nn.Module = FactorizedReduce(c_pp, c)
        elif c_pp != c:
            self.pre0 = ReLUConvBN(c_pp, c, 1, 1, 0)
        else:
            self.pre0 = nn.Identity()
        self.pre1: nn.Module = ReLUConvBN(c_p, c, 1, 1, 0) if c_p != c else nn.Identity()
        if extra_input_conv:
            self.pre1 = nn.Sequential(self.pre1, ReLUConvBN(c, c, 1, 1, 0))
        self.ops = nn.ModuleList()
        for node in spec.nodes:
            for src, name in ((node.input_a, node.op_a), (node.input_b, node.op_b)):
                stride = 2 if reduction and src < 2 else 1
                self.ops.append(make_op(name, c, c, stride))
        # Inputs 0/1 that are concatenated in a reduction cell must be brought to the new size.
        self.concat_reduce = nn.ModuleDict(
            {str(i): FactorizedReduce(c, c) for i in spec.concat if reduction and i < 2}
        )
        self.out_channels = c * len(spec.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: torch.Tensor | None) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i, node in enumerate(self.spec.nodes):
            a = self.ops[2 * i](states[node.input_a])
            b = self.ops[2 * i + 1](states[node.input_b])
            if drop_prob is not None:
                a, b = drop_path(a, drop_prob), drop_path(b, drop_prob)
            states.append(a + b)
        outs = [
            self.concat_reduce[str(i)](states[i]) if str(i) in self.concat_reduce else states[i]
            for i in self.spec.concat
        ]
        return torch.cat(outs, dim=1)


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier on the 8x8 feature map after the second reduction cell."""

    def __init__(self, c_in: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8x8 -> 2x2
            nn.Conv2d(c_in, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),  # 2x2 -> 1x1
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))  # (B,768,1,1) -> (B,768)


class CellNetwork(CellStack):
    """The full classifier; ``forward`` returns ``(logits, aux_logits or None)``.

    ``aux_logits`` is only computed in training mode with ``config.auxiliary``.
    """

    def __init__(
        self,
        normal: CellSpec,
        reduce: CellSpec,
        config: NetworkConfig,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.config = config

        def make_cell(slot: CellSlot) -> Cell:
            spec = reduce if slot.reduction else normal
            return Cell(spec, slot.c_pp, slot.c_p, slot.c, slot.reduction, slot.reduction_prev, config.extra_input_conv)

        self._build_body(config.in_channels, config.channels, config.layers, config.stem_multiplier, make_cell)
        self.aux_index = 2 * config.layers + 1  # after the second reduction cell (8x8 on CIFAR)
        # Registered between the cells and the classifier: that order fixes the seeded initialisation.
        self.auxiliary_head = (
            AuxiliaryHead(self.cell_channels(self.aux_index), config.num_classes) if config.auxiliary else None
        )
        self._build_head(config.num_classes, config.dropout)
        # Per-cell drop-path probability; a buffer so changing it never retriggers torch.compile.
        self.register_buffer("drop_prob", torch.zeros(len(self.cells)), persistent=False)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Kaiming-normal conv/linear weights (as NAO does), zero biases, unit BN."""
        init_weights_(self, generator)

    def set_drop_path(self, progress: float) -> None:
        """Schedule drop path: cell ``i`` of ``L`` drops with ``p * (i+1)/L * progress``.

        ``progress`` is the fraction of training done (0..1); NAO scales the drop rate
        linearly with both depth and training progress.
        """
        total = len(self.cells)
        ramp = torch.arange(1, total + 1, dtype=torch.float32) / total
        self.drop_prob.copy_(self.config.drop_path * ramp * float(min(max(progress, 0.0), 1.0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        use_drop = self.training and self.config.drop_path > 0
        drop = [self.drop_prob[i] if use_drop else None for i in range(len(self.cells))]
        with_aux = self.auxiliary_head is not None and self.training
        out, mid = self.run_cells(x, drop, tap=self.aux_index if with_aux else None)
        # The auxiliary head draws no random numbers, so running it after the last cell changes nothing.
        aux = self.auxiliary_head(mid) if self.auxiliary_head is not None and mid is not None else None
        return self.classify(out), aux


def known_cells(name: str) -> tuple[CellSpec, CellSpec]:
    """(normal, reduce) cell specs of a known architecture (:mod:`nao.spaces.known`), without needing its space."""
    from nao.spaces.known import get_known

    k = get_known(name)
    return CellSpec.from_pairs(k.normal, k.normal_concat), CellSpec.from_pairs(k.reduce, k.reduce_concat)


def cells_of(space: Any, arch: Any) -> tuple[CellSpec, CellSpec]:
    """(normal, reduce) specs of ``arch`` in a ``ConvCellSpace`` (``cells`` + ``concat``)."""
    normal, reduce = space.cells(arch)
    return (
        CellSpec.from_nodes(normal, space.concat(normal)),
        CellSpec.from_nodes(reduce, space.concat(reduce)),
    )


def build_network(
    space: Any, arch: Any, config: NetworkConfig, generator: torch.Generator | None = None
) -> CellNetwork:
    """The :class:`CellNetwork` of ``arch`` (an Architecture of a conv cell space)."""
    normal, reduce = cells_of(space, arch)
    return CellNetwork(normal, reduce, config, generator)


def count_parameters(model: nn.Module, include_auxiliary: bool = False) -> int:
    """Trainable parameters; the auxiliary head is excluded by default.

    NAO's and DARTS's published counts both leave the auxiliary head out (it is
    dropped at test time), so this is the number to compare with papers.
    """
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if p.requires_grad and (include_auxiliary or not name.startswith("auxiliary_head"))
    )


def count_flops(model: nn.Module, input_shape: Sequence[int] = (1, 3, 32, 32)) -> int:
    """Multiply-accumulates of one forward pass of a single image, in eval mode.

    Counted with forward hooks on every ``Conv2d`` (``out_elems * C_in/groups * kh * kw``)
    and ``Linear`` (``in * out``); BatchNorm, pooling, ReLU and additions are ignored, and
    the auxiliary head is not run in eval mode. This is the "multi-adds" figure NAS papers
    report (DARTS-V2 at F=36, N=6: about 0.53 G). ``input_shape[0]`` should be 1.
    """
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    device = next(model.parameters()).device
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(*input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total
