"""Proposing new architectures: move the best ones along the predictor's gradient and decode.

For each controller, the encoder states of the top architectures are moved by
``eta * df/dh`` with ``eta = 1, 2, 3, ...`` (times ``step_increment``) until enough *new*
(unseen key), valid architectures have been decoded or ``max_step`` is reached, as in the
official code. Candidates from several controllers are pooled and ranked by the mean
predicted score of all controllers (an ensemble is steadier than any one of them).

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

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nao.controller.model import EncoderPredictorDecoder
from nao.spaces.base import Architecture


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
    found: list[tuple[Architecture, float]] = []
    for step in steps:
        if width == 1:
            decoded = model.decode_moved(states, grad, step).unsqueeze(1)  # (B, L) -> (B, 1, L)
            ok = torch.ones(decoded.shape[:2], dtype=torch.bool)
        else:
            decoded, logp = model.beam_moved(states, grad, step, width)  # (B, W, L), (B, W)
            ok = torch.isfinite(logp).cpu()
        decoded_list = decoded.cpu().tolist()
        for w in range(decoded.shape[1]):  # most likely alternatives of every arch first
            for b, beams in enumerate(decoded_list):
                if not ok[b, w] or not space.is_valid(beams[w]):  # masks are per position only
                    continue
                arch = space.make(beams[w])
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
    if not archs:
        return np.zeros(0)
    preds = [m.predict(m.tokens(archs)).cpu().numpy() for m in models]
    return np.mean(preds, axis=0)


def improve_candidates(
    models: Sequence[EncoderPredictorDecoder],
    top: Sequence[Architecture],
    n_new: int,
    seen: set[Hashable],
) -> list[Candidate]:
    """New architectures decoded by every controller from ``top``, best predicted first.

    Each controller contributes up to ``n_new`` architectures not in ``seen`` (nor found by
    an earlier controller); ``seen`` is not modified.
    """
    taken = set(seen)
    pairs: list[tuple[Architecture, float]] = []
    for model in models:
        pairs += decode_new(model, top, n_new, taken)
    scores = predict_mean(models, [a for a, _ in pairs])
    cands = [Candidate(a, s, float(p)) for (a, s), p in zip(pairs, scores)]
    # Stable sort: ties keep discovery order, so the result is deterministic.
    return sorted(cands, key=lambda c: -c.predicted)

