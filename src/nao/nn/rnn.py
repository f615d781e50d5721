"""Recurrent language models: the searched cell, its weight-sharing supernet, an LSTM baseline.

(Over 400 lines because the cell, the supernet cell and the model share one set of dropout masks and
weight layouts; split, they would have to import each other's internals.)

The cell (NAO/DARTS/ENAS family, see :mod:`nao.spaces.rnn`) uses highway-style gates::

    [c0, g0] = [x_t * mx, h_{t-1} * mh] W0         s0 = h_{t-1} + sig(c0) * (tanh(g0) - h_{t-1})
    [c,  g ] = (s_j * mh) W_i                       s_i = s_j + sig(c) * (act_i(g) - s_j)
    h_t = mean(s_k for k in concat)

``mx``/``mh`` are per-sequence (variational) dropout masks on the cell's inputs, fixed over
time, as in DARTS/NAO. Speed: the input half of ``W0`` is applied to all time steps in one
matmul before the time loop, and nodes are grouped by depth so that every level of the cell
tree is a single (batched) matmul per step, e.g. 6 instead of 11 for the NAO PTB cell.

The supernet holds one weight block per (node, input, activation) -- NAO-WS's layout
(renqianluo/NAO ``NAO-WS/rnn/model_search.py``: ``_Ws[i]`` has ``4*(i+1)`` blocks) -- or per
(node, input) (ENAS); a forward pass gathers the blocks of the architecture it is given and
runs the same code as the fixed cell, so only those blocks receive gradients.

>>> import torch
>>> from nao.spaces import get_space
>>> space = get_space("rnn")
>>> cfg = ModelConfig(emb_size=8, hidden_size=8)
>>> model = build_model(cfg, vocab_size=20, genotype=space.decode(space.named("NAO")))
>>> logits, hidden, raw = model(torch.zeros(5, 3, dtype=torch.long), model.init_hidden(3))
>>> logits.shape, hidden.shape, raw.shape
(torch.Size([5, 3, 20]), torch.Size([3, 8]), torch.Size([5, 3, 8]))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nao.config import Config
from nao.errors import ConfigError
from nao.spaces.rnn import ACTIVATIONS, RecurrentGenotype

# Uniform init range of every weight (DARTS/NAO ``INITRANGE``).
INIT_RANGE = 0.04
SHARE_MODES = ("node_input_act", "node_input")

_ACT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}
assert tuple(_ACT_FNS) == ACTIVATIONS


@dataclass(frozen=True)
class ModelConfig(Config):
    """Sizes and dropouts of a recurrent language model (defaults: the NAO/DARTS PTB model)."""

    # Word embedding width; equal to hidden_size because encoder and decoder weights are tied.
    emb_size: int = 850
    # Recurrent state width.
    hidden_size: int = 850
    # Locked (variational) dropout on the cell's output before the decoder (DARTS/NAO: 0.75).
    dropout: float = 0.75
    # Variational dropout on h_{t-1} and on every node's input inside the cell (0.25).
    dropout_h: float = 0.25
    # Variational dropout on x_t inside the cell (0.75).
    dropout_x: float = 0.75
    # Locked dropout on the embedded words (0.2).
    dropout_i: float = 0.2
    # Word-level embedding dropout: drop whole vocabulary rows (0 in NAO/DARTS final training).
    dropout_e: float = 0.0
    # DropConnect on the recurrent weights W0[h-part] and W_i, AWD-LSTM style (0: off).
    dropout_w: float = 0.0

    def __post_init__(self) -> None:
        if self.emb_size < 1 or self.hidden_size < 1:
            raise ConfigError(f"emb_size and hidden_size must be positive, got {self.emb_size}, {self.hidden_size}")
        if self.emb_size != self.hidden_size:
            raise ConfigError(
                f"emb_size {self.emb_size} != hidden_size {self.hidden_size}: tied input/output embeddings need equal sizes"
            )
        for name in ("dropout", "dropout_h", "dropout_x", "dropout_i", "dropout_e", "dropout_w"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {p}")


# -- random draws (explicit generator, no global RNG) ------------------------------------------
def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """``U(-INIT_RANGE, INIT_RANGE)`` weights drawn on the CPU from ``generator``."""
    return torch.empty(shape).uniform_(-INIT_RANGE, INIT_RANGE, generator=generator)


def _keep_mask(shape: tuple[int, ...], p: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A ``{0, 1/(1-p)}`` mask drawn from ``generator``."""
    keep = 1.0 - p
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep, generator=generator) / keep


def locked_dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None) -> torch.Tensor:
    """One mask per sequence, shared over time: ``x`` is ``(T, B, D)``."""
    if not training or p == 0.0:
        return x
    return x * _keep_mask((1, x.size(1), x.size(2)), p, x, generator)


def embedding_dropout(
    weight: torch.Tensor, tokens: torch.Tensor, p: float, training: bool, generator: torch.Generator | None
) -> torch.Tensor:
    """Embed ``tokens`` after dropping whole words (rows of ``weight``) with probability ``p``."""
    if training and p > 0.0:
        weight = weight * _keep_mask((weight.size(0), 1), p, weight, generator)
    return F.embedding(tokens, weight)


# -- execution plan ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    """Nodes of equal depth: computed together in one matmul per time step.

    Attributes:
        nodes: node ids (1-based), ordered so equal activations are contiguous.
        inputs: the node each one reads.
        groups: ``(activation, start, end)`` slices of ``nodes``.
        concat_pos: positions in ``nodes`` of nodes averaged into the output.
    """

    nodes: tuple[int, ...]
    inputs: tuple[int, ...]
    groups: tuple[tuple[str, int, int], ...]
    concat_pos: tuple[int, ...]

    @property
    def shared_input(self) -> int | None:
        """The one node every node of the level reads, if there is one (then one wide matmul)."""
        return self.inputs[0] if len(set(self.inputs)) == 1 else None


@dataclass(frozen=True)
class CellPlan:
    """How to run a genotype: levels in dependency order and the averaged nodes."""

    steps: int
    levels: tuple[Level, ...]
    concat: tuple[int, ...]


def make_plan(genotype: RecurrentGenotype) -> CellPlan:
    """Group the nodes of ``genotype`` by depth (node 0 has depth 0)."""
    depth = [0] * (genotype.steps + 1)
    for i, (_, inp) in enumerate(genotype.nodes, start=1):
        if not 0 <= inp < i:
            raise ConfigError(f"node {i} reads node {inp}, which is not an earlier node")
        depth[i] = depth[inp] + 1
    concat = set(genotype.concat)
    if not concat or not concat <= set(range(1, genotype.steps + 1)):
        raise ConfigError(f"concat {genotype.concat} must be a non-empty subset of nodes 1..{genotype.steps}")
    levels = []
    for d in range(1, max(depth) + 1):
        ids = [i for i in range(1, genotype.steps + 1) if depth[i] == d]
        ids.sort(key=lambda i: ACTIVATIONS.index(genotype.nodes[i - 1][0]))
        groups, start = [], 0
        for k in range(1, len(ids) + 1):
            if k == len(ids) or genotype.nodes[ids[k] - 1][0] != genotype.nodes[ids[start] - 1][0]:
                groups.append((genotype.nodes[ids[start] - 1][0], start, k))
                start = k
        levels.append(
            Level(
                nodes=tuple(ids),
                inputs=tuple(genotype.nodes[i - 1][1] for i in ids),
                groups=tuple(groups),
                concat_pos=tuple(k for k, i in enumerate(ids) if i in concat),
            )
        )
    return CellPlan(genotype.steps, tuple(levels), tuple(sorted(concat)))


def cell_step(
    plan: CellPlan,
    xw: torch.Tensor,
    h: torch.Tensor,
    h_mask: torch.Tensor | None,
    w_h0: torch.Tensor,
    w_levels: list[torch.Tensor],
) -> torch.Tensor:
    """One time step of the cell.

    Args:
        xw: ``(B, 2H)`` input contribution ``(x_t * mx) W0[x-part]``, computed for all steps at once.
        h: ``(B, H)`` previous state.
        h_mask: ``(B, H)`` variational mask on node inputs, or ``None``.
        w_h0: ``(H, 2H)`` recurrent half of ``W0``.
        w_levels: per level, its nodes' weights from :func:`level_weights`: ``(H, k*2H)`` when
            the level has a shared input, else ``(k, H, 2H)``.
    """
    B, hidden = h.shape
    ch0 = torch.addmm(xw, h if h_mask is None else h * h_mask, w_h0)  # (B, 2H)
    c0, g0 = ch0.split(hidden, dim=-1)
    # lerp(a, b, w) = a + w * (b - a): the highway update in one op (fewer ops = less overhead).
    states: list[torch.Tensor] = [torch.lerp(h, torch.tanh(g0), torch.sigmoid(c0))]
    states += [h] * plan.steps  # placeholders, each overwritten before it is read
    outputs: list[torch.Tensor] = []  # per level, (k', B, H) states that are averaged
    for level, w in zip(plan.levels, w_levels):
        k = len(level.nodes)
        j = level.shared_input
        if j is not None:
            prev = states[j].unsqueeze(0)  # (B, H) -> (1, B, H), broadcast over the level
            masked = states[j] if h_mask is None else states[j] * h_mask
            ch = (masked @ w).view(B, k, 2 * hidden).transpose(0, 1)  # (B, k*2H) -> (k, B, 2H)
        else:
            prev = torch.stack([states[i] for i in level.inputs])  # k x (B, H) -> (k, B, H)
            ch = torch.bmm(prev if h_mask is None else prev * h_mask, w)  # (k, B, H) @ (k, H, 2H)
        c, g = ch.split(hidden, dim=-1)
        if len(level.groups) == 1:
            g = _ACT_FNS[level.groups[0][0]](g)
        else:
            g = torch.cat([_ACT_FNS[a](g[s:e]) for a, s, e in level.groups])
        s = torch.lerp(prev.expand_as(g), g, torch.sigmoid(c))  # (k, B, H)
        # unbind, not s[k]: its backward stacks instead of filling a zero tensor per node.
        for node, state in zip(level.nodes, s.unbind(0)):
            states[node] = state
        if len(level.concat_pos) == k:
            outputs.append(s)
        elif level.concat_pos:
            outputs.append(torch.stack([states[level.nodes[p]] for p in level.concat_pos]))
    return torch.cat(outputs).mean(0)  # (n_concat, B, H) -> (B, H)


def level_weights(plan: CellPlan, node_w: torch.Tensor) -> list[torch.Tensor]:
    """Per-level weights for :func:`cell_step` from ``(steps, H, 2H)`` node weights.

    One gather and one split per sequence (not per step): their backward passes are a
    single scatter and a concatenation.
    """
    order = [i - 1 for level in plan.levels for i in level.nodes]
    parts = node_w[order].split([len(level.nodes) for level in plan.levels])  # (steps, H, 2H) -> k_l x ...
    out = []
    for level, w in zip(plan.levels, parts):
        if level.shared_input is not None:
            k, H, H2 = w.shape
            w = w.permute(1, 0, 2).reshape(H, k * H2)  # (k, H, 2H) -> (H, k*2H): one wide matmul
        out.append(w)
    return out


# -- cells -------------------------------------------------------------------------------------
class _CellBase(nn.Module):
    """Shared parts of the fixed and the weight-sharing cell: W0 and the time loop."""

    def __init__(self, cfg: ModelConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        h, e = cfg.hidden_size, cfg.emb_size
        self.w_x = nn.Parameter(_uniform((e, 2 * h), generator))
        self.w_h0 = nn.Parameter(_uniform((h, 2 * h), generator))
        self._step: Callable[..., torch.Tensor] = cell_step

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        return self.w_h0.new_zeros(batch_size, self.cfg.hidden_size)

    def _drop_w(self, w: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if not self.training or self.cfg.dropout_w == 0.0:
            return w
        return w * _keep_mask(tuple(w.shape), self.cfg.dropout_w, w, generator)

    def _run(
        self,
        plan: CellPlan,
        node_w: torch.Tensor,
        x: torch.Tensor,
        h: torch.Tensor,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``plan`` with node weights ``node_w`` ``(steps, H, 2H)`` over ``x`` ``(T, B, E)``."""
        T, B, E = x.shape
        if self.training and self.cfg.dropout_x > 0:
            x = x * _keep_mask((1, B, E), self.cfg.dropout_x, x, generator)
        h_mask = None
        if self.training and self.cfg.dropout_h > 0:
            h_mask = _keep_mask((B, self.cfg.hidden_size), self.cfg.dropout_h, x, generator)
        xw = (x.reshape(T * B, E) @ self.w_x).view(T, B, -1)  # (T, B, E) -> (T*B, E) -> (T, B, 2H)
        w_h0 = self._drop_w(self.w_h0, generator)
        node_w = self._drop_w(node_w, generator)
        w_levels = level_weights(plan, node_w)  # once per sequence, not per time step
        outs = []
        for xw_t in xw.unbind(0):  # unbind, not xw[t]: one stack in backward instead of T zero fills
            h = self._step(plan, xw_t, h, h_mask, w_h0, w_levels)
            outs.append(h)
        return torch.stack(outs), h  # T x (B, H) -> (T, B, H)


class RecurrentCell(_CellBase):
    """The searched cell with a fixed genotype and private weights per node."""

    def __init__(self, cfg: ModelConfig, genotype: RecurrentGenotype, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.genotype = genotype
        self.plan = make_plan(genotype)
        h = cfg.hidden_size
        self.w_nodes = nn.Parameter(_uniform((genotype.steps, h, 2 * h), generator))

    def compile_step(self, **kwargs: Any) -> None:
        """Opt-in: ``torch.compile`` the per-step function (the plan is fixed, so it compiles once)."""
        self._step = torch.compile(cell_step, **kwargs)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, genotype: RecurrentGenotype | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if genotype is not None and genotype != self.genotype:
            raise ConfigError("a fixed-genotype cell cannot run another genotype; use SharedCell")
        return self._run(self.plan, self.w_nodes, x, h, generator)


def block_count(steps: int, share: str) -> int:
    """Weight blocks a :class:`SharedCell` with ``steps`` nodes holds."""
    per_input = len(ACTIVATIONS) if share == "node_input_act" else 1
    return per_input * steps * (steps + 1) // 2


def block_index(node: int, inp: int, act: str, share: str) -> int:
    """Index of the weight block used by ``node`` (1-based) reading ``inp`` with ``act``."""
    if share == "node_input_act":
        return len(ACTIVATIONS) * (node * (node - 1) // 2 + inp) + ACTIVATIONS.index(act)
    if share == "node_input":
        return node * (node - 1) // 2 + inp
    raise ConfigError(f"unknown weight sharing {share!r}; choose one of {', '.join(SHARE_MODES)}")


class SharedCell(_CellBase):
    """The weight-sharing cell: runs any genotype of ``steps`` nodes with one bank of blocks."""

    def __init__(
        self, cfg: ModelConfig, steps: int, share: str = "node_input_act", generator: torch.Generator | None = None
    ) -> None:
        super().__init__(cfg, generator)
        if share not in SHARE_MODES:
            raise ConfigError(f"unknown weight sharing {share!r}; choose one of {', '.join(SHARE_MODES)}")
        self.steps, self.share = steps, share
        h = cfg.hidden_size
        self.bank = nn.Parameter(_uniform((block_count(steps, share), h, 2 * h), generator))
        self._plans: dict[RecurrentGenotype, tuple[CellPlan, torch.Tensor]] = {}

    def _plan(self, genotype: RecurrentGenotype) -> tuple[CellPlan, torch.Tensor]:
        if genotype.steps != self.steps:
            raise ConfigError(f"supernet has {self.steps} nodes, genotype has {genotype.steps}")
        if genotype not in self._plans:
            idx = [block_index(i, inp, act, self.share) for i, (act, inp) in enumerate(genotype.nodes, start=1)]
            self._plans[genotype] = (make_plan(genotype), torch.tensor(idx, dtype=torch.long))
        return self._plans[genotype]

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, genotype: RecurrentGenotype | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if genotype is None:
            raise ConfigError("the supernet needs a genotype for every forward pass")
        plan, idx = self._plan(genotype)
        node_w = self.bank[idx.to(self.bank.device)]  # (blocks, H, 2H) -> (steps, H, 2H)
        return self._run(plan, node_w, x, h, generator)


class LSTMCell(nn.Module):
    """``torch.nn.LSTM`` (one layer) behind the same interface, as a speed/quality baseline.

    The cell-internal dropouts (``dropout_x``/``dropout_h``) are not applied: cuDNN/oneDNN's
    fused kernel has no hook for them; embedding/locked dropouts still apply.
    """

    def __init__(self, cfg: ModelConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.emb_size, cfg.hidden_size)
        with torch.no_grad():
            for p in self.lstm.parameters():
                p.copy_(_uniform(tuple(p.shape), generator))

    def init_hidden(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.lstm.weight_hh_l0.new_zeros(1, batch_size, self.cfg.hidden_size)
        return (z, z.clone())

    def forward(
        self, x: torch.Tensor, h: Any, genotype: RecurrentGenotype | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Any]:
        return self.lstm(x, h)


# -- the language model --------------------------------------------------------------------------
class RNNLanguageModel(nn.Module):
    """Embedding -> recurrent cell -> tied decoder, with AWD-LSTM-style dropouts."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, cell: nn.Module, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.encoder = nn.Embedding(vocab_size, cfg.emb_size)
        self.cell = cell
        self.decoder = nn.Linear(cfg.hidden_size, vocab_size)
        with torch.no_grad():
            self.encoder.weight.copy_(_uniform((vocab_size, cfg.emb_size), generator))
            self.decoder.bias.zero_()
        self.decoder.weight = self.encoder.weight  # tied (Press & Wolf 2017; Inan et al. 2017)

    def init_hidden(self, batch_size: int) -> Any:
        return self.cell.init_hidden(batch_size)

    def forward(
        self,
        tokens: torch.Tensor,
        hidden: Any,
        genotype: RecurrentGenotype | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """Logits ``(T, B, V)``, the new hidden state, and the cell outputs ``(T, B, H)`` (for TAR)."""
        cfg, training = self.cfg, self.training
        emb = embedding_dropout(self.encoder.weight, tokens, cfg.dropout_e, training, generator)  # (T, B, E)
        emb = locked_dropout(emb, cfg.dropout_i, training, generator)
        raw, hidden = self.cell(emb, hidden, genotype=genotype, generator=generator)
        out = locked_dropout(raw, cfg.dropout, training, generator)
        return self.decoder(out), hidden, raw


def build_model(
    cfg: ModelConfig,
    vocab_size: int,
    genotype: RecurrentGenotype | None = None,
    cell: str = "nao",
    steps: int | None = None,
    share: str = "node_input_act",
    seed: int = 0,
) -> RNNLanguageModel:
    """A language model with a fixed searched cell (``cell="nao"``, needs ``genotype``),
    the weight-sharing supernet (``"supernet"``, needs ``steps``) or an LSTM (``"lstm"``).
    ``seed`` seeds the weight initialisation (a private generator; the global RNG is untouched)."""
    g = torch.Generator().manual_seed(seed)
    if cell == "nao":
        if genotype is None:
            raise ConfigError("cell 'nao' needs a genotype")
        return RNNLanguageModel(cfg, vocab_size, RecurrentCell(cfg, genotype, g), g)
    if cell == "supernet":
        if steps is None:
            raise ConfigError("cell 'supernet' needs the number of steps")
        return RNNLanguageModel(cfg, vocab_size, SharedCell(cfg, steps, share, g), g)
    if cell == "lstm":
        return RNNLanguageModel(cfg, vocab_size, LSTMCell(cfg, g), g)
    raise ConfigError(f"unknown cell {cell!r}; choose nao, supernet or lstm")


def detach_hidden(h: Any) -> Any:
    """Cut the graph behind a hidden state (tensor or tuple of tensors), as truncated BPTT needs."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(detach_hidden(v) for v in h)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (the tied embedding counted once)."""
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "INIT_RANGE",
    "SHARE_MODES",
    "CellPlan",
    "LSTMCell",
    "Level",
    "ModelConfig",
    "RNNLanguageModel",
    "RecurrentCell",
    "SharedCell",
    "block_count",
    "block_index",
    "build_model",
    "cell_step",
    "count_parameters",
    "detach_hidden",
    "embedding_dropout",
    "level_weights",
    "locked_dropout",
    "make_plan",
]
