"""Evaluators: ``tabular`` (benchmark tables), ``training`` and ``supernet``.

>>> from nao.evaluators import evaluator_names
>>> "tabular" in evaluator_names()
True
"""

from __future__ import annotations

import importlib

from nao.evaluators.base import Evaluator
from nao.registry import EVALUATORS

_EVALUATOR_MODULES = ("nao.evaluators.tabular", "nao.evaluators.training", "nao.evaluators.supernet", "nao.evaluators.rnn_supernet", "nao.evaluators.lm_training")


def _load_all() -> None:
    for mod in _EVALUATOR_MODULES:
        importlib.import_module(mod)  # a listed module that is missing is an error, not an absence


def evaluator_names() -> list[str]:
    _load_all()
    return EVALUATORS.names()


__all__ = ["Evaluator", "evaluator_names"]
