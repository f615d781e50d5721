"""Proposing new architectures: move the best ones along the predictor's gradient and decode.

For each controller, the encoder states of the top architectures are moved by
``eta * df/dh`` with ``eta = 1, 2, 3, ...`` (times ``step_increment``) until enough *new*
(unseen key), valid architectures have been decoded or ``max_step`` is reached, as in the
official code. Candidates from several controllers are pooled, optionally with one-change
neighbours of the best architectures (:func:`neighbour_candidates`), and ranked by the
ensemble's mean predicted score, optionally plus a multiple of the ensemble's spread.

>>> import numpy as np
>>> from nao.spaces import get_space
>>> from nao.controller.config import ControllerConfig
>>> from nao.controller.model import EncoderPredictorDecoder
>>> space = get_space("nb201")
>>> model = EncoderPredictorDecoder(space, ControllerConfig(hidden_size=16, embedding_size=8), seed=0)
>>> top = [space.sample(np.random.default_rng(i)) for i in range(3)]
>>> cands = improve_candidates([model], top, n_new=5, seen=set(space.key(a) for a in top))
>>> all(space.is_valid(c.arch.tokens) for c in cands)
True
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nao.controller.model import EncoderPredictorDecoder
from nao.spaces.base import Architecture, SearchSpace


@dataclass(frozen=True)
class Candidate:
    """A decoded architecture, the step size that produced it and its predicted score."""

    arch: Architecture
    step: float
    predicted: float


def step_sizes(increment: float, max_step: float) -> list[float]:
    """``increment, 2*increment, ...`` up to ``max_step`` (inclusive)."""
    n = max(1, int(np.floor(max_step / increment + 1e-9)))
    return [increment * i for i in range(1, n + 1)]


def decode_new(
    model: EncoderPredictorDecoder,
    top: Sequence[Architecture],
    n_new: int,
    seen: set[Hashable],
    steps: Sequence[float] | None = None,
    beam_width: int | None = None,
) -> list[tuple[Architecture, float]]:
    """Up to ``n_new`` new valid architectures decoded from ``top`` with growing step sizes.

    With ``beam_width`` 1 each moved embedding is decoded greedily (the official code);
    with W > 1 the W most likely sequences are kept, so when the greedy sequence was
    already evaluated the next most likely new one is used instead. ``seen`` holds keys to
    skip and is updated in place. Returns ``(arch, step)`` pairs in the order found.
    """
    space = model.space
    if steps is None:
        steps = step_sizes(model.cfg.step_increment, model.cfg.max_step)
    width = beam_width or model.cfg.beam_width
    states, grad = model.gradient(model.tokens(top))
    batch = states.shape[0]
    found: list[tuple[Architecture, float]] = []
    steps, start, chunk = list(steps), 0, 1
    while start < len(steps):
        # Decode a chunk of step sizes in one batched call (chunks double: 1, 2, 4, ...): on a
        # CPU the per-call overhead of these tiny tensors dominates, and a round often needs
        # dozens of step sizes. Results are read step by step, in order, as if decoded singly.
        block = steps[start : start + chunk]
        start, chunk = start + len(block), chunk * 2
        eta = torch.tensor(block, dtype=states.dtype, device=states.device).repeat_interleave(batch)
        eta = eta.view(-1, 1, 1)  # (S*B, 1, 1): one step size per moved architecture
        rep_states, rep_grad = states.repeat(len(block), 1, 1), grad.repeat(len(block), 1, 1)  # (S*B, L, H)
        if width == 1:
            decoded = model.decode_moved(rep_states, rep_grad, eta).unsqueeze(1)  # (S*B, L) -> (S*B, 1, L)
            ok = torch.ones(decoded.shape[:2], dtype=torch.bool)
        else:
            decoded, logp = model.beam_moved(rep_states, rep_grad, eta, width)  # (S*B, W, L), (S*B, W)
            ok = torch.isfinite(logp).cpu()
        decoded_list = decoded.cpu().tolist()
        for j, step in enumerate(block):
            rows = range(j * batch, (j + 1) * batch)
            for w in range(decoded.shape[1]):  # most likely alternatives of every arch first
                for b in rows:
                    seq = decoded_list[b][w]
                    if not ok[b, w] or not space.is_valid(seq):  # masks are per position only
                        continue
                    arch = space.make(seq)
                    key, pruned = space.key(arch), space.key(space.prune(arch))
                    if key in seen or pruned in seen:  # known, or the same network as a known one
                        continue
                    seen.update((key, pruned))
                    found.append((arch, step))
                    if len(found) >= n_new:
                        return found
    return found


def predict_mean(models: Sequence[EncoderPredictorDecoder], archs: Sequence[Architecture]) -> np.ndarray:
    """Mean predicted score of ``archs`` over ``models`` (normalised target scale)."""
    return predict_mean_std(models, archs)[0]


def predict_mean_std(
    models: Sequence[EncoderPredictorDecoder], archs: Sequence[Architecture]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (0 for one model) of the predictions of ``models``."""
    if not archs:
        return np.zeros(0), np.zeros(0)
    preds = np.stack([m.predict(m.tokens(archs)).cpu().numpy() for m in models])  # (M, B)
    return preds.mean(axis=0), preds.std(axis=0)


def embeddings(models: Sequence[EncoderPredictorDecoder], archs: Sequence[Architecture]) -> torch.Tensor:
    """(B, M*H) float64 embeddings of ``archs`` by the M ``models`` (dropout off), scaled by 1/sqrt(M) so that
    a squared distance is the mean of the models' squared distances."""
    with torch.no_grad():
        parts = []
        for m in models:
            with m.evaluating():
                parts.append(m.encode(m.tokens(archs))[1].cpu().to(torch.float64))
    return torch.cat(parts, dim=1) / math.sqrt(len(parts))


def neighbour_candidates(
    space: SearchSpace, top: Sequence[Architecture], seen: set[Hashable]
) -> list[Architecture]:
    """One-change neighbours of ``top`` (best first) whose key and pruned key are not in ``seen``.

    The gradient step moves an embedding by an amount the decoder turns into some edit of
    the source; the one-change neighbours are the smallest edits, and on landscapes where
    good architectures cluster (NB201, and local search's success says most NAS benchmarks)
    they are where the next improvement usually is. Ranking them with the same predictor as
    the decoded candidates lets the controller, not a fixed rule, choose between near and
    far moves. ``seen`` is updated in place.
    """
    found: list[Architecture] = []
    for arch in top:
        for nbr in space.neighbours(arch):
            key, pruned = space.key(nbr), space.key(space.prune(nbr))
            if key in seen or pruned in seen:
                continue
            seen.update((key, pruned))
            found.append(nbr)
    return found


def improve_candidates(
    models: Sequence[EncoderPredictorDecoder],
    top: Sequence[Architecture],
    n_new: int,
    seen: set[Hashable],
    local_top: int = 0,
    explore: float = 0.0,
) -> list[Candidate]:
    """New architectures decoded by every controller from ``top``, best predicted first.

    Each controller contributes up to ``n_new`` architectures not in ``seen`` (nor found by
    an earlier controller); the one-change neighbours of the first ``local_top`` of ``top``
    join them with step 0. Candidates are ranked by ``mean + explore * std`` of the
    ensemble's predictions (an upper confidence bound; ``std`` is 0 for one controller).
    ``seen`` is not modified.
    """
    taken = set(seen)
    pairs: list[tuple[Architecture, float]] = []
    for model in models:
        pairs += decode_new(model, top, n_new, taken)
    if local_top > 0 and models:
        pairs += [(a, 0.0) for a in neighbour_candidates(models[0].space, top[:local_top], taken)]
    return rank_candidates(models, pairs, explore)


def rank_candidates(
    models: Sequence[EncoderPredictorDecoder], pairs: Sequence[tuple[Architecture, float]], explore: float = 0.0
) -> list[Candidate]:
    """``(arch, step)`` pairs as candidates scored ``mean + explore * std`` by ``models``, best first."""
    mean, std = predict_mean_std(models, [a for a, _ in pairs])
    scores = mean + explore * std
    cands = [Candidate(a, s, float(p)) for (a, s), p in zip(pairs, scores)]
    # Stable sort: ties keep discovery order, so the result is deterministic.
    return sorted(cands, key=lambda c: -c.predicted)

