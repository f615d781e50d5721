"""Evaluation results: what an evaluator returns for one architecture.

Metrics are fractions (accuracies in 0..1). ``val_acc`` is what search optimises; keys
starting with ``test`` are for reports only and are stripped before a strategy sees a
result (:func:`search_view`).

>>> from nao.spaces import Architecture
>>> r = Result(Architecture("nb201", (0,) * 6), "ok", {"val_acc": 0.9, "test_acc": 0.91}, 1.0)
>>> sorted(search_view(r).metrics)
['val_acc']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

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
    """

    arch: Architecture
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    cost_s: float = 0.0
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, arch: Architecture, error: str, cost_s: float = 0.0) -> Result:
        return cls(arch, "failed", {}, cost_s, error)


def is_test_metric(name: str) -> bool:
    """Whether a metric is reserved for reports (never shown to search)."""
    return name.startswith("test")


def search_view(result: Result) -> Result:
    """``result`` without test metrics: the only form strategies are given."""
    return replace(result, metrics={k: v for k, v in result.metrics.items() if not is_test_metric(k)})
