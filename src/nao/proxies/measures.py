"""Zero-cost proxies: what an untrained network says about its architecture, from one minibatch.

Each proxy maps ``(network, ProxyBatch)`` to one float (higher = predicted better, except where a proxy's
docstring says otherwise: none do today). Definitions follow the papers and the reference implementations
in NASLib / NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS'22 D&B), whose NB201 CIFAR-10 values we
compare with in BENCHMARKS.md:

=========  ===================================================================================  =============
name       score                                                                                passes
=========  ===================================================================================  =============
params     trainable parameters, millions                                                       none
flops      multiply-accumulates of conv and linear layers for one input, millions               1 fwd, batch 1
synflow    sum |theta * dR/dtheta|, R = sum of outputs for an all-ones input, |weights|, no BN,  1 fwd+bwd,
           float64 (Tanaka et al., NeurIPS'20)                                                  batch 1
naswot     log|det K|, K the Hamming-agreement kernel of the ReLUs' binary codes over the        1 fwd
           batch (Mellor et al., ICML'21)
jacov      -sum(log(v+k) + 1/(v+k)), v the eigenvalues of the correlation of per-example input   1 fwd+bwd
           Jacobians, k = 1e-5 (Mellor et al., 2020 v1)
snip       sum |theta * dL/dtheta| over conv/linear weights, L the cross-entropy (Lee et al.)     1 fwd+bwd
grad_norm  sum over conv/linear layers of ||dL/dW||_2 (Abdelfattah et al., ICLR'21)              1 fwd+bwd
zico       sum over conv/linear layers of log(sum_theta mean|g| / std(g)), g the per-half-       2 fwd+bwd of
           batch gradients (Li et al., ICLR'23; gradients zeroed between halves, as the paper    half a batch
           defines them; the authors' script accumulates them)
=========  ===================================================================================  =============

Every network is in training mode (batch statistics), as in NASLib. A network with no parametric path from
input to output (an NB201 cell cut by ``none`` edges) or degenerate gradients still gets a defined score:
the proxy's :data:`FLOOR` (below every real score), never NaN.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
>>> batch = ProxyBatch(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 2)
>>> round(score(net, batch, ["params"])["params"] * 1e6)
18
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nao.errors import NaoError

#: The defined score of a degenerate network (no signal through it): below every real score of that proxy.
FLOOR = -1.0e12


@dataclass(frozen=True)
class ProxyBatch:
    """One minibatch of the run's data: float ``inputs`` ``(B, ...)`` and integer class ``targets`` ``(B,)``."""

    inputs: torch.Tensor
    targets: torch.Tensor


ProxyFn = Callable[..., float]  # (net, batch, passes=None) -> score


def _logits(out: torch.Tensor | tuple) -> torch.Tensor:
    """A network's logits (the cell networks return ``(logits, aux)``)."""
    return out[0] if isinstance(out, tuple) else out


def _weighted_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss_backward(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    net.zero_grad(set_to_none=True)
    F.cross_entropy(_logits(net(inputs)), targets).backward()


def params(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """Trainable parameters, in millions."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6


def flops(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """Multiply-accumulates of every conv and linear layer for one input, in millions."""
    total = [0]

    def hook(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            per_out = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total[0] += out.numel() * per_out
        else:
            total[0] += module.in_features * module.out_features * (out.numel() // module.out_features)

    handles = [m.register_forward_hook(hook) for m in _weighted_layers(net)]
    try:
        with torch.no_grad():
            net(batch.inputs[:1])
    finally:
        for h in handles:
            h.remove()
    return total[0] / 1e6


def synflow(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """SynFlow on a float64 copy with absolute weights and BatchNorm removed, for one all-ones input."""
    net = copy.deepcopy(net)
    _remove_batchnorm(net)
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *batch.inputs.shape[1:]), dtype=torch.float64, device=batch.inputs.device)
    _logits(net(ones)).sum().backward()
    with torch.no_grad():
        total = sum(float((m.weight * m.weight.grad).abs().sum()) for m in _weighted_layers(net)
                    if m.weight.grad is not None)
    return total if math.isfinite(total) else FLOOR


def _remove_batchnorm(net: nn.Module) -> None:
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _remove_batchnorm(child)


class _Passes:
    """The forward/backward passes several proxies read, each run at most once per :func:`score` call.

    NASWOT and jacov read one forward pass (ReLU codes) and its input gradient; SNIP, grad_norm and ZiCo read
    the weights' loss gradients on the two halves of the batch. Sharing them roughly halves the cost of the set.
    """

    def __init__(self, net: nn.Module, batch: ProxyBatch, splits: int = 2) -> None:
        self.net, self.batch, self.splits = net, batch, splits
        self._codes: tuple[torch.Tensor, torch.Tensor] | None = None
        self._grads: list[list[torch.Tensor]] | None = None

    def codes_and_jacobian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The NASWOT kernel ``(B, B)`` and the input Jacobian of the summed outputs ``(B, D)``."""
        if self._codes is None:
            n = self.batch.inputs.shape[0]
            kernel = torch.zeros(n, n, dtype=torch.float64, device=self.batch.inputs.device)

            def hook(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:
                # float32 counts are exact below 2**24 units; (1-c)(1-c)^T = D - s_i - s_j + cc^T saves a matmul.
                codes = (inp[0].detach().reshape(n, -1) > 0).float()  # (B, D) binary activation pattern
                ones = codes.sum(1).double()
                kernel.add_(2 * (codes @ codes.t()).double() + codes.shape[1] - ones[:, None] - ones[None, :])

            handles = [m.register_forward_hook(hook) for m in self.net.modules() if isinstance(m, nn.ReLU)]
            x = self.batch.inputs.detach().clone().requires_grad_(True)
            try:
                out = _logits(self.net(x))
            finally:
                for h in handles:
                    h.remove()
            if out.requires_grad:  # only the input's gradient: the weights' would be wasted work
                (jac,) = torch.autograd.grad(out.sum(), x)
            else:
                jac = torch.zeros_like(x)
            self._codes = (kernel, jac.reshape(n, -1).double())
        return self._codes

    def split_grads(self) -> list[list[torch.Tensor]]:
        """Per conv/linear layer, the flattened loss gradient of its weight on each of the batch's splits."""
        if self._grads is None:
            n = self.batch.inputs.shape[0]
            if n < 2 * self.splits:
                raise NaoError(f"gradient proxies need a batch of at least {2 * self.splits} examples, got {n}")
            layers = _weighted_layers(self.net)
            grads: list[list[torch.Tensor]] = [[] for _ in layers]
            for s in range(self.splits):
                lo, hi = s * n // self.splits, (s + 1) * n // self.splits
                _loss_backward(self.net, self.batch.inputs[lo:hi], self.batch.targets[lo:hi])
                for i, m in enumerate(layers):
                    g = m.weight.grad
                    grads[i].append(torch.zeros(m.weight.numel(), device=m.weight.device) if g is None
                                    else g.detach().flatten().clone())
            self.net.zero_grad(set_to_none=True)
            self._grads = grads
        return self._grads

    def mean_grads(self) -> list[torch.Tensor]:
        """Per layer, the loss gradient of the whole batch (the mean over its splits)."""
        return [torch.stack(g).mean(0) for g in self.split_grads()]


def naswot(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """NASWOT: log|det| of the summed ReLU-code agreement kernel over the batch."""
    kernel, _ = (passes or _Passes(net, batch)).codes_and_jacobian()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) > 0 and math.isfinite(float(logdet)) else FLOOR


def jacov(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """Jacobian covariance: the per-example input gradients of the summed outputs should be uncorrelated."""
    _, jac = (passes or _Passes(net, batch)).codes_and_jacobian()
    jac = jac - jac.mean(1, keepdim=True)
    norms = jac.norm(dim=1)
    if bool((norms <= 0).any()):
        return FLOOR  # a constant Jacobian row: the correlation is undefined (no signal reaches the input)
    unit = jac / norms[:, None]
    eig = torch.linalg.eigvalsh(unit @ unit.t()).clamp_min(0)  # the correlation matrix is PSD
    k = 1e-5
    return _finite(float(-(torch.log(eig + k) + 1.0 / (eig + k)).sum()))


def snip(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """SNIP saliency: sum of |weight x loss gradient| over conv and linear weights."""
    grads = (passes or _Passes(net, batch)).mean_grads()
    with torch.no_grad():
        return _finite(sum(float((m.weight.flatten() * g).abs().sum()) for m, g in zip(_weighted_layers(net), grads)))


def grad_norm(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """Sum over conv and linear layers of the L2 norm of the loss gradient of the weights."""
    return _finite(sum(float(g.norm()) for g in (passes or _Passes(net, batch)).mean_grads()))


def zico(net: nn.Module, batch: ProxyBatch, passes: _Passes | None = None) -> float:
    """ZiCo: per layer, log of the summed mean-over-std ratio of the weights' gradients across batch splits."""
    total = 0.0
    for per_split in (passes or _Passes(net, batch)).split_grads():
        g = torch.stack(per_split).double()  # (splits, weights)
        std = g.std(0, unbiased=False)
        live = std > 0
        ratio = float((g.abs().mean(0)[live] / std[live]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return _finite(total)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else FLOOR


#: Every proxy by name, in the order tables list them.
PROXIES: dict[str, ProxyFn] = {
    "params": params, "flops": flops, "synflow": synflow, "naswot": naswot, "jacov": jacov,
    "snip": snip, "grad_norm": grad_norm, "zico": zico,
}


def check_names(names: Sequence[str]) -> list[str]:
    """``names`` as a list, each a known proxy; an unknown one raises :class:`NaoError` naming the known ones."""
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise NaoError(f"unknown zero-cost proxy {unknown[0]!r}; proxies: {', '.join(PROXIES)}")
    if not names:
        raise NaoError(f"no zero-cost proxy named; proxies: {', '.join(PROXIES)}")
    return list(dict.fromkeys(names))


def score(net: nn.Module, batch: ProxyBatch, names: Sequence[str] = tuple(PROXIES),
          timings: dict[str, float] | None = None) -> dict[str, float]:
    """Every proxy in ``names`` for ``net`` on ``batch`` (training mode); ``timings`` gets each one's seconds.

    The network's weights are left as they were (SynFlow works on a copy); gradients are cleared after.
    """
    names = check_names(names)
    net.train()
    passes = _Passes(net, batch)
    out: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()  # the first proxy to need a shared pass pays for it
        out[name] = float(PROXIES[name](net, batch, passes))
        if timings is not None:
            timings[name] = time.perf_counter() - start
    net.zero_grad(set_to_none=True)
    return out


def as_array(scores: Sequence[dict[str, float]], names: Sequence[str]) -> np.ndarray:
    """Scores as a ``(len(scores), len(names))`` float array."""
    return np.asarray([[s[n] for n in names] for s in scores], dtype=float).reshape(len(scores), len(names))
