"""What a run kind needs to search under a fidelity scheduler (kept here so kinds stay thin).

A kind whose evaluator can train a candidate further (``evaluate_at``: trained image and
language-model candidates, a two-fidelity table) takes ``fidelity`` (``none``, ``asha``, ``sh``,
``hyperband``) and ``eta`` settings; :func:`scheduler_for` validates them against the evaluator and
the budget and builds the scheduler (None for ``none``), :func:`make_study` builds the study
(a :class:`~nao.study.Study` or a :class:`~nao.fidelity.study.FidelityStudy`), and the NAO strategy
becomes :class:`~nao.fidelity.strategy.MultiFidelityNAO` (:func:`fidelity_strategy`).

>>> scheduler_for("none", 3.0, object(), 10) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nao.errors import ConfigError
from nao.fidelity.scheduler import SCHEDULERS, Scheduler, make_scheduler, plan_ladder
from nao.fidelity.strategy import MultiFidelityNAO
from nao.fidelity.study import FidelityStudy, check_ladder
from nao.results import Result
from nao.spaces.base import SearchSpace
from nao.strategies.base import Strategy
from nao.strategies.nao import NAOStrategy

FIDELITY_CHOICES = ("none", *SCHEDULERS)


def check_fidelity(fidelity: str | None, eta: float, max_fidelity: float, budget: int,
                   min_fidelity: float | None = None, whole: bool = False) -> tuple[float, ...] | None:
    """Validate a kind's fidelity settings before its run directory exists; the rungs (None for ``none``).

    >>> check_fidelity("asha", 3.0, 9, 20, whole=True)
    (1.0, 3.0, 9.0)
    >>> check_fidelity("asha", 3.0, 9, 4, whole=True)
    Traceback (most recent call last):
    ...
    nao.errors.ConfigError: --fidelity: a ladder of 3 rungs (1, 3, 9 epochs) with eta 3 needs --budget >= 9 candidates to promote one to the top rung; got 4
    >>> check_fidelity("asha", 3.0, 3, 20, min_fidelity=1 / 3)  # a lowest rung set by hand: 1/3, 1, 3 passes
    (0.3333333333333333, 1.0, 3.0)
    """
    if fidelity in (None, "none"):
        if min_fidelity is not None:  # a lowest rung without a ladder would be silently ignored
            raise ConfigError("--min-fidelity sets the lowest rung of a --fidelity ladder; add --fidelity asha|sh|hyperband")
        return None
    if fidelity not in SCHEDULERS:
        raise ConfigError(f"--fidelity: unknown scheduler {fidelity!r}; choose from {', '.join(FIDELITY_CHOICES)}")
    if min_fidelity is not None and not 0 < min_fidelity < max_fidelity:  # also refuses nan
        raise ConfigError(f"--min-fidelity must lie between 0 and the candidates' {max_fidelity:g} epochs (the top "
                          f"rung), exclusive; got {min_fidelity:g}")
    flag = "--fidelity" if min_fidelity is None else "--min-fidelity"  # the flag that set the lowest rung
    rungs = plan_ladder(float(max_fidelity), eta, min_fidelity, whole=whole, flag=flag)
    check_ladder(rungs, eta, budget)
    return rungs


def scheduler_for(fidelity: str, eta: float, evaluator: Any, budget: int, min_fidelity: float | None = None,
                  whole: bool = False) -> Scheduler | None:
    """The scheduler of a search (None for ``none``); ConfigError naming ``--fidelity`` for an evaluator that
    cannot train further, a ladder of one rung, or a ladder the budget cannot climb."""
    if fidelity in (None, "none"):
        return None
    if not hasattr(evaluator, "evaluate_at"):
        raise ConfigError(f"--fidelity {fidelity}: this kind's candidates cannot be trained further "
                          f"({type(evaluator).__name__}); use --fidelity none")
    rungs = check_fidelity(fidelity, eta, float(evaluator.max_fidelity), budget, min_fidelity, whole)
    return make_scheduler(fidelity, rungs, eta)


def fidelity_strategy(strategy: Strategy, space: SearchSpace, seed: int, max_fidelity: float,
                      options: dict[str, Any]) -> Strategy:
    """NAO under a scheduler learns from every rung (:class:`MultiFidelityNAO`); other strategies as they are."""
    if type(strategy) is NAOStrategy:
        return MultiFidelityNAO(space, seed=seed, max_fidelity=max_fidelity, objective=strategy.objective,
                                feasible=strategy.feasible, zero_cost=strategy.zero_cost, **options)
    return strategy


def make_study(search: Any, journal: Any, replay: Sequence[Result], callbacks: Sequence[Any], study_class: type):
    """``study_class`` (the plain Study) for a search without a scheduler, else a FidelityStudy on the same parts."""
    if search.scheduler is None:
        return study_class(search.space, search.strategy, search.evaluator, search.executor, journal=journal,
                           objective=search.objective, replay=replay, callbacks=callbacks)
    return FidelityStudy(search.space, search.strategy, search.evaluator, search.scheduler, search.executor,
                         journal=journal, objective=search.objective, replay=replay, callbacks=callbacks)
