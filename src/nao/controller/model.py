"""The NAO controller: encoder (embedding + LSTM), predictor (MLP) and decoder (attention LSTM).

The encoder maps a token sequence to hidden states; their normalised mean is the
architecture's embedding, which the predictor scores and from which the decoder rebuilds
the sequence. Decoding is masked by the space's grammar (``allowed_tokens(position)``), so
every decoded sequence uses only tokens legal at their positions.

>>> import torch
>>> from nao.spaces import get_space
>>> from nao.controller.config import ControllerConfig
>>> space = get_space("nb201")
>>> model = EncoderPredictorDecoder(space, ControllerConfig(hidden_size=16, embedding_size=8), seed=0)
>>> tokens = torch.tensor([[3, 3, 3, 1, 3, 2]])
>>> model.predict(tokens).shape, model.improve(tokens, step=1.0).shape
(torch.Size([1]), torch.Size([1, 6]))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nao.controller.config import ControllerConfig
from nao.spaces.base import Architecture, SearchSpace


def grammar_mask(space: SearchSpace) -> torch.Tensor:
    """(L, V) boolean tensor: ``mask[i, t]`` is True when token ``t`` is allowed at position ``i``."""
    mask = torch.zeros(space.length, space.vocab_size, dtype=torch.bool)
    for i in range(space.length):
        mask[i, torch.tensor(np.asarray(space.allowed_tokens(i)), dtype=torch.long)] = True
    return mask


def as_tokens(archs: Sequence[Architecture] | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, L) long tensor of token ids from architectures (or pass a tensor through)."""
    if isinstance(archs, torch.Tensor):
        return archs.to(device=device, dtype=torch.long)
    return torch.tensor([a.tokens for a in archs], dtype=torch.long, device=device)


class Encoder(nn.Module):
    """Token embedding + LSTM; returns normalised states (B, L, H) and embedding (B, H)."""

    def __init__(self, vocab_size: int, length: int, cfg: ControllerConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_size)
        self.position = nn.Embedding(length, cfg.embedding_size) if cfg.positional else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embedding_size, cfg.hidden_size, cfg.layers, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding(tokens)  # (B, L) -> (B, L, E)
        if self.position is not None:
            x = x + self.position.weight[: tokens.shape[1]]
        x = self.dropout(x)
        states, _ = self.lstm(x)  # (B, L, H)
        # Unit-norm states (as the official code) keep the gradient step size eta comparable
        # across models and training stages.
        states = F.normalize(states, dim=-1)
        return states, embed(states)


def embed(states: torch.Tensor) -> torch.Tensor:
    """Architecture embedding: normalised mean of the encoder states, (B, L, H) -> (B, H)."""
    return F.normalize(states.mean(dim=1), dim=-1)


class Predictor(nn.Module):
    """MLP from the embedding to one score per architecture."""

    def __init__(self, cfg: ControllerConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = cfg.hidden_size
        for _ in range(cfg.mlp_layers):
            layers += [nn.Linear(width, cfg.mlp_hidden_size), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = cfg.mlp_hidden_size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.sigmoid = cfg.predictor_output == "sigmoid"

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        out = self.net(emb).squeeze(-1)  # (B, 1) -> (B,)
        return torch.sigmoid(out) if self.sigmoid else out


class Decoder(nn.Module):
    """LSTM started from the embedding, with dot-product attention over encoder states.

    Attention is applied to the LSTM output (Luong style, as the official code), so
    teacher-forced training runs the whole sequence in one LSTM call.
    """

    def __init__(self, vocab_size: int, length: int, cfg: ControllerConfig) -> None:
        super().__init__()
        self.sos = vocab_size  # an extra input id meaning "start of sequence"
        self.layers = cfg.layers
        self.embedding = nn.Embedding(vocab_size + 1, cfg.embedding_size)
        self.position = nn.Embedding(length, cfg.embedding_size) if cfg.positional else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embedding_size, cfg.hidden_size, cfg.layers, batch_first=True)
        self.combine = nn.Linear(2 * cfg.hidden_size, cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, vocab_size)

    def embed_inputs(self, inputs: torch.Tensor, start: int) -> torch.Tensor:
        """Input embeddings (B, T, E) of ids (B, T) at positions ``start..start+T-1``."""
        x = self.embedding(inputs)
        if self.position is not None:
            x = x + self.position.weight[start : start + inputs.shape[1]]
        return x

    def init_state(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = emb.unsqueeze(0).expand(self.layers, -1, -1).contiguous()  # (B, H) -> (layers, B, H)
        return h, h.clone()

    def step_logits(self, out: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) from LSTM outputs (B, T, H) attending over encoder states (B, L, H)."""
        attn = torch.softmax(out @ states.transpose(1, 2), dim=-1)  # (B, T, L)
        context = attn @ states  # (B, T, H)
        mixed = torch.tanh(self.combine(torch.cat([out, context], dim=-1)))  # (B, T, H)
        return self.out(mixed)

    def forward(self, tokens: torch.Tensor, states: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, L, V) for ``tokens`` (B, L)."""
        sos = torch.full_like(tokens[:, :1], self.sos)
        inputs = torch.cat([sos, tokens[:, :-1]], dim=1)  # shift right: (B, L)
        out, _ = self.lstm(self.dropout(self.embed_inputs(inputs, 0)), self.init_state(emb))  # (B, L, H)
        return self.step_logits(out, states)

    def greedy(self, states: torch.Tensor, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Greedy decoding (B, L) with logits restricted by the grammar ``mask`` (L, V)."""
        batch, length = states.shape[0], mask.shape[0]
        hidden = self.init_state(emb)
        prev = torch.full((batch, 1), self.sos, dtype=torch.long, device=states.device)
        out_tokens = []
        for i in range(length):
            out, hidden = self.lstm(self.embed_inputs(prev, i), hidden)  # (B, 1, H)
            logits = self.step_logits(out, states)[:, 0]  # (B, 1, V) -> (B, V)
            logits = logits.masked_fill(~mask[i], float("-inf"))
            prev = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            out_tokens.append(prev)
        return torch.cat(out_tokens, dim=1)

    def beam(
        self, states: torch.Tensor, emb: torch.Tensor, mask: torch.Tensor, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``width`` most likely grammar-masked sequences per input, best first.

        Returns tokens (B, W, L) and their total log-probabilities (B, W); a beam with
        log-probability ``-inf`` is padding (the grammar allows fewer sequences than W).
        """
        batch, length, vocab = states.shape[0], mask.shape[0], mask.shape[1]
        h, c = self.init_state(emb)
        h = h.repeat_interleave(width, dim=1)  # (layers, B, H) -> (layers, B*W, H)
        c = c.repeat_interleave(width, dim=1)
        mem = states.repeat_interleave(width, dim=0)  # (B, L, H) -> (B*W, L, H)
        score = torch.full((batch, width), float("-inf"), device=states.device)
        score[:, 0] = 0.0  # all beams start identical: keep one so they do not duplicate
        prev = torch.full((batch * width, 1), self.sos, dtype=torch.long, device=states.device)
        seqs = torch.zeros(batch, width, 0, dtype=torch.long, device=states.device)
        for i in range(length):
            out, (h, c) = self.lstm(self.embed_inputs(prev, i), (h, c))  # (B*W, 1, H)
            logits = self.step_logits(out, mem)[:, 0].masked_fill(~mask[i], float("-inf"))  # (B*W, V)
            total = score.unsqueeze(-1) + torch.log_softmax(logits, -1).view(batch, width, vocab)  # (B, W, V)
            score, flat = total.view(batch, width * vocab).topk(width, dim=-1)  # (B, W)
            beam_idx, token = flat // vocab, flat % vocab
            seqs = torch.cat([seqs.gather(1, beam_idx.unsqueeze(-1).expand(-1, -1, i)), token.unsqueeze(-1)], -1)
            rows = (beam_idx + torch.arange(batch, device=states.device).unsqueeze(1) * width).flatten()
            h, c = h[:, rows], c[:, rows]
            prev = token.reshape(batch * width, 1)
        return seqs, score


class EncoderPredictorDecoder(nn.Module):
    """NAO's controller for one search space.

    Args:
        space: the search space (its ``length``, ``vocab_size`` and grammar mask are used).
        cfg: sizes and training hyperparameters.
        seed: seeds the parameter initialisation without touching torch's global RNG.
        device: where the parameters live.
    """

    def __init__(
        self,
        space: SearchSpace,
        cfg: ControllerConfig | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.space = space
        self.cfg = cfg or ControllerConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # local: restored when the block exits
            self.encoder = Encoder(space.vocab_size, space.length, self.cfg)
            self.predictor = Predictor(self.cfg)
            self.decoder = Decoder(space.vocab_size, space.length, self.cfg)
        self.register_buffer("mask", grammar_mask(space), persistent=False)
        self.to(device)

    @property
    def device(self) -> torch.device:
        return self.mask.device

    def tokens(self, archs: Sequence[Architecture]) -> torch.Tensor:
        """(B, L) token ids of ``archs`` as the controller reads them: pruned by the space
        (:meth:`~nao.spaces.base.SearchSpace.prune`), so equivalent networks look alike."""
        return as_tokens([self.space.prune(a) for a in archs], self.device)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states (B, L, H) and embedding (B, H) of ``tokens`` (B, L)."""
        return self.encoder(tokens.to(self.device))

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted scores (B,) and masked reconstruction log-probabilities (B, L, V)."""
        states, emb = self.encode(tokens)
        logits = self.decoder(tokens.to(self.device), states, emb)
        logits = logits.masked_fill(~self.mask, float("-inf"))  # (B, L, V) masked by (L, V)
        return self.predictor(emb), F.log_softmax(logits, dim=-1)

    def loss_terms(self, tokens: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two loss parts: predictor MSE and reconstruction NLL (mean per token)."""
        tokens = tokens.to(self.device)
        pred, logp = self(tokens)
        mse = F.mse_loss(pred, targets.to(self.device, pred.dtype))
        nll = F.nll_loss(logp.flatten(0, 1), tokens.flatten())  # (B, L, V) -> (B*L, V)
        return mse, nll

    def loss(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``lambda * MSE(predicted, targets) + (1 - lambda) * NLL(reconstruction)``."""
        mse, nll = self.loss_terms(tokens, targets)
        lam = self.cfg.trade_off
        return lam * mse + (1.0 - lam) * nll

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Dropout off inside the block; the previous train/eval mode is restored after."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def predict(self, tokens: torch.Tensor) -> torch.Tensor:
        """Predicted scores (B,) in the normalised target scale (higher is better)."""
        with self.evaluating(), torch.no_grad():
            _, emb = self.encode(tokens)
            return self.predictor(emb)

    def reconstruct(self, tokens: torch.Tensor) -> torch.Tensor:
        """Greedy decoding (B, L) of each sequence's own embedding (autoencoder check)."""
        with self.evaluating(), torch.no_grad():
            states, emb = self.encode(tokens)
            return self.decoder.greedy(states, emb, self.mask)

    def gradient(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states (B, L, H) and the predictor's gradient with respect to them."""
        with self.evaluating(), torch.enable_grad():
            states, _ = self.encode(tokens)
            states = states.detach().requires_grad_(True)
            score = self.predictor(embed(states))
            (grad,) = torch.autograd.grad(score.sum(), states)  # rows are independent: sum = per-row grads
        return states.detach(), grad

    def decode_moved(self, states: torch.Tensor, grad: torch.Tensor, step: float | torch.Tensor) -> torch.Tensor:
        """Greedy decoding (B, L) from ``normalize(states + step * grad)`` (``step``: a number or (B, 1, 1))."""
        with self.evaluating(), torch.no_grad():
            moved = F.normalize(states + step * grad, dim=-1)  # (B, L, H)
            return self.decoder.greedy(moved, embed(moved), self.mask)

    def beam_moved(
        self, states: torch.Tensor, grad: torch.Tensor, step: float | torch.Tensor, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Beam decoding (B, W, L) and log-probabilities (B, W) from moved states (``step`` as above)."""
        with self.evaluating(), torch.no_grad():
            moved = F.normalize(states + step * grad, dim=-1)  # (B, L, H)
            return self.decoder.beam(moved, embed(moved), self.mask, width)

    def improve(self, tokens: torch.Tensor, step: float) -> torch.Tensor:
        """Decode architectures from states moved along the predictor's gradient.

        ``h' = normalize(h + step * df/dh)`` for every encoder state ``h``; the decoder then
        reads the embedding of ``h'``. Returns (B, L) token ids (grammar-masked).
        """
        states, grad = self.gradient(tokens)
        return self.decode_moved(states, grad, step)
