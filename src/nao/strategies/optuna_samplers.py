"""Peers through their own code: Optuna's TPE and GP samplers driven by ask/tell (``optuna-tpe``, ``optuna-gp``).

An architecture is one categorical parameter per token position (``x00``, ``x01``, ...), whose
choices are the tokens the space allows there (:meth:`~nao.spaces.base.SearchSpace.allowed_tokens`).
Every space of the library is a product of per-position choices (no combination of allowed
tokens is invalid), so every trial Optuna proposes is an architecture of the space as it stands:
nothing needs repairing.

Optuna is used with its documented defaults: ``TPESampler(seed=s)`` (``n_startup_trials=10``
random trials, ``n_ei_candidates=24``, multivariate TPE (``multivariate=None``: on for a single
objective in Optuna 5.1.0, the version measured), ``constant_liar=True`` for trials still running) and ``GPSampler(seed=s)``
(``n_startup_trials=10``, noisy objective: ``deterministic_objective=False``). The seed ``s`` is
drawn from the strategy's generator. The study maximises the Study's objective as the strategy
scores it (negated for a minimised metric); a failed evaluation is told as a failed trial.

Duplicates: Optuna may re-propose an architecture whose network (after pruning, as for every
strategy: :meth:`~nao.strategies.base.Strategy.network_key`) was already evaluated. The budget
counts unique evaluations, so such a trial is answered at once with the known value, at no cost,
as an Optuna objective that caches its results would (Optuna's FAQ on duplicated samples), and
Optuna is asked again. After ``max_repeats`` such answers in a row the strategy falls back to a
random architecture nobody asked for, enqueued into Optuna as a trial (so Optuna learns its
value too); :attr:`OptunaStrategy.n_fallbacks` counts those. The second re-proposal of *failed*
networks (or ones a constraint refused) within one ask falls back at once: Optuna's samplers
ignore failed trials, so such a proposal tends to come back (GP's does, deterministically) and
nothing is learnt from answering it again. A proposal whose network is still
being evaluated (parallel workers) waits for that result as a running trial.

Resume: Optuna's samplers are deterministic for a seed and a sequence of told values, so the
strategy is rebuilt from its seed and the Study's replay of the journal reproduces it; results
told for architectures it never asked for (a resumed parallel run) are added as finished trials.

Needs the ``optuna`` extra (``pip install 'nao[optuna]'``).

>>> from nao.spaces import get_space
>>> s = OptunaTPE(get_space("nb201"), seed=0)
>>> len(s.ask(2)), s.study.sampler.__class__.__name__
(2, 'TPESampler')
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from nao.errors import ConfigError
from nao.registry import STRATEGIES
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies.base import Strategy


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("the optuna-tpe / optuna-gp strategies need Optuna: pip install 'nao[optuna]'") from None
    return optuna


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna logs every finished trial at INFO and warns about experimental features; a search
    makes thousands of trials, so its logger is raised to WARNING while we call it, then restored."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="optuna")
            yield
    finally:
        logger.setLevel(level)


class OptunaStrategy(Strategy):
    """Drives an Optuna sampler through ``Study.ask`` / ``Study.tell``.

    Args:
        space: the search space.
        seed: seeds the strategy's generator, which draws Optuna's sampler seed and the fallbacks.
        n_startup_trials: random trials before the model is used (Optuna's default: 10).
        max_repeats: already-evaluated proposals answered in a row before falling back to a random
            unseen architecture.
    """

    sampler_name: ClassVar[str] = "tpe"

    def __init__(self, space: SearchSpace, seed: int = 0, n_startup_trials: int = 10, max_repeats: int = 20, **base: Any) -> None:
        super().__init__(space, seed, **base)
        optuna = _optuna()
        if n_startup_trials < 0 or max_repeats < 0:
            raise ConfigError(f"optuna-{self.sampler_name}: n_startup_trials and max_repeats must be >= 0")
        self.max_repeats = max_repeats
        self.n_fallbacks = 0  # random architectures used because Optuna kept re-proposing known ones
        self.n_repeats = 0  # Optuna proposals answered from what was already evaluated
        self._names = [f"x{i:02d}" for i in range(space.length)]
        self._dists = {n: optuna.distributions.CategoricalDistribution([int(t) for t in space.allowed_tokens(i)])
                       for i, n in enumerate(self._names)}
        sampler_seed = int(self.rng.integers(2**31 - 1))
        with _quiet():
            self.study = optuna.create_study(direction="maximize", sampler=self._sampler(optuna, sampler_seed,
                                                                                         n_startup_trials))
        self._values: dict[Hashable, float | None] = {}  # network key -> told value (None: failed)
        self._waiting: dict[Hashable, list[int]] = {}  # network key -> running trial numbers

    def _sampler(self, optuna: Any, seed: int, n_startup_trials: int) -> Any:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)

    # -- ask ---------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        with _quiet():
            while len(out) < n:
                arch = self._propose()
                if arch is None:
                    break
                out.append(arch)
        return out

    def _propose(self) -> Architecture | None:
        failed_repeats = 0
        for _ in range(self.max_repeats + 1):
            trial = self.study.ask(self._dists)
            arch = self.space.make([trial.params[name] for name in self._names])
            key = self.network_key(arch)
            if key in self._values:  # evaluated already: Optuna hears the value, no budget is spent
                self.n_repeats += 1
                self._finish(trial.number, self._values[key])
                failed_repeats += self._values[key] is None
                if failed_repeats >= 2:
                    # Optuna's samplers ignore failed trials, so a sampler that re-proposes a failed cell tends to
                    # do it again (GP does, deterministically) and learns nothing from it: fall back now.
                    return self._fallback()
            elif key in self._waiting:  # being evaluated: this trial waits for that result
                self._waiting[key].append(trial.number)
            else:
                self._waiting[key] = [trial.number]
                return arch
        return self._fallback()

    def _fallback(self) -> Architecture | None:
        known = {*self._values, *self._waiting}
        fresh = self.space.sample_distinct(self.rng, 1, known, key=self.network_key)
        if not fresh:
            return None  # the space is (nearly) exhausted
        arch = fresh[0]
        self.n_fallbacks += 1
        self.study.enqueue_trial(self._params(arch))
        trial = self.study.ask(self._dists)
        self._waiting[self.network_key(arch)] = [trial.number]
        return arch

    # -- tell --------------------------------------------------------------------------------
    def tell(self, results: Sequence[Result]) -> None:
        optuna = _optuna()
        with _quiet():
            for r in results:
                key = self.network_key(r.arch)
                score = self.score(r)
                value = score if math.isfinite(score) else None
                trials = self._waiting.pop(key, None)
                if trials is None:
                    if key in self._values:
                        continue  # told again (the Study answers repeated asks): Optuna has it
                    # Never asked (a resumed parallel run hands its journal over): a finished trial.
                    state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
                    self.study.add_trial(optuna.trial.create_trial(
                        params=self._params(r.arch), distributions=self._dists, value=value, state=state))
                else:
                    for number in trials:
                        self._finish(number, value)
                self._values[key] = value

    def _finish(self, number: int, value: float | None) -> None:
        if value is None:
            self.study.tell(number, state=_optuna().trial.TrialState.FAIL)
        else:
            self.study.tell(number, value)

    def _params(self, arch: Architecture) -> dict[str, int]:
        return dict(zip(self._names, (int(t) for t in arch.tokens)))


@STRATEGIES.register("optuna-tpe")
class OptunaTPE(OptunaStrategy):
    """Optuna's ``TPESampler`` with its defaults (multivariate TPE, 10 random startup trials).

    Args:
        space: the search space.
        seed: seeds the strategy (and, through it, the sampler).
        n_startup_trials: Optuna's default, 10.
        max_repeats: known proposals answered in a row before a random fallback.
    """

    sampler_name = "tpe"

    def __init__(self, space: SearchSpace, seed: int = 0, n_startup_trials: int = 10, max_repeats: int = 20, **base: Any) -> None:
        super().__init__(space, seed, n_startup_trials, max_repeats, **base)


@STRATEGIES.register("optuna-gp")
class OptunaGP(OptunaStrategy):
    """Optuna's ``GPSampler`` with its defaults (10 random startup trials, a noisy objective).

    Args:
        space: the search space.
        seed: seeds the strategy (and, through it, the sampler).
        n_startup_trials: Optuna's default, 10.
        max_repeats: known proposals answered in a row before a random fallback.
    """

    sampler_name = "gp"

    def __init__(self, space: SearchSpace, seed: int = 0, n_startup_trials: int = 10, max_repeats: int = 20, **base: Any) -> None:
        super().__init__(space, seed, n_startup_trials, max_repeats, **base)

    def _sampler(self, optuna: Any, seed: int, n_startup_trials: int) -> Any:
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)
