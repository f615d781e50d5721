"""A minimal Adam for the controller: the same update as ``torch.optim.Adam`` (L2 weight
decay, no AMSGrad), without the cost of ``torch.optim`` on first use.

Why not ``torch.optim.Adam``: its ``step`` and ``add_param_group`` import ``torch._dynamo``
on their first call, about 2 s on a 2-core CPU: a tenth of a whole 150-query NAO run on
NAS-Bench-201 (see BENCHMARKS.md). The controller needs nothing of torch.optim beyond the
update itself; tests check it step for step against ``torch.optim.Adam``.

>>> import torch
>>> w = torch.nn.Parameter(torch.ones(2))
>>> opt = Adam([w], lr=0.1)
>>> (w ** 2).sum().backward()
>>> opt.step()
>>> [round(v, 4) for v in w.tolist()]
[0.9, 0.9]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class Adam:
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient, as ``torch.optim.Adam``.

    Args:
        params: tensors to optimise (each with ``requires_grad``).
        lr: learning rate.
        betas: decay rates of the first and second moment estimates.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient (``grad += weight_decay * param``).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("Adam got no parameters that require gradients")
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid Adam settings lr={lr} betas={betas} eps={eps} weight_decay={weight_decay}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter."""
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        params = [self.params[i] for i in live]
        grads = [params[j].grad for j in range(len(live))]
        m = [self.exp_avg[i] for i in live]
        v = [self.exp_avg_sq[i] for i in live]
        beta1, beta2 = self.betas
        self.steps += 1
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        torch._foreach_lerp_(m, grads, 1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, 1.0 - beta2)
        step_size = self.lr / (1.0 - beta1**self.steps)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(1.0 - beta2**self.steps))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, -step_size)
