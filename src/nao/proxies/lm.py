"""Zero-cost proxies of a recurrent language model (a searched cell inside :class:`~nao.nn.rnn.RNNLanguageModel`),
from one minibatch of token windows.

The image proxies (:mod:`nao.proxies.measures`) read a continuous image batch and conv/ReLU layers. A language
model reads token ids, and its cell is a gated highway recurrence; five proxies carry over with the same
definitions, three do not (asking for one raises :class:`~nao.errors.NaoError` with the reason below):

=========  =========================================================================================  ==========
name       score for a language model                                                                 passes
=========  =========================================================================================  ==========
params     trainable parameters, millions (the tied embedding/decoder counted once)                   none
flops      multiply-accumulates per token, millions: every weight matrix of the cell and the decoder   none
           is applied once per token (the embedding is a lookup, no MACs)
snip       sum |W * dL/dW| over the weight matrices, L the next-token cross-entropy                   2 fwd+bwd
grad_norm  sum over weight matrices of ||dL/dW||_2                                                     (shared)
zico       sum over weight matrices of log(sum mean|g| / std(g)), g the gradients of the two halves
           of the batch's streams (as the image version)
synflow    undefined: see :data:`UNDEFINED`
naswot     undefined: see :data:`UNDEFINED`
jacov      undefined: see :data:`UNDEFINED`
=========  =========================================================================================  ==========

"Weight matrices" are every parameter of two or more dimensions: the tied embedding/decoder, the cell's
``W_x`` and ``W_h0``, and each node's own ``W_i`` (a slice of the cell's ``(steps, H, 2H)`` node tensor,
one "layer" per node, as one conv is one layer of an image cell); biases are left out, as in the image proxies.
The loss is the LM's raw next-token cross-entropy (without the training loss's TAR/AR terms), the hidden state
starts at zero, and dropout is off: the LM has no batch norm, so training mode would only add random masks.

Within one recurrent space every cell has the same weight shapes (each node one ``(H, 2H)`` matrix, whatever
its activation and input), so ``params`` and ``flops`` are constant across its cells: defined and honest, but
they rank nothing there (they do tell spaces, widths and an LSTM apart).

>>> from nao.nn.rnn import ModelConfig, build_model
>>> from nao.spaces import get_space
>>> space = get_space("rnn")
>>> model = build_model(ModelConfig(8, 8), 30, space.decode(space.named("NAO")))
>>> batch = token_batch(torch.arange(200) % 30, batch_size=4, bptt=6, seed=0)
>>> s = score_lm(model, batch, ["params", "zico"])
>>> round(s["params"] * 1e6), s["zico"] > 0
(1934, True)
>>> score_lm(model, batch, ["naswot"])
Traceback (most recent call last):
...
nao.errors.NaoError: zero-cost proxy 'naswot' is undefined for a language model: it compares the batch's binary ReLU codes, and a recurrent cell's gates are sigmoids and its nodes mostly tanh/sigmoid/identity (many cells have no ReLU at all); defined: params, flops, snip, grad_norm, zico
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nao.errors import NaoError
from nao.proxies.measures import FLOOR, PROXIES
from nao.spaces.base import Architecture, SearchSpace

#: Why each image proxy that is not defined for a language model is not (one line each).
UNDEFINED: dict[str, str] = {
    "synflow": "it needs an all-ones continuous input through a positively homogeneous (ReLU/linear) network, and "
               "a token input has no all-ones value while the cell's sigmoid/tanh highway gates are not homogeneous",
    "naswot": "it compares the batch's binary ReLU codes, and a recurrent cell's gates are sigmoids and its nodes "
              "mostly tanh/sigmoid/identity (many cells have no ReLU at all)",
    "jacov": "it correlates per-example Jacobians with respect to a continuous input, and tokens are discrete ids "
             "(a Jacobian with respect to their embeddings would be another, unvalidated proxy)",
}


@dataclass(frozen=True)
class TokenBatch:
    """``inputs`` ``(T, B)`` token ids and ``targets`` ``(T, B)``, the next token of each (B streams of T steps)."""

    inputs: torch.Tensor
    targets: torch.Tensor


def token_batch(stream: torch.Tensor, batch_size: int, bptt: int, seed: int) -> TokenBatch:
    """``batch_size`` seeded random windows of ``bptt`` tokens (and their next tokens) from the 1-D ``stream``."""
    if batch_size < 4:
        raise NaoError(f"a zero-cost batch needs at least 4 streams (the gradient proxies split it in two halves of "
                       f">= 2), got {batch_size}")
    if bptt < 1:
        raise NaoError(f"a zero-cost batch needs windows of at least 1 token, got bptt {bptt}")
    n = int(stream.numel())
    if n < bptt + 2:
        raise NaoError(f"the training text has {n} tokens: too few for a zero-cost window of {bptt} + 1")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, n - bptt, (batch_size,), generator=g)
    idx = starts[None, :] + torch.arange(bptt + 1)[:, None]  # (T+1, B)
    data = stream.reshape(-1)[idx].long()
    return TokenBatch(data[:-1].contiguous(), data[1:].contiguous())


#: The proxies defined for a language model, in :data:`nao.proxies.measures.PROXIES`'s order.
LM_PROXIES: tuple[str, ...] = tuple(n for n in PROXIES if n not in UNDEFINED)


def check_lm_names(names: Sequence[str]) -> list[str]:
    """``names`` as a list of proxies defined for a language model; an undefined one raises :class:`NaoError`
    saying why, an unknown one naming the defined ones."""
    names = list(dict.fromkeys(names))
    if not names:
        raise NaoError(f"no zero-cost proxy named; defined for a language model: {', '.join(LM_PROXIES)}")
    for n in names:
        if n in UNDEFINED:
            raise NaoError(f"zero-cost proxy {n!r} is undefined for a language model: {UNDEFINED[n]}; defined: "
                           f"{', '.join(LM_PROXIES)}")
        if n not in LM_PROXIES:
            raise NaoError(f"unknown zero-cost proxy {n!r}; defined for a language model: {', '.join(LM_PROXIES)}")
    return names


# -- the weight matrices ("layers") ----------------------------------------------------------------------------
def _layers(model: nn.Module) -> list[tuple[nn.Parameter, int | None]]:
    """Every weight matrix as ``(parameter, index)``: a 2-D parameter whole (index None), a 3-D one (a stack of
    per-node matrices) slice by slice. ``named_parameters`` lists the tied embedding/decoder once."""
    out: list[tuple[nn.Parameter, int | None]] = []
    for _, p in model.named_parameters():
        if not p.requires_grad or p.ndim < 2:
            continue
        if p.ndim == 2:
            out.append((p, None))
        else:
            out.extend((p, i) for i in range(p.shape[0]))
    return out


def _part(t: torch.Tensor, index: int | None) -> torch.Tensor:
    return t if index is None else t[index]


class _LMPasses:
    """The loss gradients of each weight matrix on the two halves of the batch's streams, computed once."""

    def __init__(self, model: nn.Module, batch: TokenBatch, splits: int = 2) -> None:
        self.model, self.batch, self.splits = model, batch, splits
        self._grads: list[list[torch.Tensor]] | None = None

    def split_grads(self) -> list[list[torch.Tensor]]:
        if self._grads is None:
            b = self.batch.inputs.shape[1]
            if b < 2 * self.splits:
                raise NaoError(f"gradient proxies need a batch of at least {2 * self.splits} streams, got {b}")
            layers = _layers(self.model)
            grads: list[list[torch.Tensor]] = [[] for _ in layers]
            for s in range(self.splits):
                lo, hi = s * b // self.splits, (s + 1) * b // self.splits
                x, y = self.batch.inputs[:, lo:hi], self.batch.targets[:, lo:hi]
                self.model.zero_grad(set_to_none=True)
                logits, _, _ = self.model(x, self.model.init_hidden(hi - lo))
                F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)).backward()
                for i, (p, idx) in enumerate(layers):
                    g = p.grad
                    grads[i].append(torch.zeros(_part(p, idx).numel()) if g is None
                                    else _part(g, idx).detach().flatten().cpu().clone())
            self.model.zero_grad(set_to_none=True)
            self._grads = grads
        return self._grads

    def mean_grads(self) -> list[torch.Tensor]:
        return [torch.stack(g).mean(0) for g in self.split_grads()]


# -- the proxies ------------------------------------------------------------------------------------------------
def params(model: nn.Module, batch: TokenBatch, passes: _LMPasses | None = None) -> float:
    """Trainable parameters, in millions (tied weights once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6


def flops(model: nn.Module, batch: TokenBatch, passes: _LMPasses | None = None) -> float:
    """Multiply-accumulates per token, in millions: the cell's weight matrices and the decoder's, each applied
    once per token (a fixed cell computes every node; the embedding is a lookup)."""
    from nao.nn.rnn import LSTMCell, RecurrentCell

    cell = getattr(model, "cell", None)
    if not isinstance(cell, (RecurrentCell, LSTMCell)) or not hasattr(model, "decoder"):
        raise NaoError("flops of a language model are counted for a fixed recurrent cell or an LSTM "
                       f"(nao.nn.rnn.build_model), not {type(cell if cell is not None else model).__name__}")
    macs = sum(p.numel() for p in cell.parameters() if p.ndim >= 2) + model.decoder.weight.numel()
    return macs / 1e6


def snip(model: nn.Module, batch: TokenBatch, passes: _LMPasses | None = None) -> float:
    """SNIP saliency: sum of |weight x loss gradient| over the weight matrices."""
    grads = (passes or _LMPasses(model, batch)).mean_grads()
    with torch.no_grad():
        total = sum(float((_part(p, i).detach().flatten().cpu() * g).abs().sum())
                    for (p, i), g in zip(_layers(model), grads))
    return _finite(total)


def grad_norm(model: nn.Module, batch: TokenBatch, passes: _LMPasses | None = None) -> float:
    """Sum over the weight matrices of the L2 norm of their loss gradient."""
    return _finite(sum(float(g.norm()) for g in (passes or _LMPasses(model, batch)).mean_grads()))


def zico(model: nn.Module, batch: TokenBatch, passes: _LMPasses | None = None) -> float:
    """ZiCo: per weight matrix, log of the summed mean-over-std ratio of its gradients across the two halves."""
    total = 0.0
    for per_split in (passes or _LMPasses(model, batch)).split_grads():
        g = torch.stack(per_split).double()  # (splits, weights)
        # The population std, written out: Tensor.std over dim 0 of a (2, N) tensor is ~6x slower for the
        # embedding's 1.3M weights (0.4 s of a 1-s scoring on one core).
        std = (g - g.mean(0)).square().mean(0).sqrt()
        ratio = float(torch.where(std > 0, g.abs().mean(0) / std, 0.0).sum())
        if ratio > 0:
            total += math.log(ratio)
    return _finite(total)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else FLOOR


LMProxyFn = Callable[..., float]
_FNS: dict[str, LMProxyFn] = {"params": params, "flops": flops, "snip": snip, "grad_norm": grad_norm, "zico": zico}
assert tuple(_FNS) == LM_PROXIES


def score_lm(model: nn.Module, batch: TokenBatch, names: Sequence[str] = LM_PROXIES,
             timings: dict[str, float] | None = None) -> dict[str, float]:
    """Every proxy in ``names`` for the language model ``model`` on ``batch``; ``timings`` gets each one's seconds.

    Dropout is off while scoring (the model's mode is restored); gradients are cleared after; weights untouched.
    """
    names = check_lm_names(names)
    was_training = model.training
    model.eval()  # no batch norm in an LM: eval mode only turns the dropouts off
    device = next(model.parameters()).device
    batch = TokenBatch(batch.inputs.to(device), batch.targets.to(device))
    passes = _LMPasses(model, batch)
    out: dict[str, float] = {}
    try:
        for name in names:
            start = time.perf_counter()
            out[name] = float(_FNS[name](model, batch, passes))
            if timings is not None:
                timings[name] = time.perf_counter() - start
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return out


def score_lm_cell(space: SearchSpace, arch: Architecture, batch: TokenBatch, names: Sequence[str], model_config,
                  vocab_size: int, seed: int, device: str | torch.device = "cpu") -> tuple[dict[str, float], float]:
    """Build ``arch``'s untrained language model as the LM training evaluator does (``model_config``, seeded by
    ``seed``) and score it: ``(scores, seconds)``; the seconds include the build."""
    from nao.nn.rnn import build_model

    start = time.perf_counter()
    model = build_model(model_config, vocab_size, space.decode(arch), seed=seed).to(device)
    values = score_lm(model, batch, names)
    return values, time.perf_counter() - start


def lm_zero_cost(space: SearchSpace, batch: TokenBatch, names: Sequence[str], model_config, vocab_size: int,
                 seed: int = 0, device: str | torch.device = "cpu"):
    """Live zero-cost scores of recurrent cells (a :class:`~nao.proxies.source.ZeroCost`, memoised per cell and
    paid once each): each cell's untrained language model (the run's ``model_config``, seeded by the run's
    ``seed`` as the LM training evaluator seeds it) scored on the run's token ``batch`` on ``device``; the
    measured seconds, build included, are the price. ``names`` must be defined for a language model.

    (A function, so importing this module does not load :mod:`nao.proxies.source` and SciPy with it.)
    """
    from nao.proxies.source import FunctionZeroCost

    names = tuple(check_lm_names(names))

    def one(arch: Architecture) -> tuple[list[float], float]:
        values, seconds = score_lm_cell(space, arch, batch, names, model_config, vocab_size, seed, device)
        return [values[n] for n in names], seconds

    return FunctionZeroCost(space, names, one)


__all__ = ["LM_PROXIES", "UNDEFINED", "TokenBatch", "check_lm_names", "lm_zero_cost", "score_lm", "score_lm_cell",
           "token_batch"]
