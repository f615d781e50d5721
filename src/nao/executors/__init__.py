"""Executors run evaluations for the :class:`~nao.study.Study`.

An executor accepts architectures (``submit``) and hands back results as they finish
(``poll``). Three are registered in :data:`nao.registry.EXECUTORS`:

- ``sequential``: in this process, in submission order, ``evaluator.batch_size`` at a time,
  so a run is reproducible from its seed (:mod:`nao.executors.local`).
- ``processes``: a pool of local worker processes; the evaluator is shipped once per
  worker, results come back in completion order (:mod:`nao.executors.local`).
- ``ray``: one Ray task per batch on a local or remote Ray cluster (``pip install 'nao[ray]'``;
  :mod:`nao.executors.ray`, imported only when it is asked for).

Every executor returns exactly one :class:`~nao.results.Result` per submitted architecture:
an evaluator that raises an ordinary exception gives failed results carrying the message
(the search goes on); a worker that dies mid-evaluation is retried ``max_retries`` times and
then recorded as failed with the reason. A :class:`~nao.errors.NaoError` raised by an
evaluator is a user error that invalidates the whole run, so it propagates to the caller.

>>> from nao.executors import SequentialExecutor, make_executor
>>> SequentialExecutor().capacity
1
>>> type(make_executor("sequential")).__name__
'SequentialExecutor'
"""

from __future__ import annotations

import importlib
from typing import Any

from nao.executors.base import Executor, batch_size_of, evaluate_guarded
from nao.executors.local import ProcessExecutor, SequentialExecutor
from nao.registry import EXECUTORS

__all__ = [
    "Executor",
    "ProcessExecutor",
    "RayExecutor",
    "SequentialExecutor",
    "batch_size_of",
    "evaluate_guarded",
    "import_ray",
    "make_executor",
    "probe_ray_address",
]

# Names served by nao.executors.ray, imported on first use (module __getattr__, PEP 562).
_RAY_NAMES = frozenset({"RayExecutor", "probe_ray_address", "import_ray"})


@EXECUTORS.register("ray")
def _ray_executor(**options: Any) -> Executor:
    """Registered in place of RayExecutor so that the registry lists ``ray`` without importing it."""
    from nao.executors.ray import RayExecutor

    return RayExecutor(**options)


def __getattr__(name: str) -> Any:
    if name in _RAY_NAMES:
        return getattr(importlib.import_module("nao.executors.ray"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_executor(name: str, **options: Any) -> Executor:
    """Build the registered executor ``name``; options that are ``None`` keep their defaults."""
    cls = EXECUTORS.get(name)
    return cls(**{k: v for k, v in options.items() if v is not None})
