"""Evaluation results: what an evaluator returns for one architecture.

Metrics are fractions (accuracies in 0..1). ``val_acc`` is what search optimises; keys
starting with ``test`` are for reports only and are stripped before a strategy sees a
result (:func:`search_view`).

>>> from nao.spaces import Architecture
>>> r = Result(Architecture("nb201", (0,) * 6), "ok", {"val_acc": 0.9, "test_acc": 0.91}, 1.0)
>>> sorted(search_view(r).metrics)
['val_acc']
>>> Objective.of("val_ppl").better(1.0, 2.0)
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from nao.errors import ConfigError
from nao.spaces.base import Architecture

Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class Result:
    """Outcome of evaluating one architecture.

    Attributes:
        arch: the evaluated architecture.
        status: ``"ok"`` or ``"failed"`` (then ``error`` says why).
        metrics: name -> value; accuracies are fractions.
        cost_s: seconds the evaluation cost (benchmark's own cost for tabular lookups).
        error: failure reason, ``None`` when ok.
        info: free-form extras (e.g. the worker, attempts).
        fidelity: epochs the candidate has been trained for once this evaluation is done (its
            total, not this evaluation's share); ``None`` where it means nothing (a supernet score).
        cost: compute this evaluation spent, in its evaluator's ``cost_unit`` (``gpu_s`` for a
            table, ``image_epochs`` for a trained image network, ...); budgets in compute
            (``max_cost``) and curves against compute add these up.
    """

    arch: Architecture
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    cost_s: float = 0.0
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    fidelity: float | None = None
    cost: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, arch: Architecture, error: str, cost_s: float = 0.0, cost: float = 0.0) -> Result:
        return cls(arch, "failed", {}, cost_s, error, cost=cost)


def is_test_metric(name: str) -> bool:
    """Whether a metric is reserved for reports (never shown to search)."""
    return name.startswith("test")


def search_view(result: Result) -> Result:
    """``result`` without test metrics: the only form strategies are given."""
    return replace(result, metrics={k: v for k, v in result.metrics.items() if not is_test_metric(k)})


#: Direction of the metrics the library's evaluators report (``Objective.of`` uses it).
KNOWN_MODES: dict[str, str] = {
    "val_acc": "max", "val_score": "max", "val_loss": "min", "val_ppl": "min", "val_error": "min",
}


@dataclass(frozen=True)
class Objective:
    """The validation metric a search optimises, and in which direction.

    A strategy is built with it and the :class:`~nao.study.Study` checks it optimises the same; every ranking in the
    library (best result, logs, reports) goes through :meth:`score`, so no other code flips signs.

    Attributes:
        metric: a validation-side metric name (never ``test*``: search may not read test metrics).
        mode: ``"max"`` (accuracy) or ``"min"`` (perplexity, loss).
    """

    metric: str = "val_acc"
    mode: Literal["max", "min"] = "max"

    def __post_init__(self) -> None:
        if is_test_metric(self.metric):
            raise ConfigError(f"objective {self.metric!r} is a test metric; search may only read validation metrics")
        if self.mode not in ("max", "min"):
            raise ConfigError(f"objective mode {self.mode!r}: choose max or min")

    @classmethod
    def of(cls, spec: str | Objective | dict[str, str]) -> Objective:
        """``"val_acc"``, ``"val_ppl:min"``, a dict from ``config.json`` or an Objective."""
        if isinstance(spec, Objective):
            return spec
        if isinstance(spec, dict):
            return cls(spec.get("metric", "val_acc"), spec.get("mode") or KNOWN_MODES.get(spec.get("metric", ""), "max"))
        metric, _, mode = spec.partition(":")
        if is_test_metric(metric):
            raise ConfigError(f"objective {metric!r} is a test metric; search may only read validation metrics")
        if not mode and metric not in KNOWN_MODES:
            raise ConfigError(f"objective {spec!r}: say its direction, e.g. {metric}:max or {metric}:min")
        return cls(metric, mode or KNOWN_MODES[metric])  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "mode": self.mode}

    def value(self, result: Result) -> float | None:
        """The raw metric of an ok result (``None`` for failed or missing)."""
        if not result.ok or self.metric not in result.metrics:
            return None
        return float(result.metrics[self.metric])

    def score(self, result: Result) -> float:
        """Higher is better: the metric, negated for ``min``; ``-inf`` for failed results."""
        v = self.value(result)
        if v is None or math.isnan(v):
            return -math.inf
        return v if self.mode == "max" else -v

    def better(self, a: float, b: float) -> bool:
        """Whether raw value ``a`` is strictly better than ``b``."""
        return a > b if self.mode == "max" else a < b

    def best_of(self, value: float | None, current: float | None) -> float | None:
        """A running best: ``value`` if it beats ``current`` (or there is none yet), else ``current``.

        >>> Objective("val_ppl", "min").best_of(80.0, 95.0), Objective("val_acc", "max").best_of(None, 0.9)
        (80.0, 0.9)
        """
        if value is not None and (current is None or self.better(value, current)):
            return value
        return current


class Tally:
    """A run's results counted one at a time, with the best objective value so far.

    Args:
        objective: what ``best`` tracks.
        skip: results replayed from an earlier process's journal: counted, but reported as not new.
    """

    def __init__(self, objective: Objective | str, skip: Iterable[Result] = ()) -> None:
        self.objective = Objective.of(objective)
        self.step = 0
        self.best: float | None = None  # raw value
        self._skip = {id(r) for r in skip}

    def add(self, result: Result) -> tuple[float | None, bool]:
        """Count ``result``; returns its objective value (None if failed) and whether it is new."""
        self.step += 1
        value = self.objective.value(result)
        self.best = self.objective.best_of(value, self.best)
        return value, id(result) not in self._skip


def best(results: Iterable[Result], objective: Objective | str = "val_acc") -> Result | None:
    """The ok result with the best objective, earliest first on ties (``None`` if there is none)."""
    objective = Objective.of(objective)
    top, top_score = None, -math.inf
    for r in results:
        s = objective.score(r)
        if s > top_score:
            top, top_score = r, s
    return top
