"""Evaluators: ``tabular`` (benchmark tables), ``training`` and ``supernet``.

>>> from nao.evaluators import evaluator_names
>>> "tabular" in evaluator_names()
True
"""

from __future__ import annotations

from nao.evaluators.base import Evaluator
from nao.registry import EVALUATORS


def evaluator_names() -> list[str]:
    return EVALUATORS.names()


__all__ = ["Evaluator", "evaluator_names"]
