"""The operation table of the conv cell spaces: ``OPS[name](C_in, C_out, stride, affine)``.

Every op of the ``nao``, ``nao-ws`` and ``darts`` cell presets (and DARTS's ``none``) is
one entry. A constructor returns an ``nn.Module`` mapping ``(B, C_in, H, W)`` to
``(B, C_out, ceil(H/stride), ceil(W/stride))``, so a cell (or a weight-sharing supernet)
can put any op on any edge. ``affine=False`` builds BatchNorms without learnable scale and
shift (what DARTS-style supernets use).

Conventions, taken from the official NAO and DARTS code (renqianluo/NAO_pytorch
``operations.py``, quark0/darts ``cnn/operations.py``):

* Every convolution is ``ReLU -> conv -> BN`` (pre-activation), without bias.
* ``sep_conv_kxk`` is that block twice (depthwise + pointwise each time); ``dil_conv_kxk``
  is one dilated depthwise + pointwise block.
* ``conv_1xk_kx1`` is a ``1xk`` then a ``kx1`` block; with stride 2 the first strides
  along the width and the second along the height.
* Pooling has no parameters; average pooling ignores the padding. The even ``2x2``
  pools pad one row/column at the bottom/right ("same" padding) so that stride 1
  keeps the size.
* ``identity``/``skip_connect`` with stride 2 is a factorized reduction (two offset
  strided 1x1 convs, concatenated) because a plain identity cannot halve the size.
* Parameter-free ops followed by a channel change get a 1x1 ``ReLU-conv-BN`` so the
  contract ``C_in -> C_out`` holds for every entry (cells calibrate inputs to ``C``
  first, so the cells of a fixed network never need it).

>>> import torch
>>> from nao.nn.ops import OPS
>>> op = OPS["sep_conv_3x3"](16, 16, 2, True)
>>> tuple(op(torch.zeros(2, 16, 32, 32)).shape)
(2, 16, 16, 16)
>>> sorted(OPS)[:3]
['avg_pool_2x2', 'avg_pool_3x3', 'avg_pool_5x5']
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

OpFactory = Callable[[int, int, int, bool], nn.Module]


class ReLUConvBN(nn.Module):
    """``ReLU -> Conv2d(k, stride, padding) -> BN``; the basic pre-activation conv block."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
        affine: bool = True,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    """``ReLU -> depthwise k x k (dilated) -> pointwise 1x1 -> BN``."""

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, dilation: int, affine: bool
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked depthwise-separable blocks; only the first one strides."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, affine: bool) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.op = nn.Sequential(
            DilConv(c_in, c_in, kernel_size, stride, pad, 1, affine),
            DilConv(c_in, c_out, kernel_size, 1, pad, 1, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedConv(nn.Module):
    """A ``1xk`` then a ``kx1`` ReLU-conv-BN block (NAO's ``conv 1xk+kx1``)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, affine: bool) -> None:
        super().__init__()
        pad = k // 2
        self.op = nn.Sequential(
            ReLUConvBN(c_in, c_out, (1, k), (1, stride), (0, pad), affine),
            ReLUConvBN(c_out, c_out, (k, 1), (stride, 1), (pad, 0), affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing every other pixel.

    Two 1x1 stride-2 convs, the second on the input shifted by one pixel, each giving
    half of the output channels; then BN. Used for stride-2 identities and to bring the
    cell input from before a reduction cell to the new resolution.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        half = c_out // 2
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, half, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - half, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # Pad bottom/right before shifting so odd sizes give ceil(H/2) on both paths.
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


class Pool(nn.Module):
    """Max or average pooling with "same" padding (average ignores padded cells)."""

    def __init__(self, kind: str, kernel_size: int, stride: int) -> None:
        super().__init__()
        if kind not in ("max", "avg"):
            raise ValueError(f"pool kind must be 'max' or 'avg', got {kind!r}")
        self.kind, self.kernel_size, self.stride = kind, kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        if k % 2 == 1:
            if self.kind == "max":
                return F.max_pool2d(x, k, s, k // 2)
            return F.avg_pool2d(x, k, s, k // 2, count_include_pad=False)
        # Even kernel: pad (k-1) at the bottom/right only, like TensorFlow's SAME.
        pad = (0, k - 1, 0, k - 1)
        if self.kind == "max":
            return F.max_pool2d(F.pad(x, pad, value=float("-inf")), k, s)
        summed = F.avg_pool2d(F.pad(x, pad), k, s, divisor_override=1)
        ones = torch.ones_like(x[:1, :1])
        count = F.avg_pool2d(F.pad(ones, pad), k, s, divisor_override=1)
        return summed / count

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel_size={self.kernel_size}, stride={self.stride}"


class Identity(nn.Module):
    """Returns its input (a named class so cells and counters can tell it apart)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """DARTS's ``none``: zeros of the output shape (only meaningful inside supernets)."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s = self.stride
        return x.new_zeros(b, self.c_out, -(-h // s), -(-w // s))


def _with_channels(op: nn.Module, c_in: int, c_out: int, affine: bool) -> nn.Module:
    """Append a 1x1 ReLU-conv-BN to a channel-preserving op when ``c_in != c_out``."""
    if c_in == c_out:
        return op
    return nn.Sequential(op, ReLUConvBN(c_in, c_out, 1, 1, 0, affine))


def _identity(c_in: int, c_out: int, stride: int, affine: bool) -> nn.Module:
    if stride == 2:
        return FactorizedReduce(c_in, c_out, affine)
    if stride != 1:
        raise ValueError(f"identity supports stride 1 or 2, got {stride}")
    return Identity() if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, affine)


def _pool(kind: str, k: int) -> OpFactory:
    return lambda c_in, c_out, stride, affine: _with_channels(Pool(kind, k, stride), c_in, c_out, affine)


def _conv(k: int) -> OpFactory:
    return lambda c_in, c_out, stride, affine: ReLUConvBN(c_in, c_out, k, stride, k // 2, affine)


def _factorized_conv(k: int) -> OpFactory:
    return lambda c_in, c_out, stride, affine: FactorizedConv(c_in, c_out, k, stride, affine)


def _sep_conv(k: int) -> OpFactory:
    return lambda c_in, c_out, stride, affine: SepConv(c_in, c_out, k, stride, affine)


def _dil_conv(k: int) -> OpFactory:
    # Dilation 2 with padding k-1 keeps the size, as in DARTS.
    return lambda c_in, c_out, stride, affine: DilConv(c_in, c_out, k, stride, k - 1, 2, affine)


#: name -> constructor ``(C_in, C_out, stride, affine) -> nn.Module``.
OPS: dict[str, OpFactory] = {
    # shared / DARTS names
    "none": lambda c_in, c_out, stride, affine: Zero(c_out, stride),
    "identity": _identity,
    "skip_connect": _identity,
    "max_pool_3x3": _pool("max", 3),
    "avg_pool_3x3": _pool("avg", 3),
    "sep_conv_3x3": _sep_conv(3),
    "sep_conv_5x5": _sep_conv(5),
    "sep_conv_7x7": _sep_conv(7),
    "dil_conv_3x3": _dil_conv(3),
    "dil_conv_5x5": _dil_conv(5),
    # NAO's large space (NAONet-A)
    "conv_1x1": _conv(1),
    "conv_3x3": _conv(3),
    "conv_1x3_3x1": _factorized_conv(3),
    "conv_1x7_7x1": _factorized_conv(7),
    "max_pool_2x2": _pool("max", 2),
    "max_pool_5x5": _pool("max", 5),
    "avg_pool_2x2": _pool("avg", 2),
    "avg_pool_5x5": _pool("avg", 5),
}

#: Ops without parameters at stride 1 and ``C_in == C_out`` (with stride 2 an identity becomes
#: a factorized reduction, which has parameters).
PARAMETER_FREE = frozenset(
    {"none", "identity", "skip_connect"} | {n for n in OPS if "pool" in n}
)


def make_op(name: str, c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    """``OPS[name](c_in, c_out, stride, affine)`` with a clear error for unknown names."""
    try:
        factory = OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None
    return factory(c_in, c_out, stride, affine)


def init_weights_(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """NAO's initialisation, in place: Kaiming-normal (fan-in, ReLU) conv and linear weights,
    zero biases, unit scale and zero shift for affine BatchNorm."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
