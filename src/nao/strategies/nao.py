"""The NAO strategy: fit the encoder-predictor-decoder, improve the best architectures, repeat.

A round fits an ensemble of controllers on every architecture evaluated so far (targets
normalised per round), moves the top-k architectures' encoder states along each
predictor's gradient with growing step sizes until enough new architectures are decoded,
ranks the decoded candidates by the ensemble's mean prediction and proposes the best few.
The first proposals are a small random seed pool (10); rounds then grow with the pool
(a quarter of it, up to 10 per round), so the controller starts steering after a handful
of labels instead of waiting for a large random pool, and refits often while each label
still changes it much. Half of each adaptive round goes to the incumbent's unseen
one-change neighbours that the same ensemble predicts best, the other half to decoded
candidates (``neighbour_share``). In adaptive rounds the decoded half is pooled with as many
random unseen cells and ranked by expected improvement under a Gaussian process on the
controllers' embeddings (``acquisition``): the predictor exploits the incumbent's
neighbourhood, the GP's uncertainty sends the other half to basins no label has reached.
Controllers are warm-started from the previous round (the official code also keeps one
controller across iterations).

>>> from nao.spaces import get_space
>>> s = NAOStrategy(get_space("nb201"), seed=0, seed_archs=4)
>>> len(s.ask(10))  # the seed pool first
4
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nao.controller.adam import Adam
from nao.controller.config import ControllerConfig, for_space
from nao.controller.fit import (
    DEFAULT_FIT_STEPS,
    epochs_for_steps,
    fit,
    make_optimizer,
    pretrain_on_space,
    semi_supervised_fit,
)
from nao.controller.generate import (
    Candidate,
    embeddings,
    improve_candidates,
    neighbour_candidates,
    predict_mean_std,
    rank_candidates,
)
from nao.controller.gp import GaussianProcess, fit_gp
from nao.controller.model import EncoderPredictorDecoder
from nao.errors import ConfigError
from nao.registry import STRATEGIES
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy
from nao.threads import torch_threads

# Controllers per round; ``nao predict-eval`` uses the same default.
DEFAULT_ENSEMBLE = 1
# Largest adaptive round: later rounds propose this many (the previous fixed default).
MAX_ROUND = 10
# Share of an adaptive round given to the incumbent's best-predicted one-change neighbours: half
# exploits the best cell's neighbourhood (where local search finds its gains on clustered
# landscapes), half follows the predictor's gradient (which keeps finding better basins late).
DEFAULT_NEIGHBOUR_SHARE = 0.5
# Ways a round ranks its candidates (see the ``acquisition`` option).
ACQUISITIONS = ("mean", "ei")
# Cells scored by the zero-cost proxies to choose the seed pool from (option ``zc_pool``). Off by default: on
# NB201's 12-epoch landscape, where the proxies rank cells far worse than on the 200-epoch one (Spearman 0.54 vs
# 0.82), every proxy-chosen seed pool measured (top 8 or top 5 of 1,000, with or without GP features) ends 0.14-0.31
# below NAO's random pool from 50 queries on, while on the 200-epoch table it gains at most 0.13 (BENCHMARKS.md,
# issue 29). 1,000 is the value measured: ~15 CPU-minutes of scoring, a third of one 200-epoch training.
DEFAULT_ZC_POOL = 0
# Share of the seed pool drawn at random from the rest of that pool (2 of 10).
DEFAULT_ZC_RANDOM = 0.2


@dataclass
class _Record:
    order: int  # position in proposal order: training data never depends on tell chunking
    arch: Architecture
    value: float | None = None  # None until told; -inf for failed evaluations


@STRATEGIES.register("nao")
class NAOStrategy(Strategy):
    """Neural Architecture Optimization as an ask/tell strategy.

    Args:
        space: the search space.
        seed: seeds every random choice (sampling, initialisation, shuffling, dropout).
        seed_archs: random architectures evaluated before the first controller fit.
        per_round: architectures proposed per round (the best-predicted candidates). None
            (default): adaptive, ``ceil(round_fraction * evaluated)`` capped at
            :data:`MAX_ROUND`: early rounds are small, so the controller is refitted after
            every few labels while each label changes it most. An explicit number fixes the
            round size (the NAO-WS and training presets' schedules, e.g. 300 per round).
        round_fraction: the adaptive round's share of the evaluated pool.
        top_k: best evaluated architectures whose embeddings are improved each round.
        candidates: new architectures each controller must decode per round before ranking.
        local_top: the one-change neighbours of this many best evaluated architectures join
            the decoded candidates (0: decoded candidates only, as the paper).
        ensemble: controllers trained per round (different initialisations).
        explore: candidates are ranked by ``mean + explore * std`` of the ensemble's
            predictions (needs ``ensemble >= 2`` to matter).
        acquisition: how a round ranks its decoded candidates: ``"mean"`` (the predictor's
            score, the paper) or ``"ei"`` (expected improvement under a Gaussian process
            fitted on the controllers' embeddings of the evaluated cells,
            :mod:`nao.controller.gp`: far from every label it is uncertain, where the MLP
            predictor extrapolates). The neighbour half is always ranked by the predictor.
            None (default): ``"ei"`` with adaptive rounds, ``"mean"`` with an explicit schedule.
        random_pool: random unseen architectures added to each round's decoded candidates
            before ranking (scaled like ``candidates`` in small rounds); with ``"ei"`` they are
            how a round reaches basins that no gradient step from the top cells leads to.
            None (default): as many as ``candidates`` with adaptive rounds, 0 with an explicit
            schedule.
        semi_supervised: SemiNAS (Luo et al., 2020): after each fit, pseudo-label this many
            random unevaluated architectures with the controllers and train on both (0: off).
        zc_pool: with zero-cost proxies (the run's ``zero_cost``; ignored without): the seed pool is
            chosen from this many random cells, scored by the proxies (each paid for) and ranked by their
            label-free aggregate; 0 (default, see :data:`DEFAULT_ZC_POOL` for the measurement behind it): a
            plain random seed pool. 1,000 helps a short search on a landscape the proxies rank well.
        zc_random: share of the seed pool drawn at random from the rest of that pool instead of from its
            top, so the first fit also sees cells the proxies rate poorly (the predictor learns the
            space's range, not only its proxy-favoured corner).
        zc_features: with zero-cost proxies, the GP of an ``"ei"`` round reads each cell's proxy quantiles
            beside its embedding (:mod:`nao.proxies.aggregate`). Off by default: it lifts the GP's ranking
            (Kendall tau +0.04 at 100 labels) but not the search (level with the pool alone on NB201).
        controller: :class:`ControllerConfig` or dict of overrides of the space's default
            (:func:`nao.controller.config.for_space`).
        fit_steps: gradient steps of the first fit (epochs follow from the pool size).
        refit_steps: gradient steps of later, warm-started fits.
        warm_start: continue training the previous round's controllers instead of new ones.
        device: where the controllers live.
        threads: torch intra-op threads while fitting/decoding (None: leave torch's setting).
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        *,
        seed_archs: int = 10,
        per_round: int | None = None,
        round_fraction: float = 0.25,
        top_k: int = 10,
        candidates: int = 100,
        local_top: int = 0,
        neighbour_share: float | None = None,
        ensemble: int = DEFAULT_ENSEMBLE,
        explore: float = 0.0,
        acquisition: str | None = None,
        random_pool: int | None = None,
        semi_supervised: int = 0,
        zc_pool: int = DEFAULT_ZC_POOL,
        zc_random: float = DEFAULT_ZC_RANDOM,
        zc_features: bool = False,
        controller: ControllerConfig | dict[str, Any] | None = None,
        fit_steps: int = DEFAULT_FIT_STEPS,
        refit_steps: int = 50,
        warm_start: bool = True,
        device: str = "cpu",
        threads: int | None = 1,
        **base: Any,
    ) -> None:
        super().__init__(space, seed, **base)
        for name, value in (("seed_archs", seed_archs), ("per_round", 1 if per_round is None else per_round), ("top_k", top_k),
                            ("candidates", candidates), ("ensemble", ensemble),
                            ("fit_steps", fit_steps), ("refit_steps", refit_steps)):
            if int(value) < 1:
                raise ConfigError(f"nao strategy option {name} must be >= 1, got {value}")
        if not 0.0 <= zc_random <= 1.0:
            raise ConfigError(f"nao strategy option zc_random must be in [0, 1], got {zc_random}")
        for name, value in (("local_top", local_top), ("semi_supervised", semi_supervised), ("explore", explore),
                            ("zc_pool", zc_pool),
                            ("neighbour_share", neighbour_share or 0.0), ("random_pool", random_pool or 0)):
            if value < 0:
                raise ConfigError(f"nao strategy option {name} must be >= 0, got {value}")
        if neighbour_share is not None and neighbour_share > 1.0:
            raise ConfigError(f"nao strategy option neighbour_share must be in [0, 1], got {neighbour_share}")
        if not 0.0 < round_fraction <= 1.0:
            raise ConfigError(f"nao strategy option round_fraction must be in (0, 1], got {round_fraction}")
        if acquisition is not None and acquisition not in ACQUISITIONS:
            raise ConfigError(f"nao strategy option acquisition must be one of {', '.join(ACQUISITIONS)}, "
                              f"got {acquisition!r}")
        if isinstance(controller, dict):
            controller = for_space(space).override(controller)
        self.cfg = controller or for_space(space)
        self.seed_archs, self.top_k = int(seed_archs), int(top_k)
        self.per_round = None if per_round is None else int(per_round)
        self.candidates, self.ensemble = int(candidates), int(ensemble)
        self.round_fraction, self.local_top, self.explore = float(round_fraction), int(local_top), float(explore)
        # Exploiting the incumbent's neighbourhood is this library's sample-efficient default (adaptive
        # rounds); an explicit schedule is the paper's NAO (NAO-WS, training presets): decoded only.
        if neighbour_share is None:
            neighbour_share = DEFAULT_NEIGHBOUR_SHARE if per_round is None else 0.0
        self.neighbour_share = float(neighbour_share)
        self.semi_supervised = int(semi_supervised)
        self.zc_pool, self.zc_random, self.zc_features = int(zc_pool), float(zc_random), bool(zc_features)
        # The same split for the decoded half: adaptive rounds rank it (and as many random unseen cells
        # as decoded ones) by expected improvement under a GP on the embeddings; the paper ranks the
        # decoded candidates by the predictor alone.
        adaptive = per_round is None
        self.acquisition = acquisition or ("ei" if adaptive else "mean")
        self.random_pool = int(random_pool if random_pool is not None else (self.candidates if adaptive else 0))
        self._gp: GaussianProcess | None = None
        self.fit_steps, self.refit_steps, self.warm_start = int(fit_steps), int(refit_steps), warm_start
        self.device, self.threads = device, threads
        self._records: dict[Hashable, _Record] = {}
        self._queue: list[Architecture] = []
        self._models: list[EncoderPredictorDecoder] = []
        self._optimizers: list[Adam] = []
        self._predicted: dict[Hashable, float] = {}  # key -> prediction made when it was proposed
        self._round_of: dict[Hashable, int] = {}  # key -> round that proposed it (predictions share its scale)
        self.rounds = 0
        self.last_fit_predictions: list[tuple[Architecture, float, float]] = []

    # -- ask / tell ----------------------------------------------------------------------------
    def ask(self, n: int) -> list[Architecture]:
        if not self._queue and not self._outstanding():
            self._queue = self._next_batch()
        out, self._queue = self._queue[:n], self._queue[n:]
        for arch in out:
            self._note(arch)
        return out

    def tell(self, results: Sequence[Result]) -> None:
        for r in results:
            rec = self._note(r.arch)
            rec.value = self.score(r)

    def round_left(self) -> int:
        # The seed pool counts as round 0: its proposals are drawn together too.
        return len(self._queue)

    # -- state -----------------------------------------------------------------------------
    @property
    def history_predictions(self) -> list[tuple[Architecture, float, float]]:
        """(arch, predicted, true) for every controller proposal evaluated so far.

        ``predicted`` is in the controllers' normalised target scale of the round that
        proposed it (only its order is meaningful); ``true`` is the evaluated score.
        """
        out = []
        for key, pred in self._predicted.items():
            rec = self._records.get(key)
            if rec is not None and rec.value is not None and np.isfinite(rec.value):
                out.append((rec.arch, pred, rec.value))
        return out

    def proposal_round(self, arch: Architecture) -> int | None:
        """The round (0-based) whose controller proposed ``arch``; None for random seeds."""
        return self._round_of.get(self.space.key(arch))

    def _note(self, arch: Architecture) -> _Record:
        key = self.space.key(arch)
        if key not in self._records:
            self._records[key] = _Record(len(self._records), arch)
        return self._records[key]

    def _outstanding(self) -> bool:
        return any(r.value is None for r in self._records.values())

    def _evaluated(self) -> tuple[list[Architecture], np.ndarray]:
        recs = sorted((r for r in self._records.values() if r.value is not None and np.isfinite(r.value)),
                      key=lambda r: r.order)
        return [r.arch for r in recs], np.array([r.value for r in recs], dtype=float)

    # -- rounds ----------------------------------------------------------------------------
    def _next_batch(self) -> list[Architecture]:
        # A constrained search's seed pool is seed_archs *feasible* cells (_random_unseen filters): the
        # first fit gets as many labels whatever share of the space is feasible. (Sampling the feasible
        # region only as densely as the unconstrained pool samples the space left ~3 seeds under a
        # tight bound, and 6 of 30 seeds stuck in a poor basin: BENCHMARKS.md, issue 16.)
        n_seed = self.seed_archs - len(self._records)
        if n_seed > 0:
            if self.zero_cost is not None and self.zc_pool > 0:
                return self._zero_cost_seeds(n_seed)
            return self._random_unseen(n_seed, set())
        return self._next_round()

    def _zero_cost_seeds(self, n: int) -> list[Architecture]:
        """``n`` seeds from ``zc_pool`` random cells: the aggregate's best, and a ``zc_random`` share of the rest."""
        assert self.zero_cost is not None
        pool = self._random_unseen(max(self.zc_pool, n), set())
        self.zero_cost.set_reference(pool)  # a uniform sample of the space: the features' fixed yardstick
        order = np.argsort(-self.zero_cost.aggregate(pool), kind="stable")
        n_random = min(int(round(self.zc_random * n)), max(len(pool) - n, 0))
        top = [pool[i] for i in order[: n - n_random]]
        rest = order[n - n_random:]
        picked = self.rng.choice(len(rest), size=n_random, replace=False) if n_random else []
        return top + [pool[rest[i]] for i in sorted(picked)]

    def _next_round(self) -> list[Architecture]:
        archs, values = self._evaluated()
        size = self.round_size(len(archs))
        if len(archs) < 2:  # nothing to learn from yet (failures): keep exploring
            return self._random_unseen(size, set())
        with torch_threads(self.threads):
            self._fit(archs, values, size)
            batch = self._propose(archs, values, size)
        self.rounds += 1
        return batch

    def round_size(self, n_evaluated: int) -> int:
        """Proposals of the next round for a pool of ``n_evaluated`` architectures."""
        if self.per_round is not None:
            return self.per_round
        return max(1, min(MAX_ROUND, math.ceil(self.round_fraction * n_evaluated)))

    def _share(self, size: int) -> float:
        """An adaptive round of ``size`` proposals does this share of a full round's controller work.

        Its warm-started refit takes that share of ``refit_steps`` and it decodes that share
        of ``candidates`` (the same proportion of candidates is proposed), so small early
        rounds feed labels back sooner without making a run's controller cost grow.
        """
        return 1.0 if self.per_round is not None else min(1.0, size / MAX_ROUND)

    def _fit(self, archs: list[Architecture], values: np.ndarray, size: int) -> None:
        first = not self._models or not self.warm_start
        if first:
            self._models = [
                EncoderPredictorDecoder(self.space, self.cfg, seed=int(self.rng.integers(2**31)), device=self.device)
                for _ in range(self.ensemble)
            ]
            self._pretrain()
            self._optimizers = [make_optimizer(m) for m in self._models]
        steps = self.fit_steps if first else max(1, round(self.refit_steps * self._share(size)))
        epochs = epochs_for_steps(steps, len(archs), self.cfg.batch_size)
        for model, opt in zip(self._models, self._optimizers):
            fit(model, archs, values, self.rng, epochs=epochs, optimizer=opt)
        if self.semi_supervised:
            taken = {self.network_key(r.arch) for r in self._records.values()}
            unlabelled = self.space.sample_distinct(self.rng, self.semi_supervised, taken, key=self.network_key)
            semi_supervised_fit(self._models, archs, values, unlabelled, self.rng, steps, self._optimizers)
        preds = np.mean([m.predict(m.tokens(archs)).cpu().numpy() for m in self._models], axis=0)
        self.last_fit_predictions = [(a, float(p), float(v)) for a, p, v in zip(archs, preds, values)]
        self._gp = fit_gp(self._gp_inputs(archs), torch.as_tensor(values)) if self.acquisition != "mean" else None

    def _gp_inputs(self, archs: list[Architecture]) -> torch.Tensor:
        """The GP's view of ``archs``: the controllers' embeddings, and with proxies their quantile features.

        The feature block is scaled to at most unit norm, like the unit-norm embedding, so neither half
        dominates the kernel's distances.
        """
        emb = embeddings(self._models, archs)
        if self.zero_cost is None or not self.zc_features:
            return emb
        feats = torch.as_tensor(self.zero_cost.features(archs), dtype=emb.dtype)
        return torch.cat([emb, feats / math.sqrt(feats.shape[1])], dim=1)

    def _rank(self, cands: list[Candidate]) -> list[Candidate]:
        """``cands`` best first by the round's acquisition (stable: ties keep their order)."""
        if self._gp is None or not cands:
            return cands
        score = self._gp.log_ei(self._gp_inputs([c.arch for c in cands])).numpy()
        return [cands[i] for i in np.argsort(-score, kind="stable")]

    def _pretrain(self) -> None:
        """Teach the first controller's autoencoder the space, then share it with the others."""
        first = self._models[0]
        if not pretrain_on_space(first, self.rng):
            return
        for other in self._models[1:]:
            other.encoder.load_state_dict(first.encoder.state_dict())
            other.decoder.load_state_dict(first.decoder.state_dict())

    def _propose(self, archs: list[Architecture], values: np.ndarray, size: int) -> list[Architecture]:
        # Also skip networks equal to an evaluated one under pruning (another table row of
        # the same function would spend a query to learn nothing new).
        seen = set(self._records) | {self.network_key(r.arch) for r in self._records.values()}
        order = np.argsort(-values, kind="stable")
        top = [archs[i] for i in order[: self.top_k]]
        near = self._near_incumbent(top, int(self.neighbour_share * size + 0.5), seen)
        seen = seen | {k for c in near for k in (self.space.key(c.arch), self.network_key(c.arch))}
        n_new = max(size, math.ceil(self.candidates * self._share(size)))
        cands = improve_candidates(self._models, top, n_new, seen, self.local_top, self.explore)
        if self.random_pool:
            cands += self._random_candidates(math.ceil(self.random_pool * self._share(size)), seen, cands)
        if self.feasible is not None:  # a constrained search: rank only the decodable feasible ones
            cands = [c for c in cands if self.feasible(c.arch)]
        cands = self._rank(cands)
        chosen = near + cands[: size - len(near)]
        batch = [c.arch for c in chosen]
        for c in chosen:
            self._predicted[self.space.key(c.arch)] = c.predicted
            self._round_of[self.space.key(c.arch)] = self.rounds
        if len(batch) < size:  # the decoder ran dry (tiny or exhausted space): explore
            taken = seen | {self.network_key(a) for a in batch}
            batch += self._random_unseen(size - len(batch), taken)
        return batch

    def _near_incumbent(self, top: list[Architecture], n: int, seen: set[Hashable]) -> list[Candidate]:
        """The ``n`` best-predicted unseen one-change neighbours of ``top``, best architecture's first.

        Neighbours of the incumbent come first, ranked by the ensemble; only when its unseen
        neighbourhood is used up do the next best architectures' neighbours fill in. On landscapes
        where good cells cluster this is the step local search would take, ordered by the
        predictor instead of at random; the decoded candidates keep the rest of the round.
        """
        taken, out = set(seen), []
        for arch in top:
            if len(out) >= n:
                break
            nbrs = neighbour_candidates(self.space, [arch], taken)
            if self.feasible is not None:
                nbrs = [a for a in nbrs if self.feasible(a)]
            out += rank_candidates(self._models, [(a, 0.0) for a in nbrs], self.explore)[: n - len(out)]
        return out

    def _random_candidates(self, n: int, seen: set[Hashable], cands: list[Candidate]) -> list[Candidate]:
        """``n`` random unseen architectures (not among ``cands``) as step-0 candidates, predictor-scored."""
        taken = set(seen) | {k for c in cands for k in (self.space.key(c.arch), self.network_key(c.arch))}
        archs = self._random_unseen(n, taken)
        mean, std = predict_mean_std(self._models, archs)
        return [Candidate(a, 0.0, float(p)) for a, p in zip(archs, mean + self.explore * std)]

    def _random_unseen(self, n: int, taken: set[Hashable]) -> list[Architecture]:
        """Up to ``n`` random architectures whose networks (pruned keys) are neither recorded nor in ``taken``
        (and, in a constrained search, that are feasible)."""
        recorded = {self.network_key(r.arch) for r in self._records.values()}
        return self.space.sample_distinct(self.rng, n, set(taken) | recorded, key=self.network_key,
                                          accept=self.feasible)
