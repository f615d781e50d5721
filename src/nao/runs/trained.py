"""What the trained kinds (``trained-cnn``, ``trained-rnn``) share: every candidate trained from scratch
through any executor, checkpointed per epoch in ``DIR/candidates/<id>/``, a final step, and the opt-in
zero-cost proxies (``--zero-cost``).

**Zero-cost proxies in a trained search.** With ``--zero-cost PROXIES`` the driver scores each candidate's
untrained network on one seeded minibatch of the run's own training split before it is trained (a live
:class:`~nao.proxies.source.ZeroCost`, memoised per pruned network and paid once each) and hands the same
object to the strategy (``nao`` ranks its seed pool and feeds its GP with the proxies, ``random-zc`` and
``local-zc`` need them). :class:`ProxyCharging` wraps the executor on the driver, so it works with every
executor: each journaled result carries the candidate's ``zc_<proxy>`` metrics, and the proxy seconds paid
since the previous result are added to its ``cost_s`` and, converted, to its ``cost``, so ``--max-cost`` and
``result.json``'s ``cost`` count them.

The conversion rule (seconds to the run's cost unit, ``image_epochs`` or ``token_epochs``): proxy seconds are
charged at the run's *measured training throughput*, ``rate = sum(cost) / sum(cost_s)`` over the training
results received so far (ok results with both positive, the proxy charges excluded), i.e. a proxy second costs
what one second of candidate training bought in this run. Seconds spent before any training result exists (the
NAO seed pool is scored before the first candidate trains) wait, and are charged to the first result that
gives a rate. Seconds are this process's, as the trainings' ``cost_s`` are their worker's, so the rule compares
like with like (on a GPU run both are GPU seconds when the driver scores on the GPU).

A caution, measured (``benchmarks/proxy_tau_trained.py``, 30 random cells each, one core): at the ``cpu``
presets' brief trainings every proxy ranks candidates *against* their trained score: Kendall tau -0.15 to -0.36
per proxy and -0.41 for the aggregate with CIFAR-10 ``val_acc`` after 1 epoch; -0.22 to -0.33 per gradient proxy
and -0.36 for their aggregate with PTB ``-val_ppl`` after one pass over 60k tokens. (On images, bigger and more
expressive cells, which the proxies prefer, learn less in one short epoch.) So proxies stay opt-in, and a
proxy-ranked seed pool is a bet on the final training, not on the search's own brief scores.

>>> TrainedKind.scores_from
'training'
>>> proxy_list(("params", "zico"))("all"), proxy_list(("params", "zico"))("zico, params")
(('params', 'zico'), ('zico', 'params'))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from nao.constraints import ConstrainedStrategy, Feasibility
from nao.errors import ConfigError
from nao.evaluators.base import Evaluator
from nao.executors import Executor
from nao.fidelity.runs import fidelity_strategy
from nao.fidelity.scheduler import make_scheduler
from nao.registry import STRATEGIES
from nao.results import Result
from nao.runs.flags import flag
from nao.runs.progress import CandidateProgress
from nao.runs.skeleton import RunContext, RunKind, Search
from nao.spaces.base import Architecture
from nao.strategies import check_strategy_options, make_strategy
from nao.threads import torch_threads

#: Where the candidates' checkpoints live inside a run directory.
CANDIDATES_DIR = "candidates"

#: A trained search's default proxy pools, per cell it takes from the pool: the NAO seed pool is picked from
#: ``ZC_POOL_PER_SEED * seed_archs`` scored cells (instead of the table default of 1,000), the ``random-zc`` /
#: ``local-zc`` pools hold ``ZC_POOL_PER_SEED * budget``; both capped at the strategies' own default. Why 5:
#: see :func:`zero_cost_options`.
ZC_POOL_PER_SEED = 5
#: The default minibatch of a trained search's proxies (images or token streams).
ZERO_COST_BATCH = 64


def proxy_list(every: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """The ``--zero-cost`` converter of a kind whose proxies are ``every``: ``all``, ``none`` / ``off``, or
    comma-separated names (checked by the kind's ``prepare``, so ``--set``/``--config`` values are too)."""

    def proxies(text: str) -> tuple[str, ...]:
        text = text.strip()
        if text.lower() == "all":
            return tuple(every)
        if text.lower() in ("", "none", "off"):
            return ()
        return tuple(n.strip() for n in text.split(",") if n.strip())

    return proxies


def zero_cost_flags(every: Sequence[str], unit: str) -> tuple:
    """``--zero-cost`` and ``--zero-cost-batch`` of a trained kind whose proxies are ``every``, cost in ``unit``."""
    return (
        flag("--zero-cost", type=proxy_list(every), metavar="PROXIES", group="zero-cost proxies",
             help=f"score every candidate before it trains with these zero-cost proxies (all, or comma-separated: "
                  f"{','.join(every)}) on a minibatch of the training split: nao ranks its seed pool and feeds its "
                  f"GP with them, random-zc/local-zc need them; results journal zc_<proxy>, and the scoring counts "
                  f"in the cost ({unit}, at the run's measured training throughput). Default: none"),
        flag("--zero-cost-batch", type=int, metavar="N", group="zero-cost proxies",
             help=f"the proxies' minibatch (default {ZERO_COST_BATCH}; at least 4)"),
    )


class ProxyCharging(Executor):
    """An executor (any: it runs on the driver) whose candidates are scored by ``zero_cost`` before they are
    handed to ``inner`` to train, and whose results carry their ``zc_<proxy>`` metrics and the proxy seconds
    paid since the previous charge, converted to the cost unit at the run's training throughput (the module
    docstring's rule). ``info`` records each charge: ``zc_s`` (seconds) and ``zc_cost`` (cost units).

    A resume replays the journal without training, and the strategy re-scores its pools: :meth:`credit` counts
    the journal's charges as already paid, so a resumed run pays again only proxy seconds beyond them.
    """

    def __init__(self, inner: Executor, zero_cost) -> None:
        self.inner, self.zero_cost = inner, zero_cost
        self._charged_s = 0.0  # proxy seconds charged to results so far
        self._train_cost = 0.0  # the trainings' cost and seconds: the throughput
        self._train_s = 0.0

    @property
    def capacity(self) -> int:  # type: ignore[override]
        return self.inner.capacity

    @property
    def pending(self) -> int:
        return self.inner.pending

    @property
    def rate(self) -> float | None:
        """Cost units per second of training so far (None before the first ok training result)."""
        return self._train_cost / self._train_s if self._train_cost > 0 and self._train_s > 0 else None

    def slots(self, evaluator: Evaluator) -> int:
        return self.inner.slots(evaluator)

    def submit(self, evaluator: Evaluator, archs: Sequence[Architecture]) -> None:
        self.zero_cost.scores(list(archs))  # before training: each network scored (and paid for) once
        self.inner.submit(evaluator, archs)

    def poll(self) -> list[Result]:
        results = self.inner.poll()
        for r in results:
            self._observe(r.cost, r.cost_s, r.ok)
        return [self._charge(r) for r in results]

    def credit(self, previous: Sequence[Result]) -> None:
        """Count the charges (and the training throughput) of a resumed run's journaled results."""
        for r in previous:
            zc_s, zc_cost = float(r.info.get("zc_s", 0.0)), float(r.info.get("zc_cost", 0.0))
            self._charged_s += zc_s
            self._observe(r.cost - zc_cost, r.cost_s - zc_s, r.ok)

    def close(self) -> None:
        self.inner.close()

    def _observe(self, cost: float, cost_s: float, ok: bool) -> None:
        if ok and cost > 0 and cost_s > 0:
            self._train_cost += cost
            self._train_s += cost_s

    def _charge(self, r: Result) -> Result:
        scores = self.zero_cost.scores([r.arch])[0]  # memoised: scored at submit (a cached result: now)
        metrics = {**r.metrics, **{f"zc_{n}": float(v) for n, v in zip(self.zero_cost.names, scores)}}
        due, rate = self.zero_cost.spent_s - self._charged_s, self.rate
        if due <= 0 or rate is None:  # nothing new, or no throughput yet: charged to a later result
            return replace(r, metrics=metrics)
        self._charged_s += due
        info = {**r.info, "zc_s": due, "zc_cost": due * rate}
        return replace(r, metrics=metrics, info=info, cost_s=r.cost_s + due, cost=r.cost + due * rate)


def zero_cost_options(strategy: str, options: dict[str, Any], budget: int) -> dict[str, Any]:
    """``options`` with a trained search's proxy pool defaults where the user set none.

    The table default (a 1,000-cell NAO seed pool) is the wrong size when every scored cell is a live network.
    Measured on one core (``benchmarks/proxy_tau_trained.py``): every proxy of one cell costs ~0.9 s (batch 64),
    a ``trained-cnn`` ``cpu`` candidate ~30 s to train (2 epochs of 15 s), a ``trained-rnn`` ``cpu`` one ~80 s,
    so 1,000 cells would cost ~30 cnn candidates, a third of that search's 100. ``ZC_POOL_PER_SEED`` = 5 cells
    per seed taken (when the strategy default turns the pool on; it is off today, DEFAULT_ZC_POOL) costs the cnn preset
    200 cells, ~6 candidates or 6% of its compute, and the rnn preset 100 cells, ~1 candidate (3%); the
    ``paper`` presets keep 1,000 (cap). ``random-zc`` / ``local-zc`` pools hold ``5 * budget`` cells: random-zc
    trains at most ``budget`` of them.
    """
    params = _constructor_params(strategy)
    out = dict(options)
    if "zc_pool" in params and "zc_pool" not in out:
        from nao.strategies.nao import DEFAULT_ZC_POOL

        seeds = int(out.get("seed_archs", params["seed_archs"].default))
        out["zc_pool"] = min(DEFAULT_ZC_POOL, ZC_POOL_PER_SEED * seeds)
    if STRATEGIES.get(strategy).needs_zero_cost and "pool" in params and "pool" not in out:
        from nao.strategies.zero_cost import DEFAULT_POOL

        out["pool"] = min(DEFAULT_POOL, ZC_POOL_PER_SEED * budget)
    return out


def _constructor_params(strategy: str) -> dict[str, inspect.Parameter]:
    params: dict[str, inspect.Parameter] = {}
    for klass in STRATEGIES.get(strategy).__mro__:  # a **base constructor passes options on to its base's
        sig = inspect.signature(klass.__init__).parameters
        for k, p in sig.items():
            params.setdefault(k, p)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
            break
    return params


class TrainedKind(RunKind):
    """What both trained kinds share: any executor, per-candidate checkpoints, a final step, proxies."""

    scores_from = "training"
    resumable_changes = ("executor", "budget", "threads")

    @classmethod
    def upgrade(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """A run written before ``--zero-cost`` existed ran without proxies: its settings say so explicitly."""
        return {"zero_cost": [], "zero_cost_batch": ZERO_COST_BATCH, **saved}

    def threads(self) -> AbstractContextManager:
        return torch_threads(self.config.threads)

    def check_strategy(self, check_proxies: Callable[[Sequence[str]], list[str]]) -> None:
        """The strategy's options and the zero-cost settings, before a run directory exists.

        ``check_proxies`` validates the proxy names for the kind (raising :class:`~nao.errors.NaoError`).
        A strategy that needs proxies is refused without ``--zero-cost``; its options are checked with a
        stand-in proxy source (its constructor refuses none at all).
        """
        cfg = self.config
        needs = STRATEGIES.get(cfg.strategy).needs_zero_cost
        if cfg.zero_cost:
            cfg.zero_cost = tuple(check_proxies(cfg.zero_cost))
        if cfg.zero_cost_batch < 4:
            raise ConfigError(f"--zero-cost-batch {cfg.zero_cost_batch}: the gradient proxies split the batch in "
                              f"two halves of at least 2, so it must be at least 4")
        if needs and not cfg.zero_cost:
            raise ConfigError(f"strategy {cfg.strategy} needs zero-cost proxies: add --zero-cost all (or a "
                              f"comma-separated list)")
        if not needs:
            check_strategy_options(cfg.strategy, cfg.strategy_options, self.space)
            return
        from nao.proxies.source import FunctionZeroCost

        check_strategy_options(cfg.strategy, cfg.strategy_options)  # names; then the values, with a stand-in
        stand_in = FunctionZeroCost(self.space, cfg.zero_cost, lambda a: ([0.0] * len(cfg.zero_cost), 0.0))
        try:
            STRATEGIES.get(cfg.strategy)(self.space, seed=0, zero_cost=stand_in, **cfg.strategy_options)
        except ConfigError:
            raise
        except (TypeError, ValueError) as err:
            raise ConfigError(f"strategy {cfg.strategy!r}: bad option value ({err})") from err

    def strategy(self, max_fidelity: float | None = None, feasibility: Feasibility | None = None,
                 zero_cost: Any = None) -> Any:
        """The configured strategy, ranking by the kind's objective; under a fidelity scheduler (``max_fidelity``
        given) NAO learns from every rung; with ``feasibility`` (a constraint) it proposes only what that accepts;
        with ``zero_cost`` it gets the proxies (and the trained pool defaults, :func:`zero_cost_options`)."""
        cfg = self.config
        options = dict(cfg.strategy_options)
        if zero_cost is not None:
            options = zero_cost_options(cfg.strategy, options, cfg.budget)
        strategy = make_strategy(cfg.strategy, self.space, seed=cfg.seed, objective=self.objective,
                                 feasible=None if feasibility is None else feasibility.accepts, zero_cost=zero_cost,
                                 **options)
        if max_fidelity is not None:
            strategy = fidelity_strategy(strategy, self.space, cfg.seed, max_fidelity, options)
        return strategy if feasibility is None else ConstrainedStrategy(strategy, feasibility)

    def scheduler(self) -> Any:
        """The fidelity scheduler of the run (None with ``--fidelity none``); rungs checked in prepare()."""
        rungs = getattr(self, "rungs", None)
        return None if rungs is None else make_scheduler(self.config.fidelity, rungs, self.config.eta)

    def resume_point(self, rundir, search: Search) -> tuple[list[Result], list[str]]:
        previous, notes = super().resume_point(rundir, search)
        if isinstance(search.executor, ProxyCharging):
            search.executor.credit(previous)
        return previous, notes

    def is_finished(self, result: dict[str, Any]) -> bool:
        return result.get("final", {}).get("status") == "ok"

    def progress(self, ctx: RunContext, search: Search, skip: Sequence[Result]) -> list[Callable[[Result], None]]:
        if ctx.quiet:
            return []
        return [CandidateProgress(ctx.say, search.objective, search.strategy, search.executor, search.budget,
                                  skip=skip)]

    def close(self) -> None:
        if getattr(self, "executor", None) is not None:
            self.executor.close()
