"""BANANAS (White, Neiswanger, Savani, AAAI 2021): Bayesian optimisation with an ensemble of MLPs.

After a random initial set, each round fits an ensemble of small MLPs on the architectures
evaluated so far (encoded by the space's path encoding, or one-hot tokens where the space has
none), builds candidates by mutating the best architectures so far, and picks the round's
proposals by independent Thompson sampling (ITS): each candidate gets one draw from
``N(mean, std)`` of the ensemble's predictions and the highest draws win.

Defaults follow the paper and its code (naszilla/bananas): 10 initial random architectures,
an ensemble of 5 MLPs of 10 hidden layers of width 20 trained 200 epochs with Adam (lr 0.01,
batch 32) on the mean absolute error, 100 candidates per round from mutations of the best
architectures, 10 proposals per round chosen by ITS.

>>> from nao.spaces import get_space
>>> s = Bananas(get_space("nb201"), seed=0)
>>> len(s.ask(3))  # the initial set is random
3
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from nao.errors import ConfigError
from nao.registry import STRATEGIES
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy


def encode(space: SearchSpace, arch: Architecture) -> np.ndarray:
    """The space's path encoding of ``arch``; where the space has none, one-hot tokens.

    Both read the pruned architecture, so two table rows of one network encode alike.

    >>> from nao.spaces import get_space
    >>> nb201 = get_space("nb201")
    >>> float(encode(nb201, nb201.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")).sum())  # no path
    0.0
    """
    arch = space.prune(arch)
    paths = space.path_encoding(arch)
    if paths is not None:
        return np.asarray(paths, dtype=np.float32)
    onehot = np.zeros((space.length, space.vocab_size), dtype=np.float32)  # (L, V)
    onehot[np.arange(space.length), arch.tokens] = 1.0
    return onehot.reshape(-1)  # (L, V) -> (L*V,)


class MLPEnsemble:
    """``members`` independent ReLU MLPs held as stacked weights and trained in one batched pass.

    Each member has its own initialisation and its own mini-batch order; the loss is the sum of
    the members' losses, so (Adam being elementwise) each member trains as if alone.
    """

    def __init__(self, members: int, d_in: int, layers: int, width: int, gen: torch.Generator) -> None:
        dims = [d_in] + [width] * layers + [1]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = (6.0 / fan_in) ** 0.5  # He-uniform: keeps activations alive through 10 ReLU layers
            w = (torch.rand(members, fan_in, fan_out, generator=gen) * 2 - 1) * bound  # (E, in, out)
            self.weights.append(w.requires_grad_())
            self.biases.append(torch.zeros(members, 1, fan_out, requires_grad=True))  # (E, 1, out)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(E, B, D) -> (E, B) predictions."""
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)  # (E, B, in) @ (E, in, out) -> (E, B, out)
            if i < len(self.weights) - 1:
                x = torch.relu(x)
        return x.squeeze(-1)

    def fit(self, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
            gen: torch.Generator) -> None:
        """Train on ``x`` (N, D), ``y`` (N,) with the mean absolute error (the paper's loss)."""
        opt = torch.optim.Adam([*self.weights, *self.biases], lr=lr, foreach=True)  # one fused update, not 22
        members, n = self.weights[0].shape[0], x.shape[0]
        for _ in range(epochs):
            order = torch.stack([torch.randperm(n, generator=gen) for _ in range(members)])  # (E, N)
            for start in range(0, n, batch_size):
                idx = order[:, start:start + batch_size]  # (E, B)
                loss = (self(x[idx]) - y[idx]).abs().mean(1).sum()  # x[idx]: (E, B, D)
                opt.zero_grad()
                loss.backward()
                opt.step()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (E, N): every member's prediction."""
        return self(x.expand(self.weights[0].shape[0], *x.shape))


@STRATEGIES.register("bananas")
class Bananas(Strategy):
    """BANANAS with path encoding, an MLP ensemble, mutation candidates and ITS.

    Args:
        space: the search space.
        seed: seeds both the numpy and the torch generator.
        initial: random architectures before the first model (paper: 10).
        per_round: proposals per fitted ensemble (the paper's ``k`` = 10).
        ensemble: MLPs in the ensemble (paper: 5).
        candidates: mutated candidates scored per round (paper: 100).
        parents: how many of the best architectures are mutated (the paper says "the best
            architectures so far"; 10 is our choice, not tuned).
        layers, width, epochs, batch_size, lr: each MLP (paper's code: 10, 20, 200, 32, 0.01).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 10, per_round: int = 10,
                 ensemble: int = 5, candidates: int = 100, parents: int = 10, layers: int = 10, width: int = 20,
                 epochs: int = 200, batch_size: int = 32, lr: float = 0.01, **base: Any) -> None:
        super().__init__(space, seed, **base)
        for name, value in dict(initial=initial, per_round=per_round, ensemble=ensemble, candidates=candidates,
                                parents=parents, layers=layers, width=width, epochs=epochs,
                                batch_size=batch_size).items():
            if int(value) < 1:
                raise ConfigError(f"bananas option {name} must be >= 1, got {value}")
        self.initial, self.per_round, self.ensemble = initial, per_round, ensemble
        self.candidates, self.parents = candidates, parents
        self.layers, self.width, self.epochs, self.batch_size, self.lr = layers, width, epochs, batch_size, lr
        self.gen = torch.Generator().manual_seed(int(seed))
        self.rounds = 0
        self._asked_random = 0
        self._queue: list[Architecture] = []
        self._seen: set[Hashable] = set()  # network keys asked for or told
        self._scores: dict[Hashable, tuple[Architecture, float]] = {}  # network key -> told (arch, score)

    def ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            if self._asked_random < self.initial or len(self._finite()) < 2:
                batch = self.space.sample_distinct(self.rng, 1, self._seen, key=self.network_key)
                self._asked_random += 1
            else:
                if not self._queue:
                    self._queue = self._next_round()
                batch = [self._queue.pop(0)] if self._queue else []
            if not batch:
                break  # the space is exhausted
            if self.network_key(batch[0]) not in self._seen:
                self._seen.add(self.network_key(batch[0]))
                out.append(batch[0])
        return out

    def tell(self, results: Sequence[Result]) -> None:
        for r in results:
            key = self.network_key(r.arch)
            self._seen.add(key)
            self._scores[key] = (r.arch, self.score(r))

    # -- one round -----------------------------------------------------------------------
    def _finite(self) -> list[tuple[Architecture, float]]:
        """Told results that can be learned from (failed ones score -inf and are left out)."""
        return [(a, s) for a, s in self._scores.values() if np.isfinite(s)]

    def _next_round(self) -> list[Architecture]:
        """Fit the ensemble, mutate the best, keep the ``per_round`` best Thompson draws."""
        data = self._finite()
        archs = [a for a, _ in data]
        y = np.array([s for _, s in data])
        y = (y - y.mean()) / (y.std() + 1e-8)  # standardised targets: one lr fits any metric's scale
        x = torch.from_numpy(np.stack([encode(self.space, a) for a in archs]))  # (N, D)
        model = MLPEnsemble(self.ensemble, x.shape[1], self.layers, self.width, self.gen)
        model.fit(x, torch.from_numpy(y).float(), self.epochs, self.batch_size, self.lr, self.gen)
        cands = self._candidates([archs[i] for i in np.argsort(-y, kind="stable")[: self.parents]])
        if not cands:
            return []
        preds = model.predict(torch.from_numpy(np.stack([encode(self.space, a) for a in cands])))  # (E, C)
        mean, std = preds.mean(0).numpy(), preds.std(0).numpy()
        draws = self.rng.normal(mean, std)  # ITS: one independent posterior draw per candidate
        self.rounds += 1
        return [cands[i] for i in np.argsort(-draws, kind="stable")[: self.per_round]]

    def _candidates(self, parents: list[Architecture]) -> list[Architecture]:
        """Up to ``candidates`` unseen one-change mutations of ``parents``, topped up at random."""
        pool: dict[Hashable, Architecture] = {}
        for p in parents:
            for a in self.space.neighbours(p):
                if self.network_key(a) not in self._seen:
                    pool.setdefault(self.network_key(a), a)
        found = list(pool.values())
        if len(found) > self.candidates:
            found = [found[i] for i in sorted(self.rng.choice(len(found), self.candidates, replace=False))]
        if len(found) < self.per_round:  # the neighbourhood of the best is used up: explore
            found += self.space.sample_distinct(self.rng, self.per_round - len(found), self._seen | set(pool),
                                                key=self.network_key)
        return found
