"""The NAS-Bench-201 network: its macro skeleton around one searched cell.

Facts from the benchmark's paper and code (Dong & Yang, ICLR 2020, "NAS-Bench-201"; D-X-Y/AutoDL-Projects
``TinyNetwork``): a 3x3 conv + BN stem to ``C = 16`` channels, then three stages of ``N = 5`` copies of the
cell at ``C``, ``2C``, ``4C`` channels, separated by two residual reduction blocks (a ResNet basic block
with stride 2: ``ReLU-conv3x3/2-BN``, ``ReLU-conv3x3-BN``, and a shortcut of 2x2 average pooling + a 1x1
conv), then BN, ReLU, global average pooling and a linear classifier. Inside the cell node ``j`` is the sum
of ``op_ij(node_i)`` over ``i < j``; the cell's output is node 3. Convolutions are ``ReLU -> conv -> BN``,
``avg_pool_3x3`` excludes padding, ``none`` outputs zeros.

The parameter count matches the benchmark's ``params_m`` column (tests/test_nb201_network.py checks it on
table rows), which pins the skeleton down.

>>> import torch
>>> from nao.spaces.nb201 import NB201Space
>>> space = NB201Space()
>>> arch = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
>>> net = NB201Network(space, arch, num_classes=10, generator=torch.Generator().manual_seed(0))
>>> round(sum(p.numel() for p in net.parameters()) / 1e6, 3)  # the table's params_m for this cell: 1.0735
1.073
>>> tuple(net(torch.zeros(2, 3, 32, 32)).shape)
(2, 10)
"""

from __future__ import annotations

import torch
from torch import nn

from nao.nn.ops import ReLUConvBN
from nao.spaces.base import Architecture
from nao.spaces.nb201 import NB201_EDGES, NB201_OPS, NB201Space


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like its input (kept in the graph so a cut cell stays rankable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def nb201_op(name: str, c: int) -> nn.Module:
    """One NB201 edge operation at ``c`` channels, stride 1."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown nb201 op {name!r}; ops: {', '.join(NB201_OPS)}")


class NB201Cell(nn.Module):
    """Four nodes, six edges (``NB201_EDGES`` order); returns node 3."""

    def __init__(self, tokens: tuple[int, ...], c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(nb201_op(NB201_OPS[t], c) for t in tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, 4):
            nodes.append(sum(self.edges[i](nodes[src]) for i, (dst, src) in enumerate(NB201_EDGES) if dst == node))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's reduction block: a stride-2 ResNet basic block from ``c_in`` to ``c_out`` channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    """The NAS-Bench-201 classifier for one cell; ``forward`` maps ``(B, 3, H, W)`` to logits ``(B, classes)``.

    Args:
        space: the NB201 space (checks ``arch``).
        arch: the cell.
        num_classes: classifier outputs (10 for CIFAR-10).
        channels: ``C``, the first stage's width (16 in the benchmark).
        cells_per_stage: ``N`` (5 in the benchmark).
        in_channels: image channels.
        generator: seeds the initialisation (PyTorch's default initialisers, drawn from it), so two
            networks built with equally seeded generators are identical.
    """

    def __init__(self, space: NB201Space, arch: Architecture, num_classes: int = 10, channels: int = 16,
                 cells_per_stage: int = 5, in_channels: int = 3, generator: torch.Generator | None = None) -> None:
        super().__init__()
        space.check(arch)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(arch.tokens, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default initialisation, drawn from ``generator`` (no global RNG)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # kaiming_uniform_(a=sqrt(5)) is what Conv2d/Linear.reset_parameters do; done here with a generator.
                nn.init.kaiming_uniform_(m.weight, a=5**0.5, generator=generator)
                if m.bias is not None:
                    fan_in = m.weight[0].numel()
                    bound = 1 / fan_in**0.5
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))  # (B, 3, H, W) -> (B, 4C, H/4, W/4)
        x = self.pool(self.head(x)).flatten(1)  # -> (B, 4C)
        return self.classifier(x)
