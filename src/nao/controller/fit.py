"""Training the controller on (architecture, score) pairs.

Targets are normalised per fit (min-max as the official code, or by rank); every epoch
each architecture may be replaced by a random equivalent encoding (``space.augment``), so
the controller learns the space's symmetries.

>>> import numpy as np
>>> from nao.spaces import get_space
>>> from nao.controller.config import ControllerConfig
>>> from nao.controller.model import EncoderPredictorDecoder
>>> space = get_space("nb201")
>>> rng = np.random.default_rng(0)
>>> archs = [space.sample(rng) for _ in range(20)]
>>> model = EncoderPredictorDecoder(space, ControllerConfig(hidden_size=16, embedding_size=8, mlp_hidden_size=16))
>>> losses = fit(model, archs, [sum(a.tokens) for a in archs], rng, epochs=5)
>>> len(losses)
5
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence

import numpy as np
import torch

from nao.controller.adam import Adam
from nao.controller.model import EncoderPredictorDecoder
from nao.spaces.base import Architecture, SearchSpace

# Gradient steps of a default fit. Epochs follow from the data size: a fixed number of
# steps rather than of epochs keeps a fit's cost flat as the pool grows, and the CPU cost
# of a fit proportional to the sequence length (official: 1000 epochs, on a GPU).
DEFAULT_FIT_STEPS = 200


def epochs_for_steps(steps: int, n_archs: int, batch_size: int) -> int:
    """Epochs giving about ``steps`` mini-batches of ``batch_size`` over ``n_archs`` (at least 1)."""
    batches = max(1, -(-n_archs // batch_size))
    return max(1, round(steps / batches))


def default_epochs(n_archs: int, batch_size: int) -> int:
    """Epochs of a default fit (about :data:`DEFAULT_FIT_STEPS` steps)."""
    return epochs_for_steps(DEFAULT_FIT_STEPS, n_archs, batch_size)


def normalize_targets(values: Sequence[float] | np.ndarray, transform: str = "minmax") -> np.ndarray:
    """Map scores to [0, 1]: ``"minmax"`` scales linearly, ``"rank"`` uses average ranks.

    A constant input maps to 0.5 everywhere (nothing to rank).
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    if transform == "rank":
        if v.size == 1:
            return np.full(1, 0.5)
        order = np.argsort(v, kind="stable")
        ranks = np.empty(v.size)
        ranks[order] = np.arange(v.size)
        for value in np.unique(v):  # ties share their mean rank
            tied = v == value
            ranks[tied] = ranks[tied].mean()
        return ranks / (v.size - 1)
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 0:
        return np.full(v.size, 0.5)
    return (v - lo) / (hi - lo)


def make_optimizer(model: EncoderPredictorDecoder) -> Adam:
    """Adam with the config's learning rate and weight decay (:class:`~nao.controller.adam.Adam`)."""
    return Adam(model.parameters(), lr=model.cfg.lr, weight_decay=model.cfg.weight_decay)


def _has_augment(space: SearchSpace) -> bool:
    return type(space).augment is not SearchSpace.augment


def fit(
    model: EncoderPredictorDecoder,
    archs: Sequence[Architecture],
    values: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    epochs: int | None = None,
    optimizer: Adam | torch.optim.Optimizer | None = None,
    normalized: bool = False,
) -> list[float]:
    """Train ``model`` on ``archs`` with raw scores ``values``; returns the mean loss per epoch.

    Args:
        model: the controller (trained in place; pass the same one again to warm-start).
        archs: training architectures.
        values: their scores (higher is better), normalised here unless ``normalized``.
        rng: drives shuffling, augmentation and (through a local torch seed) dropout.
        epochs: overrides ``model.cfg.epochs`` / :func:`default_epochs`.
        optimizer: reuse an optimizer across fits (default: a fresh Adam).
    """
    cfg, space = model.cfg, model.space
    if len(archs) != len(values):
        raise ValueError(f"{len(archs)} architectures but {len(values)} values")
    if not archs:
        return []
    targets = np.asarray(values, dtype=float) if normalized else normalize_targets(values, cfg.target_transform)
    y = torch.as_tensor(targets, dtype=torch.float32, device=model.device)
    base = model.tokens(archs)
    n_epochs = epochs or cfg.epochs or default_epochs(len(archs), cfg.batch_size)
    opt = optimizer or make_optimizer(model)
    augment = cfg.augment and _has_augment(space)
    losses: list[float] = []
    model.train()
    cuda = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(rng.integers(2**63 - 1)))  # dropout draws from this local seed
        for _ in range(n_epochs):
            tokens = model.tokens([space.augment(a, rng) for a in archs]) if augment else base
            order = torch.as_tensor(rng.permutation(len(archs)), device=model.device)
            total = torch.zeros((), device=model.device)
            for start in range(0, len(archs), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                loss = model.loss(tokens[idx], y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                total += loss.detach() * len(idx)
            losses.append(float(total) / len(archs))
    model.eval()
    return losses


def pretrain(
    model: EncoderPredictorDecoder,
    archs: Sequence[Architecture],
    rng: np.random.Generator,
    steps: int,
    lr: float,
) -> list[float]:
    """Train only the encoder and decoder to reconstruct unlabelled ``archs`` (NLL).

    Unevaluated architectures cost no queries, so the autoencoder can learn the whole
    space before any score is known (as in SemiNAS, the NAO authors' semi-supervised
    follow-up); the decoder then turns moved embeddings into sensible nearby sequences
    instead of collapsing onto the few training architectures. Returns the NLL per step.
    """
    space, cfg = model.space, model.cfg
    if steps < 1 or not archs:
        return []
    params = [*model.encoder.parameters(), *model.decoder.parameters()]
    opt = Adam(params, lr=lr)
    augment = cfg.augment and _has_augment(space)
    base = model.tokens(archs)
    dummy = torch.zeros(min(cfg.batch_size, len(archs)), device=model.device)
    losses: list[float] = []
    model.train()
    cuda = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(rng.integers(2**63 - 1)))
        for _ in range(steps):
            idx = rng.choice(len(archs), size=len(dummy), replace=False)
            if augment:
                tokens = model.tokens([space.augment(archs[i], rng) for i in idx])
            else:
                tokens = base[torch.as_tensor(idx, device=model.device)]
            _, nll = model.loss_terms(tokens, dummy)
            opt.zero_grad(set_to_none=True)
            nll.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            losses.append(float(nll.detach()))
    model.eval()
    return losses


def pretrain_on_space(
    model: EncoderPredictorDecoder,
    rng: np.random.Generator,
    exclude: Collection[Hashable] = (),
) -> list[float]:
    """:func:`pretrain` on ``cfg.pretrain_archs`` random architectures of the model's space.

    Samples whose key is in ``exclude`` are dropped (e.g. a test set, so reconstruction
    accuracy on it measures generalisation); duplicates are harmless. A config with
    ``pretrain_archs == 0`` or ``pretrain_steps == 0`` does nothing.
    """
    cfg, space = model.cfg, model.space
    if cfg.pretrain_archs <= 0 or cfg.pretrain_steps <= 0:
        return []
    excluded = set(exclude)
    archs = [a for a in (space.sample(rng) for _ in range(cfg.pretrain_archs)) if space.key(a) not in excluded]
    return pretrain(model, archs, rng, cfg.pretrain_steps, cfg.pretrain_lr)


# SemiNAS (Luo et al., NeurIPS 2020; renqianluo/SemiNAS nasbench/train_seminas.py) repeats
# the labelled pairs this many times next to the pseudo-labelled ones (its ``up_sample_ratio``
# default), so that a few hundred true labels are not drowned by ten thousand guesses.
SEMI_UP_SAMPLE = 10


def semi_supervised_fit(
    models: Sequence[EncoderPredictorDecoder],
    archs: Sequence[Architecture],
    values: Sequence[float] | np.ndarray,
    unlabelled: Sequence[Architecture],
    rng: np.random.Generator,
    steps: int,
    optimizers: Sequence[Adam | torch.optim.Optimizer | None] | None = None,
    up_sample: int = SEMI_UP_SAMPLE,
) -> np.ndarray:
    """SemiNAS' second stage: pseudo-label ``unlabelled`` and train on both; returns the pseudo-labels.

    ``models`` must already be fitted on ``(archs, values)``. Their mean prediction labels
    the unevaluated ``unlabelled`` architectures (normalised target scale, as the
    controller predicts); every model then trains for about ``steps`` mini-batches on the
    labelled pairs repeated ``up_sample`` times plus the pseudo-labelled ones. The pseudo-
    labels carry no new information about scores, but they teach the encoder a smooth
    predictor over the whole region the decoder will move through (the paper's argument).
    """
    if not models or not unlabelled or not archs:
        return np.zeros(len(unlabelled))
    cfg = models[0].cfg
    pseudo = np.mean([m.predict(m.tokens(unlabelled)).cpu().numpy() for m in models], axis=0)
    targets = np.concatenate([np.tile(normalize_targets(values, cfg.target_transform), up_sample), pseudo])
    data = [*archs] * up_sample + [*unlabelled]
    epochs = epochs_for_steps(steps, len(data), cfg.batch_size)
    opts = list(optimizers) if optimizers is not None else [None] * len(models)
    for model, opt in zip(models, opts):
        fit(model, data, targets, rng, epochs=epochs, optimizer=opt, normalized=True)
    return pseudo
