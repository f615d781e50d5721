"""Constrained search: only propose architectures whose known-in-advance cost satisfies a bound.

A :class:`Constraint` such as ``params_m<=0.5`` names a metric that is known *before* an
architecture is evaluated (for a tabular benchmark: a column like ``params_m`` or
``train_time_s``). A *cost model* maps an architecture to that metric's value; a
:class:`ConstrainedStrategy` wraps any strategy and filters its proposals through it: an
infeasible proposal is never evaluated and never counted against the budget. The wrapped
strategy is told it failed ("infeasible"), so it scores ``-inf``, is never proposed again
and is never learned from as a good architecture. The wrapper records how many proposals
were rejected.

>>> c = Constraint.parse("params_m<=0.5")
>>> c.metric, c.op, c.bound, c.holds(0.4), c.holds(0.6)
('params_m', '<=', 0.5, True, False)
>>> Constraint.parse("params_m=0.5")
Traceback (most recent call last):
...
nao.errors.ConfigError: --constraint 'params_m=0.5': expected METRIC<=NUMBER (or <, >=, >), e.g. params_m<=0.5
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nao.errors import ConfigError
from nao.results import Result
from nao.spaces.base import Architecture, SearchSpace
from nao.strategies import make_strategy
from nao.strategies.base import Strategy

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}
# Two-character operators first so "<=" is not read as "<" followed by "=0.5".
_PATTERN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*\Z")

#: Table columns known before an architecture is trained (accuracies are not: they are the result).
COST_COLUMNS = ("params_m", "train_time_s")


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``, e.g. ``params_m <= 0.5``.

    Attributes:
        metric: the constrained quantity (a cost column of the benchmark).
        op: one of ``<=``, ``<``, ``>=``, ``>``.
        bound: the number it is compared with.
    """

    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str, metrics: Sequence[str] | None = None) -> Constraint:
        """Read ``METRIC(<=|<|>=|>)NUMBER``; ``metrics``, if given, are the names allowed.

        Raises :class:`ConfigError` (one line naming the text) when malformed or the metric unknown.
        """
        m = _PATTERN.match(text)
        if not m:
            raise ConfigError(f"--constraint {text!r}: expected METRIC<=NUMBER (or <, >=, >), e.g. params_m<=0.5")
        metric, op, bound = m.group(1), m.group(2), float(m.group(3))
        if not math.isfinite(bound):
            raise ConfigError(f"--constraint {text!r}: the bound must be a finite number")
        if metrics is not None and metric not in metrics:
            known = ", ".join(metrics) or "none"
            raise ConfigError(f"--constraint {text!r}: unknown metric {metric!r}; known before evaluation: {known}")
        return cls(metric, op, bound)

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint (NaN never does)."""
        return _OPS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"


#: A cost model: the constrained metric of an architecture, or ``None`` when it is not known.
CostModel = Callable[[Architecture], "float | None"]


def table_cost(table, metric: str) -> CostModel:
    """The cost model of a :class:`~nao.evaluators.tabular.TabularBenchmark`: ``metric``'s column by row.

    Raises :class:`ConfigError` when the table has no such column known before evaluation.
    """
    known = [c for c in COST_COLUMNS if c in table.metrics]
    if metric not in known:
        raise ConfigError(f"--constraint: unknown metric {metric!r} for {table.path}; known before evaluation: "
                          f"{', '.join(known) or 'none'}")
    column = table.metrics[metric]

    def cost(arch: Architecture) -> float | None:
        row = table.index.get(table.space.key(arch))
        return None if row is None else float(column[row])

    return cost


@dataclass(frozen=True)
class Feasibility:
    """A constraint with the cost model that evaluates it."""

    constraint: Constraint
    cost: CostModel

    def feasible(self, arch: Architecture) -> bool | None:
        """True/False, or ``None`` when the cost model does not know ``arch``."""
        value = self.cost(arch)
        return None if value is None else self.constraint.holds(value)

    def accepts(self, arch: Architecture) -> bool:
        """Feasible, or of unknown cost (the evaluation will tell): a strategy's ``feasible`` filter."""
        return self.feasible(arch) is not False

    def mask(self, archs: Sequence[Architecture]) -> list[bool]:
        """Feasible (or unknown) for each of ``archs``."""
        return [self.accepts(a) for a in archs]


#: Quantities of a cell network computed exactly from the architecture, without training it:
#: parameters (millions, auxiliary head excluded, as papers count them) and multiply-adds of one
#: image's forward pass (millions).
NETWORK_COSTS = ("params_m", "flops_m")


def network_cost(space, network, image_size: int, metric: str) -> CostModel:
    """The exact cost model of a conv cell space: builds each architecture's network and counts.

    Args:
        space: a conv cell space (``nao``, ``nao-ws``, ``darts``).
        network: the :class:`~nao.nn.network.NetworkConfig` candidates are trained with (its
            ``num_classes`` set), so ``params_m`` equals the training evaluator's own metric.
        image_size: the input side, for ``flops_m``.
        metric: one of :data:`NETWORK_COSTS`.

    Values are cached per architecture (a NAO round filters the same decoded cells again).
    """
    from nao.nn.network import build_network, count_flops, count_parameters

    if metric not in NETWORK_COSTS:
        raise ConfigError(f"--constraint: unknown metric {metric!r}; computed from the architecture: "
                          f"{', '.join(NETWORK_COSTS)}")
    cache: dict = {}

    def cost(arch: Architecture) -> float:
        key = space.key(arch)
        if key not in cache:
            model = build_network(space, arch, network)  # counts depend on shapes only, not on the weights
            cache[key] = (count_parameters(model) if metric == "params_m"
                          else count_flops(model, (1, 3, image_size, image_size))) / 1e6
        return cache[key]

    return cost


def network_feasibility(constraint: str, space, network, image_size: int) -> Feasibility:
    """``constraint`` (e.g. ``params_m<=0.05``) checked exactly on each architecture's built network.

    >>> import numpy as np
    >>> from nao.nn.network import NetworkConfig
    >>> from nao.spaces import get_space
    >>> s = get_space("nao-ws"); net = NetworkConfig(channels=8, layers=1, auxiliary=False)
    >>> f = network_feasibility("params_m<=0.03", s, net, 32)
    >>> arch = s.sample(np.random.default_rng(0))
    >>> round(f.cost(arch), 4), f.feasible(arch)
    (0.0428, False)
    """
    c = Constraint.parse(constraint, NETWORK_COSTS)
    return Feasibility(c, network_cost(space, network, image_size, c.metric))


def table_feasibility(constraint: str | Constraint, table) -> Feasibility:
    """``constraint`` (text or value) checked against ``table``'s cost columns.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from nao.spaces import get_space
    >>> s = get_space("nb201"); a = s.sample(np.random.default_rng(0))
    >>> t = SimpleNamespace(path="t.csv.gz", space=s, metrics={"params_m": np.array([0.8, 0.3])}, index={s.key(a): 0})
    >>> table_feasibility("params_m<=0.5", t).feasible(a)
    False
    """
    c = Constraint.parse(constraint, [m for m in COST_COLUMNS if m in table.metrics]) \
        if isinstance(constraint, str) else constraint
    feasibility = Feasibility(c, table_cost(table, c.metric))
    column = np.asarray(table.metrics[c.metric], dtype=float)
    if not np.any(_OPS[c.op](column, c.bound)):  # the table can tell: refuse a search that could find nothing
        raise ConfigError(f"--constraint {c}: no architecture in {table.path} satisfies it ({c.metric} ranges "
                          f"{np.nanmin(column):g} to {np.nanmax(column):g})")
    return feasibility


# An inner strategy that proposes only infeasible architectures this many times in a row is
# considered stuck; the wrapper returns what it has and the Study's idle counter takes over.
_MAX_REJECTS = 10_000


class ConstrainedStrategy(Strategy):
    """Wraps a strategy so that it only ever proposes feasible architectures.

    Infeasible proposals are answered at once with a failed result (``error`` says which
    bound they break): the inner strategy treats them like any failure (score ``-inf``) and
    the Study never sees them, so they cost no budget. ``n_proposed`` / ``n_infeasible``
    count the inner strategy's proposals.

    Args:
        inner: the strategy to constrain, built with ``feasible=feasibility.accepts``
            (:func:`constrained_strategy` does both): strategies that generate in bulk filter while
            generating (no refused proposals, no redone rounds); the refusal here stays as the
            guarantee for every strategy.
        feasibility: the constraint and its cost model.
    """

    def __init__(self, inner: Strategy, feasibility: Feasibility) -> None:
        if inner.feasible != feasibility.accepts:
            raise ValueError("build the constrained strategy with feasible=feasibility.accepts (constrained_strategy)")
        super().__init__(inner.space, 0, objective=inner.objective, feasible=inner.feasible)
        self.inner = inner
        self.feasibility = feasibility
        self.n_proposed = 0
        self.n_infeasible = 0

    @property
    def infeasible_fraction(self) -> float:
        """Share of the inner strategy's proposals rejected as infeasible (0 before any)."""
        return self.n_infeasible / self.n_proposed if self.n_proposed else 0.0

    def round_left(self) -> int | None:
        return self.inner.round_left()

    def ask(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        rejects = 0
        while len(out) < n and rejects < _MAX_REJECTS:
            proposals = self.inner.ask(n - len(out))
            if not proposals:
                break
            refused = []
            for arch in proposals:
                self.n_proposed += 1
                if self.feasibility.feasible(arch) is False:
                    refused.append(Result.failed(arch, f"infeasible: violates {self.feasibility.constraint}"))
                else:
                    out.append(arch)
            self.n_infeasible += len(refused)
            rejects = rejects + len(refused) if len(refused) == len(proposals) else 0
            if refused:
                self.inner.tell(refused)
        return out

    def tell(self, results: Sequence[Result]) -> None:
        self.inner.tell(results)

    def network_key(self, arch: Architecture):  # noqa: ANN201 - same as the inner strategy's
        return self.inner.network_key(arch)

    def __getattr__(self, name: str):  # noqa: ANN204 - e.g. NAO's history_predictions, rounds
        if name == "inner":  # not yet set (during unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def constrained_strategy(name: str, space: SearchSpace, feasibility: Feasibility | None, **kwargs: Any) -> Strategy:
    """Strategy ``name`` (:func:`~nao.strategies.make_strategy` with ``kwargs``: seed, objective, options)
    built to generate what ``feasibility`` accepts, wrapped so that it only ever proposes that;
    the plain strategy when ``feasibility`` is None (no constraint)."""
    if feasibility is None:
        return make_strategy(name, space, **kwargs)
    return ConstrainedStrategy(make_strategy(name, space, feasible=feasibility.accepts, **kwargs), feasibility)


def constrain(name: str, space: SearchSpace, constraint: str | Constraint, table, **kwargs: Any) -> ConstrainedStrategy:
    """Strategy ``name`` restricted to the architectures of ``table`` that satisfy ``constraint``.

    The entry point for ``nao bench --constraint`` on a tabular benchmark:
    ``Study(space, constrain("random", space, "params_m<=0.5", evaluator.table, seed=0), evaluator)``.
    """
    feasibility = table_feasibility(constraint, table)
    return ConstrainedStrategy(make_strategy(name, space, feasible=feasibility.accepts, **kwargs), feasibility)


def constraint_summary(ctx, strategy: Strategy, text: str | None, fate: str) -> dict:
    """Say how many proposals a constrained run refused and return ``{"constraint": ...}`` for result.json.

    ``ctx`` is the run's :class:`~nao.runs.skeleton.RunContext`; ``fate`` says what refused proposals
    were spared (``never trained``). Empty when ``strategy`` is not a :class:`ConstrainedStrategy`.
    """
    if not isinstance(strategy, ConstrainedStrategy):
        return {}
    ctx.say(f"constraint {text}: {strategy.n_infeasible} of {strategy.n_proposed} proposals infeasible ({fate})")
    return {"constraint": {"text": text, "proposed": strategy.n_proposed, "infeasible": strategy.n_infeasible}}
